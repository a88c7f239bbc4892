"""The roles of CONTRACT.md, kept as Django groups (created by migrations).

Three roles are for people (``ROLES``, strongest first). ``collector`` is for an account that
is not a person: it may only push imports through the API, never sign in to the pages, and
holds no other right (``core.permissions``, ``core.middleware``).
"""

ADMIN = "admin"
REQUESTER = "requester"
AUDITOR = "auditor"
ROLES = (ADMIN, REQUESTER, AUDITOR)
# Not a person: an account a license server pushes its exports with.
COLLECTOR = "collector"


def role_of(user) -> str | None:
    """The user's role. Superusers act as admin; a user in several groups gets the strongest,
    except that a collector account stays a collector whatever else it is in."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = getattr(user, "_portal_group_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._portal_group_names = names
    if COLLECTOR in names:
        return COLLECTOR
    for role in ROLES:
        if role in names:
            return role
    return None


def is_person_with_role(user) -> bool:
    """May use the pages: a signed-in person with one of the three roles."""
    return role_of(user) in ROLES


def is_admin(user) -> bool:
    return role_of(user) == ADMIN


def can_export(user) -> bool:
    return role_of(user) in (ADMIN, AUDITOR)


def can_file_transfers(user) -> bool:
    return role_of(user) in (ADMIN, REQUESTER)


# Model permissions each role gets, for the Django admin. The API and the pages check
# roles through core.permissions; these keep the admin site consistent with them.
PORTAL_APPS = ("core", "inventory", "licensing")
REQUESTER_EXTRA_PERMISSIONS = ("add_transferrequest",)


def sync_role_groups(apps) -> None:
    """Create the role groups and give them their permissions (collectors get none). Idempotent.

    Takes an app registry, so a migration can pass its historical one.
    """
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    portal_perms = Permission.objects.filter(content_type__app_label__in=PORTAL_APPS)
    view_perms = portal_perms.filter(codename__startswith="view_")
    # Admins change things through the services; nothing is deleted (rule 10).
    admin_perms = portal_perms.exclude(codename__startswith="delete_")
    grants = {
        ADMIN: admin_perms,
        REQUESTER: view_perms | portal_perms.filter(codename__in=REQUESTER_EXTRA_PERMISSIONS),
        AUDITOR: view_perms,
        COLLECTOR: Permission.objects.none(),
    }
    for role, perms in grants.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(list(perms))
