"""Writing reports to CSV and XLSX, for a response or a file.

CSV streams, so memory stays flat as rows grow: on PostgreSQL the database writes
the rows itself (COPY, cells formatted and neutralised in SQL), one statement read by a
thread for a download, bounded chunks for a file whose progress is shown; elsewhere rows
come from a chunked iterator and go out in small blocks. XLSX is
written by XlsxWriter in ``constant_memory`` mode, row by row, to a file. In both
formats a text cell that a spreadsheet would read as a formula is neutralised
(OWASP: prefix a single quote).
"""

import contextlib
import csv
import io
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import xlsxwriter
from django.db import connection
from django.utils import timezone

from licensing.reports.base import Report, neutralise

FORMATS = ("csv", "xlsx")


CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


CSV_BLOCK_ROWS = 500


# PostgreSQL's COPY ends lines with LF; the Python writer does the same.
LINE_END = "\n"


# Excel's last row is 1,048,576; longer reports continue on a further sheet.
XLSX_MAX_DATA_ROWS = 1_048_575


PROGRESS_EVERY_ROWS = 2000


COPY_CHUNK_ROWS = 50_000


# A streamed response sends COPY's output in blocks of about this size, at most this many
# blocks waiting to be sent (a few MB in all, whatever the report's size).
STREAM_BLOCK_BYTES = 1 << 20
STREAM_QUEUE_BLOCKS = 4


COPY_BUFFER_BYTES = 1 << 20


def export_filename(report: Report, fmt: str, moment=None) -> str:
    moment = moment or timezone.now()
    return f"{report.name}-{moment:%Y%m%d-%H%M%S}.{fmt}"


class _LineBuffer:
    """A file-like object whose ``write`` hands back the line csv.writer formatted."""

    def write(self, value: str) -> str:
        return value


def csv_chunks(report: Report, filters: Mapping[str, str], *, rows: Iterable[tuple] | None = None
               ) -> Iterator[str]:
    """The report as CSV text, in blocks of a few hundred rows (for streaming)."""
    writer = csv.writer(_LineBuffer(), lineterminator=LINE_END)
    yield writer.writerow(report.headers)
    block = []
    for row in rows if rows is not None else report.rows(filters):
        block.append(writer.writerow([neutralise(v) for v in row]))
        if len(block) >= CSV_BLOCK_ROWS:
            yield "".join(block)
            block = []
    if block:
        yield "".join(block)


def _counting(rows: Iterable[tuple], on_row: Callable[[int], None] | None) -> Iterator[tuple]:
    count = 0
    for row in rows:
        yield row
        count += 1
        if on_row is not None and count % PROGRESS_EVERY_ROWS == 0:
            on_row(count)


def _header_bytes(report: Report) -> bytes:
    header = io.StringIO()
    csv.writer(header, lineterminator=LINE_END).writerow(report.headers)
    return header.getvalue().encode()


def _copy_rows(report: Report, filters: Mapping[str, str], target, *, chunk_rows: int) -> Iterator[int]:
    """PostgreSQL writes the rows into ``target`` itself (``COPY ... TO STDOUT``): the
    same cells as the Python writer, ``chunk_rows`` rows per statement, by ranges of the
    report's unique ordering key, yielding the running row count after each one so that
    the caller can report progress (a background export's progress bar).
    """
    queryset = report.queryset(filters)
    key = report.key
    written = 0
    last = None
    with connection.cursor() as cursor:
        while True:
            chunk = queryset if last is None else queryset.filter(**{f"{key}__gt": last})
            ends = list(chunk.values_list(key, flat=True)[chunk_rows - 1:chunk_rows])
            if ends:
                chunk = chunk.filter(**{f"{key}__lte": ends[0]})
            select = report.copy_select(chunk, cursor)
            if select is None:  # the filters match nothing: no rows to copy
                yield written
                return
            cursor.cursor.copy_expert(f"COPY ({select}) TO STDOUT WITH (FORMAT csv)", target)
            written += cursor.cursor.rowcount
            yield written
            if not ends:
                return
            last = ends[0]


def csv_stream(report: Report, filters: Mapping[str, str]) -> Iterator[bytes]:
    """The report as CSV bytes for a streamed response. On PostgreSQL, one COPY writes every
    row while the response sends them (``_copy_stream``); elsewhere the Python writer runs."""
    if not report.can_copy(connection):
        for block in csv_chunks(report, filters):
            yield block.encode()
        return
    yield _header_bytes(report)
    statement = _copy_statement(report, filters)
    if statement is not None:
        yield from _copy_stream(statement)


def _copy_statement(report: Report, filters: Mapping[str, str]) -> str | None:
    """The whole report's ``COPY ... TO STDOUT``; None when the filters match nothing."""
    with connection.cursor() as cursor:
        select = report.copy_select(report.queryset(filters), cursor)
    return None if select is None else f"COPY ({select}) TO STDOUT WITH (FORMAT csv)"


class _StreamClosed(Exception):
    """The response was closed before the COPY ended (the client went away)."""


_DONE = object()


def _copy_stream(statement: str, result: dict | None = None) -> Iterator[bytes]:
    """Run one ``COPY ... TO STDOUT`` on this request's connection, in a thread, and yield its
    output in blocks of about ``STREAM_BLOCK_BYTES`` as they come; ``result["rows"]`` is then
    the number of rows copied.

    The database formats rows while the response sends the ones before: as fast as
    ``psql \\copy``, where a COPY per chunk of rows would leave the database idle during each
    send. At most ``STREAM_QUEUE_BLOCKS`` blocks wait in between, so memory stays flat
    whatever the size. If the response is closed early, the COPY is cancelled on the server
    and the thread ends before this generator does. The connection is not used by anyone
    else meanwhile: the request's own code has returned its response.
    """
    connection.ensure_connection()
    raw = connection.connection
    blocks: queue.Queue = queue.Queue(maxsize=STREAM_QUEUE_BLOCKS)
    closed = threading.Event()

    def put(item) -> None:
        while not closed.is_set():
            try:
                blocks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue
        raise _StreamClosed

    class Sink:  # psycopg2 calls write() once per row
        def __init__(self):
            self.parts: list[bytes] = []
            self.size = 0

        def write(self, data: bytes) -> None:
            self.parts.append(data)
            self.size += len(data)
            if self.size >= STREAM_BLOCK_BYTES:
                self.flush()

        def flush(self) -> None:
            if self.parts:
                put(b"".join(self.parts))
                self.parts, self.size = [], 0

    def produce() -> None:
        sink = Sink()
        try:
            with raw.cursor() as cursor:
                cursor.copy_expert(statement, sink)
                if result is not None:
                    result["rows"] = cursor.rowcount
            sink.flush()
            put(_DONE)
        except _StreamClosed:
            pass
        except Exception as exc:  # handed to the response, which fails as a failed COPY would
            with contextlib.suppress(_StreamClosed):
                put(exc)

    thread = threading.Thread(target=produce, name="report-copy", daemon=True)
    thread.start()
    try:
        while True:
            item = blocks.get()
            if item is _DONE:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        if thread.is_alive():  # closed early: stop the server's COPY, then let the thread end
            closed.set()
            raw.cancel()
        thread.join()


def _copy_csv(report: Report, filters: Mapping[str, str], path: Path,
              on_row: Callable[[int], None] | None) -> int:
    """The CSV file by COPY: in ``COPY_CHUNK_ROWS`` chunks when progress is wanted, else one
    statement whose output a thread reads while this one writes the file."""
    written = 0
    with open(path, "wb", buffering=COPY_BUFFER_BYTES) as handle:
        handle.write(_header_bytes(report))
        if on_row is None:
            statement = _copy_statement(report, filters)
            if statement is not None:
                result: dict = {}
                for block in _copy_stream(statement, result):
                    handle.write(block)
                written = result["rows"]
            return written
        for written in _copy_rows(report, filters, handle, chunk_rows=COPY_CHUNK_ROWS):
            on_row(written)
    return written


def write_csv(report: Report, filters: Mapping[str, str], path: Path, *,
              on_row: Callable[[int], None] | None = None, use_copy: bool | None = None) -> int:
    """Write the report to ``path`` as CSV; returns the number of data rows.

    On PostgreSQL, reports whose cells the database can compute go through COPY.
    """
    if use_copy is None:
        use_copy = report.can_copy(connection)
    if use_copy:
        return _copy_csv(report, filters, path, on_row)
    written = 0

    def rows():
        nonlocal written
        for row in _counting(report.rows(filters), on_row):
            written += 1
            yield row

    with open(path, "w", encoding="utf-8", newline="") as handle:
        for chunk in csv_chunks(report, filters, rows=rows()):
            handle.write(chunk)
    return written


def write_xlsx(report: Report, filters: Mapping[str, str], path: Path, *,
               on_row: Callable[[int], None] | None = None) -> int:
    """Write the report to ``path`` as XLSX, row by row (constant memory)."""
    workbook = xlsxwriter.Workbook(
        str(path), {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    try:
        header_format = workbook.add_format({"bold": True, "bg_color": "#DDE4EE", "border": 1})
        sheet_number = 0
        sheet = None
        sheet_row = XLSX_MAX_DATA_ROWS
        written = 0
        for row in _counting(report.rows(filters), on_row):
            if sheet_row >= XLSX_MAX_DATA_ROWS:
                sheet_number += 1
                sheet = _new_sheet(workbook, report, sheet_number, header_format)
                sheet_row = 0
            sheet_row += 1
            for col, value in enumerate(row):
                value = neutralise(value)
                if isinstance(value, str):
                    sheet.write_string(sheet_row, col, value)
                elif value is not None:
                    sheet.write_number(sheet_row, col, value)
            written += 1
        if sheet is None:
            _new_sheet(workbook, report, 1, header_format)
    finally:
        workbook.close()
    return written


def _new_sheet(workbook, report: Report, number: int, header_format):
    # Sheet names are at most 31 characters and may not hold []:*?/\
    base = re.sub(r"[\[\]:*?/\\]", " ", report.title)[:24].strip()
    sheet = workbook.add_worksheet(base if number == 1 else f"{base} ({number})")
    for col, column in enumerate(report.columns):
        sheet.set_column(col, col, column.width)
        sheet.write_string(0, col, column.header, header_format)
    sheet.freeze_panes(1, 0)
    return sheet


WRITERS = {"csv": write_csv, "xlsx": write_xlsx}


def write_report(report: Report, fmt: str, filters: Mapping[str, str], path: Path, *,
                 on_row: Callable[[int], None] | None = None) -> int:
    return WRITERS[fmt](report, filters, path, on_row=on_row)
