"""The three roles of CONTRACT.md, kept as Django groups (created by a migration)."""

ADMIN = "admin"
REQUESTER = "requester"
AUDITOR = "auditor"
ROLES = (ADMIN, REQUESTER, AUDITOR)
# Not a person: an account a license server pushes its exports with.
COLLECTOR = "collector"


def role_of(user) -> str | None:
    """The user's role. Superusers act as admin; a user in several groups gets the strongest."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return ADMIN
    names = getattr(user, "_portal_group_names", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._portal_group_names = names
    for role in ROLES:
        if role in names:
            return role
    return None


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
    """Create the three groups and give them their permissions. Idempotent.

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
    }
    for role, perms in grants.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(list(perms))
