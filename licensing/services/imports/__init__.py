"""Importing what a TS license server already holds, from its ``Export-Csv`` files.

One entry point, ``license_server_import``, serves ``manage.py import_license_server``
and the upload page. It reads the files (``licensing.importers``), plans every change
against the portal's rows in one pass with bulk look-ups, and then writes the plan in
the same transaction, with one audit event per created or updated object and a
summary event ``import.completed``.

- All or nothing: a file set with any error writes nothing, unless the administrator
  chose to skip the bad rows. A file that cannot be read at all is never skipped.
- A dry run plans, reports and writes nothing.
- Idempotent: key packs match on (server, KeyPackId), licenses on (server, LicenseId);
  what is already recorded is left alone, so a second import of one export is a no-op
  and writes no event.
- The rules of DOMAIN.md hold: the planner calls the same functions as the services
  (``licensing.rules``) on the rows it plans; the database constraints stay the last line.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from licensing.importers import wmi
from licensing.importers.export_csv import ERROR, SKIPPED, ExportFile, PerUserIssuanceRow, Problem, read_export_bytes
from licensing.models import LicenseServer
from licensing.services.imports.apply import apply_plan
from licensing.services.imports.plan import Planner
from licensing.services.imports.report import ImportReport, counts_text, describe_plan, group_problems

__all__ = ["ImportReport", "group_problems", "license_server_import"]


def license_server_import(
    *,
    server_name: str,
    files: list[tuple[str, bytes]],
    actor,
    date_order: str = "mdy",
    skip_bad_rows: bool = False,
    dry_run: bool = False,
    installed_on: date | None = None,
) -> ImportReport:
    """Import key packs and issued licenses of one license server from its export files.

    Raises ValidationError for bad options or an unknown server; everything about the
    files' content is in the returned report.
    """
    if date_order not in wmi.DATE_ORDERS:
        raise ValidationError({"date_order": f"Choose one of {', '.join(wmi.DATE_ORDERS)}."})
    if not files:
        raise ValidationError({"files": "Give at least one export file."})
    report = ImportReport(server=server_name, dry_run=dry_run, skip_bad_rows=skip_bad_rows)
    for name, data in files:
        export = read_export_bytes(name, data, date_order=date_order)
        _set_aside_per_user_issuances(export)
        report.files.append(export)
    now = timezone.now()
    installed_on = installed_on or timezone.localdate()
    with transaction.atomic():
        # The server row is not locked: issuing locks it together with its key pack. Two
        # imports of one server meet at its key pack rows, or at the unique constraints.
        server = LicenseServer.objects.filter(name__iexact=server_name).first()
        if server is None:
            raise ValidationError(
                {"server": f"There is no license server named {server_name!r}; add it first."}
            )
        report.server = server.name
        for export in report.files:
            report.problems.extend(export.problems)
        planner = Planner(server=server, exports=[f for f in report.files if f.readable],
                           report=report, installed_on=installed_on, now=now)
        planner.lock_machines()
        planner.plan_key_packs()
        planner.plan_licenses()
        planner.check_packs(
            have_license_file=any(f.wmi_class == wmi.ISSUED_LICENSE_CLASS for f in report.files)
        )
        report.problems.sort(key=lambda p: (p.file, p.line or 0, p.level))
        describe_plan(planner, report)
        unreadable = any(not f.readable for f in report.files)
        if unreadable or (report.errors and not skip_bad_rows) or dry_run:
            return report
        try:
            with transaction.atomic():
                audit = apply_plan(planner, report, actor, installed_on)
                if report.changes:
                    audit.add(
                        action="import.completed", obj=server,
                        summary=f"Import from {server.name}: {counts_text(report.created)} created, "
                        f"{counts_text(report.updated)} updated, {len(report.errors)} bad rows "
                        f"skipped, {len(report.skipped)} rows not imported.",
                        data={
                            "files": [
                                {"name": f.name, "sha256": f.sha256, "class": f.wmi_class,
                                 "style": f.style, "encoding": f.encoding, "rows": len(f.rows)}
                                for f in report.files
                            ],
                            "created": dict(report.created), "updated": dict(report.updated),
                            "bad_rows_skipped": len(report.errors),
                            "rows_not_imported": len(report.skipped),
                            "options": {"date_order": date_order, "skip_bad_rows": skip_bad_rows,
                                        "installed_on": installed_on},
                        },
                        refs={"license_server": [server.pk]},
                    )
                audit.close()
                report.events_written = audit.count
        except IntegrityError as exc:
            report.created.clear()
            report.updated.clear()
            report.problems.append(Problem(
                ERROR, "", None, "",
                f"The database refused the import ({exc}); nothing was imported.", "integrity",
            ))
            return report
        report.committed = True
    return report


def _set_aside_per_user_issuances(export: ExportFile) -> None:
    """Per-user CALs are not imported yet: each is a skipped row, never a reason to refuse."""
    if not any(isinstance(row, PerUserIssuanceRow) for row in export.rows):
        return
    kept = []
    for row in export.rows:
        if isinstance(row, PerUserIssuanceRow):
            export.problems.append(Problem(
                SKIPPED, export.name, row.line, "sIssuedToUser",
                f"LicenseId {row.license_id} is a per-user CAL issued to {row.user}; per-user "
                "issuances are not imported.", "per_user_issuance",
            ))
        else:
            kept.append(row)
    export.rows = kept


