"""The import pages, included at ``/imports/``."""

from django.urls import path

from licensing import import_views

urlpatterns = [
    path("", import_views.import_upload, name="import-upload"),
    path("<str:token>/", import_views.import_preview, name="import-preview"),
    path("<str:token>/confirm/", import_views.import_confirm, name="import-confirm"),
]
