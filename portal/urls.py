"""Root URLs: each app's pages and API, the schema, the admin and the health check."""

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.permissions import RolePermission
from portal import dashboard
from portal.health import healthz

handler500 = "core.unavailable.server_error"

api_v1 = [
    path("", include("core.api.urls")),
    path("", include("inventory.api.urls")),
    path("", include("licensing.api.urls")),
    # Like every endpoint but the token login, the schema and its docs need a signed-in user with a role.
    # The docs load their start-up script as a file (the split view), as the Content-Security-Policy wants.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[RolePermission]), name="api-schema"),
    path("docs/", login_required(SpectacularSwaggerSplitView.as_view(
        url_name="api-schema", permission_classes=[RolePermission])), name="api-docs"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", login_not_required(healthz), name="healthz"),
    path("api/v1/", include(api_v1)),
    path("", dashboard.dashboard, name="dashboard"),
    path("", include("core.urls")),
    path("", include("inventory.urls")),
    path("", include("licensing.urls")),
]
