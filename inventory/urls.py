"""Client machine pages. A machine's own page, with its CALs, is licensing's."""

from django.urls import path

from inventory import views

urlpatterns = [
    path("machines/", views.MachineListView.as_view(), name="machine-list"),
    path("machines/new/", views.machine_new, name="machine-new"),
    path("machines/suggest/", views.machine_suggestions, name="machine-suggestions"),
]
