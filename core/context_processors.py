from core import roles


def roles_context(request):
    role = roles.role_of(getattr(request, "user", None))
    return {
        "portal_role": role,
        "is_portal_admin": role == roles.ADMIN,
        "can_export": role in (roles.ADMIN, roles.AUDITOR),
        "can_file_transfers": role in (roles.ADMIN, roles.REQUESTER),
    }
