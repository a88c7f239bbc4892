from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.audit import SYSTEM_ACTOR
from licensing.reports import REPORTS, parse_moment, since_until_filters
from licensing.reports.writers import FORMATS, write_report
from licensing.services.exports import audit_export, validate_export


def _moment(value: str):
    try:
        return parse_moment(value)
    except ValidationError as exc:
        raise CommandError(exc.messages[0]) from exc


class Command(BaseCommand):
    help = "Write a report to a CSV or XLSX file, with the same filters as its list (audited as system)."
    # An export reads; it runs from cron and scripts, where Django's system checks
    # (URLs, models, admin, settings) would only add their time to every run.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("name", choices=list(REPORTS))
        parser.add_argument("--format", choices=FORMATS, required=True)
        parser.add_argument("--output", required=True, help="File to write.")
        parser.add_argument("--since", type=_moment,
                            help="First day included (YYYY-MM-DD), or an ISO 8601 date and time.")
        parser.add_argument("--until", type=_moment,
                            help="Last day included (YYYY-MM-DD), or an ISO 8601 date and time.")
        parser.add_argument(
            "--filter", action="append", default=[], metavar="NAME=VALUE",
            help="Any filter of the matching list, e.g. --filter action=transfer. Repeatable.",
        )

    def handle(self, *args, name, format, output, since=None, until=None, filter=(), **options):
        report = REPORTS[name]
        filters = {}
        for item in filter:
            key, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--filter {item!r}: write it as NAME=VALUE.")
            filters[key.strip()] = value.strip()
        try:
            filters.update(since_until_filters(report, since=since, until=until))
            report, filters = validate_export(report=name, format=format, filters=filters)
        except ValidationError as exc:
            raise CommandError("; ".join(
                f"{field}: {' '.join(messages)}" for field, messages in exc.message_dict.items()
            ) if hasattr(exc, "error_dict") else " ".join(exc.messages)) from exc
        path = Path(output)
        audit_export(actor=SYSTEM_ACTOR, report=report, fmt=format, filters=filters, output=str(path))
        rows = write_report(report, format, filters, path)
        self.stdout.write(f"Wrote {rows} rows of the {report.name} report to {path}.")
