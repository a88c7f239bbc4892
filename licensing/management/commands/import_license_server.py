"""Import a TS license server's Export-Csv files from the shell: a snapshot, like an upload.

On the license server, for example:

    Get-WmiObject Win32_TSLicenseKeyPack | Export-Csv keypacks.csv
    Get-WmiObject Win32_TSIssuedLicense | Export-Csv issued.csv

then ``manage.py import_license_server --server TSLS-HQ keypacks.csv issued.csv``. The import
runs here, as the same background job the page and the API start, with its progress shown.
"""

import sys
from datetime import date
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core import roles
from licensing.importers.wmi import DATE_ORDERS
from licensing.models import LicenseServer
from licensing.services.imports import import_start, run_now


class Command(BaseCommand):
    help = (
        "Import what a TS license server holds from Export-Csv files of Win32_TSLicenseKeyPack and "
        "Win32_TSIssuedLicense: a snapshot, reconciled with the portal. A file set with any problem imports "
        "nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--server", required=True, help="The license server's name in the portal.")
        parser.add_argument(
            "--date-order", choices=DATE_ORDERS, default="mdy",
            help="Order of day, month and year in locale dates (PowerShell 7 exports); default mdy (en-US).",
        )
        parser.add_argument("--dry-run", action="store_true",
                            help="Show what would be created, updated or ended, and the drift; write nothing.")
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
        server = LicenseServer.objects.filter(name__iexact=options["server"]).first()
        if server is None:
            raise CommandError(f"There is no license server named {options['server']!r}; add it first.")
        handles = []
        try:
            for name in options["files"]:
                try:
                    handles.append((Path(name).name, open(name, "rb")))  # noqa: SIM115 - closed below
                except OSError as exc:
                    raise CommandError(f"Cannot read {name}: {exc.strerror}.") from exc
            try:
                job = import_start(license_server=server, files=handles, actor=actor,
                                   date_order=options["date_order"], dry_run=options["dry_run"],
                                   installed_on=options["installed_on"], enqueue=False)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        finally:
            for _, handle in handles:
                handle.close()
        report = run_now(job, on_progress=self._progress)
        self._show(job, report)

    def _progress(self, percent: int) -> None:
        if self.stdout.isatty():
            self.stdout.write(f"\r  {percent:3d}% ", ending="")
            sys.stdout.flush()

    def _show(self, job, report) -> None:
        out = self.stdout
        if out.isatty():
            out.write("\r")
        for export in report.files:
            out.write(f"{export.name}: {export.wmi_class or 'not recognised'}, {export.style or '-'}, "
                      f"{export.encoding or '-'}, {export.row_count} rows, sha256 {export.sha256}")
        for problem in report.problems:
            out.write(f"{problem.level.upper()}: {problem}")
        verb = "" if report.committed else "would be "
        if report.committed or not report.refused:
            for kind in ("machine", "key_pack", "license", "per_user_issuance"):
                out.write(f"{kind.replace('_', ' ')}s: {report.created[kind]} {verb}created, "
                          f"{report.updated[kind]} {verb}updated, {report.ended[kind]} {verb}ended")
            out.write(f"drift: {report.drift.get('opened', 0)} {verb}opened, "
                      f"{report.drift.get('resolved', 0)} {verb}resolved")
        if report.dry_run:
            for action in report.actions:
                out.write(f"  {action}")
        summary = (
            f"{report.outcome}: {report.error_count} errors, {sum(report.skipped_codes.values())} rows not imported, "
            f"{report.problem_counts['warning']} warnings; {report.events_written if report.committed else 0} "
            f"audit events (import job #{job.pk}"
            + (f", snapshot #{report.snapshot_id})." if report.snapshot_id else ").")
        )
        if report.refused:
            raise CommandError(summary + " Fix the problems and import again.")
        out.write(summary)
