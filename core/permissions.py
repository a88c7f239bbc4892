from rest_framework.permissions import SAFE_METHODS, BasePermission

from core import roles


class RolePermission(BasePermission):
    """Reads for every role; writes for admins.

    A view may name the actions a requester may also take (``requester_actions``,
    e.g. filing and cancelling transfers) and the actions an auditor may take
    (``auditor_actions``, e.g. starting an export). A collector account may take only the
    actions a view names in ``collector_actions`` (pushing imports), reads included.
    Object-level limits such as "a requester cancels only their own" live in the service.
    """

    message = "Your role does not allow this action."

    def has_permission(self, request, view):
        role = roles.role_of(request.user)
        if role is None:
            return False
        if role == roles.COLLECTOR:
            return getattr(view, "action", None) in getattr(view, "collector_actions", ())
        if request.method in SAFE_METHODS:
            return True
        if role == roles.ADMIN:
            return True
        action = getattr(view, "action", None)
        if role == roles.REQUESTER:
            return action in getattr(view, "requester_actions", ())
        if role == roles.AUDITOR:
            return action in getattr(view, "auditor_actions", ())
        return False


class CanExport(BasePermission):
    message = "Only admins and auditors export reports."

    def has_permission(self, request, view):
        return roles.can_export(request.user)
