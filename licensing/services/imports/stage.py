"""The parse step: an import's files, read as they stream from the imports storage.

Key pack rows are kept (a server has tens of them). Issued-license rows go to the staging
table (``ImportRow``) a few thousand at a time, by PostgreSQL's COPY where there is one,
so memory stays flat however long the file. A row the parser or this step cannot accept
becomes a problem naming its file, line and column, and is not staged.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import connection

from core.files import import_storage
from inventory.models import hostname_validator
from licensing.importers import wmi
from licensing.importers.export_csv import ERROR, ExportFile, KeyPackRow, PerUserIssuanceRow, Problem, read_export
from licensing.models import ImportJob, ImportRow

STAGE_BATCH = 5000
COPY_COLUMNS = ("job_id", "file", "line", "stage", "license_id", "key_pack_id", "computer", "computer_key",
                "hardware_id", "user", "status", "issued_at", "expires_at")


@dataclass
class Staged:
    """What the parse step found: every file, the key pack rows, and how many rows it staged."""

    exports: list[ExportFile] = field(default_factory=list)
    key_pack_rows: list[tuple[ExportFile, KeyPackRow]] = field(default_factory=list)
    staged_rows: int = 0

    @property
    def lists_key_packs(self) -> bool:
        return any(e.readable and e.wmi_class == wmi.KEY_PACK_CLASS for e in self.exports)

    @property
    def lists_licenses(self) -> bool:
        return any(e.readable and e.wmi_class == wmi.ISSUED_LICENSE_CLASS for e in self.exports)


def stage_of(row) -> int:
    """Ended CALs first (their seats come back), then permanent, then temporary CALs (so a
    temporary CAL sees every permanent one of its machine), then per-user CALs."""
    if isinstance(row, PerUserIssuanceRow):
        return ImportRow.PER_USER
    if row.status == wmi.LICENSE_STATUS_ACTIVE:
        return ImportRow.PERMANENT
    if row.status == wmi.LICENSE_STATUS_TEMPORARY:
        return ImportRow.TEMPORARY
    return ImportRow.ENDED


def _text(value: str, length: int) -> str:
    return value.replace("\x00", "")[:length]


def _copy_field(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str):
        value = value.isoformat()
    return '"' + value.replace('"', '""') + '"'


class _Writer:
    """Staged rows, written in batches: COPY on PostgreSQL, bulk_create elsewhere."""

    def __init__(self, job: ImportJob):
        self.job = job
        self.batch: list[tuple] = []
        self.written = 0

    def add(self, values: tuple) -> None:
        self.batch.append(values)
        if len(self.batch) >= STAGE_BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        if connection.vendor == "postgresql":
            buffer = io.StringIO()
            for values in self.batch:
                buffer.write(",".join(_copy_field(v) for v in values))
                buffer.write("\n")
            buffer.seek(0)
            columns = ", ".join(f'"{c}"' for c in COPY_COLUMNS)
            with connection.cursor() as cursor:
                cursor.cursor.copy_expert(f"COPY licensing_importrow ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
        else:
            ImportRow.objects.bulk_create([ImportRow(**dict(zip(COPY_COLUMNS, values, strict=True)))
                                           for values in self.batch])
        self.written += len(self.batch)
        self.batch = []


def stage_files(job: ImportJob, *, on_bytes: Callable[[int, int], None] | None = None) -> Staged:
    """Read the job's files and stage their rows. ``on_bytes(done, total)`` follows the reading."""
    ImportRow.objects.filter(job=job).delete()  # a run that starts again starts from nothing
    store = import_storage()
    total = sum(entry.get("size", 0) for entry in job.files) or 1
    done = 0
    staged = Staged()
    writer = _Writer(job)
    for index, entry in enumerate(job.files):
        with store.open(entry["stored"], "rb") as handle:
            export = read_export(entry["name"], handle, date_order=job.date_order)
            staged.exports.append(export)
            for count, row in enumerate(export.iter_rows(), start=1):
                if isinstance(row, KeyPackRow):
                    staged.key_pack_rows.append((export, row))
                else:
                    _stage_row(writer, job, index, export, row)
                if on_bytes is not None and count % STAGE_BATCH == 0:
                    on_bytes(done + export.bytes_read, total)
            export.finish()
        done += export.size
    writer.flush()
    staged.staged_rows = writer.written
    return staged


def _stage_row(writer: _Writer, job: ImportJob, index: int, export: ExportFile, row) -> None:
    if isinstance(row, PerUserIssuanceRow):
        computer = ""
    else:
        computer = row.computer
        try:
            hostname_validator(computer)
        except ValidationError:
            export.problems.append(Problem(ERROR, export.name, row.line, "sIssuedToComputer",
                                           f"'{computer}' is not a valid host name.", "bad_value"))
            return
    writer.add((
        job.pk, index, row.line, stage_of(row), row.license_id, row.key_pack_id, computer, computer.lower(),
        _text(getattr(row, "hardware_id", ""), 128), _text(row.user, 256), row.status, row.issued_at,
        row.expires_at,
    ))


def unstage(job: ImportJob) -> None:
    ImportRow.objects.filter(job=job).delete()
