"""The shared API: sign-in and the audit trail."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from core.api import views

router = SimpleRouter()
router.register("audit-events", views.AuditEventViewSet, basename="api-auditevent")

urlpatterns = [
    path("auth/token/", views.TokenView.as_view(), name="api-token"),
    path("auth/logout/", views.LogoutView.as_view(), name="api-logout"),
    *router.urls,
]
