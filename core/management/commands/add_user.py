import os

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.audit import audit_record
from core.roles import ROLES


class Command(BaseCommand):
    help = "Create a portal user or update it, with one role (admin, requester or auditor)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument(
            "--password",
            help="The password (or set PORTAL_PASSWORD); kept as it is when omitted for an existing user.",
        )
        parser.add_argument("--email", default="")

    def handle(self, *args, username, role, password, email, **options):
        password = password or os.environ.get("PORTAL_PASSWORD")
        User = get_user_model()
        if password:
            # The validators of AUTH_PASSWORD_VALIDATORS, before anything is written.
            candidate = User.objects.filter(username=username).first() or User(username=username)
            if email:
                candidate.email = email
            try:
                password_validation.validate_password(password, user=candidate)
            except ValidationError as exc:
                raise CommandError("The password was refused, and nothing was changed: "
                                   + " ".join(exc.messages)) from exc
        with transaction.atomic():
            user, created = User.objects.get_or_create(username=username)
            if created and not password:
                raise CommandError("A new user needs a password: --password or PORTAL_PASSWORD.")
            if password:
                user.set_password(password)
            if email:
                user.email = email
            user.is_staff = role == "admin"  # admins may use the Django admin too
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            audit_record(
                actor="system", action="user.created" if created else "user.updated", obj=user,
                summary=f"User {username} {'created' if created else 'updated'} with role {role}.",
                data={"role": role, "password_changed": bool(password)},
            )
        self.stdout.write(f"{'Created' if created else 'Updated'} {username} ({role}).")
