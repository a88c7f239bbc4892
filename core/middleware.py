"""Pages need a role.

``RoleRequiredMiddleware`` (after LoginRequiredMiddleware): a signed-in user without one of
the three roles, or a collector account, gets 403 on every page. Views that need no login
(the login page, /healthz) and the API (whose views check roles themselves, with
``core.permissions.RolePermission``) are left to their own checks; so is the logout page.
"""

from django.contrib.auth.views import LogoutView
from django.core.exceptions import PermissionDenied

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
