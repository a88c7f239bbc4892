"""Import key packs and issued licenses from a TS license server's Export-Csv files.

On the license server, for example:

    Get-WmiObject Win32_TSLicenseKeyPack | Export-Csv keypacks.csv
    Get-WmiObject Win32_TSIssuedLicense | Export-Csv issued.csv

then ``manage.py import_license_server --server TSLS-HQ keypacks.csv issued.csv``.
"""

from datetime import date
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core import roles
from licensing.importers.wmi import DATE_ORDERS
from licensing.services.imports import license_server_import


class Command(BaseCommand):
    help = (
        "Import what a TS license server holds from Export-Csv files of Win32_TSLicenseKeyPack "
        "and Win32_TSIssuedLicense. A file set with any error imports nothing unless "
        "--skip-bad-rows is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--server", required=True, help="The license server's name in the portal.")
        parser.add_argument(
            "--date-order", choices=DATE_ORDERS, default="mdy",
            help="Order of day, month and year in locale dates (PowerShell 7 exports); default mdy (en-US).",
        )
        parser.add_argument("--skip-bad-rows", action="store_true",
                            help="Import the good rows and skip the rows with errors.")
        parser.add_argument("--dry-run", action="store_true",
                            help="Show what would be created, updated or skipped; write nothing.")
        parser.add_argument(
            "--installed-on", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
            help="Installation date recorded for new key packs (the class has none); default today.",
        )
        parser.add_argument("--actor", default=None,
                            help="Username of the administrator recorded in the audit trail.")

    def handle(self, *args, **options):
        actor = "system"
        if options["actor"]:
            user = get_user_model().objects.filter(username=options["actor"]).first()
            if user is None or not roles.is_admin(user):
                raise CommandError(f"{options['actor']!r} is not an administrator.")
            actor = user
        files = []
        for name in options["files"]:
            path = Path(name)
            try:
                files.append((path.name, path.read_bytes()))
            except OSError as exc:
                raise CommandError(f"Cannot read {name}: {exc.strerror}.") from exc
        try:
            report = license_server_import(
                server_name=options["server"], files=files, actor=actor,
                date_order=options["date_order"], skip_bad_rows=options["skip_bad_rows"],
                dry_run=options["dry_run"], installed_on=options["installed_on"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        out = self.stdout
        for export in report.files:
            out.write(
                f"{export.name}: {export.wmi_class or 'not recognised'}, {export.style or '-'}, "
                f"{export.encoding or '-'}, {len(export.rows)} rows, sha256 {export.sha256}"
            )
        for problem in report.problems:
            out.write(f"{problem.level.upper()}: {problem}")
        if report.dry_run or report.committed:
            created = report.created if report.committed else report.planned_created
            updated = report.updated if report.committed else report.planned_updated
            verb = "" if report.committed else "would be "
            for kind in ("machine", "key_pack", "license"):
                out.write(
                    f"{kind.replace('_', ' ')}s: {created[kind]} {verb}created, "
                    f"{updated[kind]} {verb}updated"
                )
        if report.dry_run:
            for action in report.actions:
                out.write(f"  {action}")
        summary = (
            f"{report.outcome}: {len(report.errors)} errors, {len(report.skipped)} rows not "
            f"imported, {len(report.warnings)} warnings; {report.events_written} audit events."
        )
        if not report.committed and not report.dry_run:
            raise CommandError(summary + " Fix the errors or use --skip-bad-rows.")
        out.write(summary)
