from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from portal.health import healthz

handler500 = "core.unavailable.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", login_not_required(healthz), name="healthz"),
    path("accounts/", include("portal.auth_urls")),
    path("api/v1/", include("licensing.api.report_urls")),
    path("api/v1/", include("portal.api_urls")),
    path("", include("portal.ui_urls")),
]
