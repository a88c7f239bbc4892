"""Pages need a role, and every response the application writes carries its security headers.

``RoleRequiredMiddleware`` (after LoginRequiredMiddleware): a signed-in user without one of
the three roles, or a collector account, gets 403 on every page. Views that need no login
(the login page, /healthz) and the API (whose views check roles themselves, with
``core.permissions.RolePermission``) are left to their own checks; so is the logout page.

``SecurityHeadersMiddleware``: ``Permissions-Policy`` from the ``PERMISSIONS_POLICY``
setting, and ``Cache-Control: no-store`` so that no page or API answer, which may hold
licensing data, is kept by a browser or a shared cache. Static files are served before
this middleware (WhiteNoise) and stay cacheable.
"""

from django.conf import settings
from django.contrib.auth.views import LogoutView
from django.core.exceptions import PermissionDenied
from django.utils.cache import add_never_cache_headers

from core import roles

NO_ROLE_MESSAGE = ("Your account has no role in the portal (admin, requester or auditor), so it cannot "
                   "open any page. Ask a portal administrator to give you one.")
COLLECTOR_MESSAGE = ("This is a collector account: it may only send license server snapshots "
                     "through the API, and cannot open the portal's pages.")


class RoleRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not getattr(view_func, "login_required", True):
            return None  # login, /healthz, and the API's views (DRF marks them so)
        view_class = getattr(view_func, "view_class", None)
        if view_class is not None and issubclass(view_class, LogoutView):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # LoginRequiredMiddleware has sent them to the login page
        role = roles.role_of(user)
        if role == roles.COLLECTOR:
            raise PermissionDenied(COLLECTOR_MESSAGE)
        if role is None:
            raise PermissionDenied(NO_ROLE_MESSAGE)
        return None


def permissions_policy_header(policy: dict[str, list[str]]) -> str:
    """``{"camera": [], "fullscreen": ["self"]}`` -> ``camera=(), fullscreen=(self)``."""
    return ", ".join(f"{feature}=({' '.join(allowed)})" for feature, allowed in policy.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.permissions_policy = permissions_policy_header(getattr(settings, "PERMISSIONS_POLICY", {}))

    def __call__(self, request):
        response = self.get_response(request)
        if self.permissions_policy:
            response.headers.setdefault("Permissions-Policy", self.permissions_policy)
        if "no-store" not in response.get("Cache-Control", ""):
            add_never_cache_headers(response)
        return response
