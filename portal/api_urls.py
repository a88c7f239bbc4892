"""REST API v1 (CONTRACT.md), mounted at ``/api/v1/``."""

from django.contrib.auth.decorators import login_required
from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from inventory.api.views import ClientMachineViewSet
from licensing.api.views import VIEWSETS, ComplianceView, TokenView
from portal.permissions import RolePermission

router = SimpleRouter()
router.register("machines", ClientMachineViewSet, basename="api-machine")
for prefix, viewset, basename in VIEWSETS:
    router.register(prefix, viewset, basename=basename)

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="api-token"),
    path("compliance/", ComplianceView.as_view(), name="api-compliance"),
    # Like every endpoint but the token login, the schema and its docs need a signed-in user.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[RolePermission]), name="api-schema"),
    path("docs/", login_required(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    *router.urls,
]
