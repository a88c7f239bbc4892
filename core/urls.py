"""Pages every app shares: sign-in and the audit trail."""

from django.contrib.auth import views as auth_views
from django.urls import path

from core import views
from core.forms import PortalAuthenticationForm

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(
        redirect_authenticated_user=True, authentication_form=PortalAuthenticationForm), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.AuditEventListView.as_view(), name="audit-list"),
]
