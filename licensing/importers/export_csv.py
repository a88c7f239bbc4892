"""Reading a PowerShell ``Export-Csv`` file of one TS licensing WMI class.

Two styles are recognised:

- Windows PowerShell 5.1 with ``Get-WmiObject``: a ``#TYPE
  System.Management.ManagementObject#root\\cimv2\\<class>`` line (unless
  ``-NoTypeInformation``), the WMI system columns (``PSComputerName``, ``__GENUS``,
  ``__CLASS``, ...) and DMTF datetimes.
- PowerShell 7 with ``Get-CimInstance``: no ``#TYPE`` line (unless
  ``-IncludeTypeInformation``), the ``PSComputerName``, ``CimClass``,
  ``CimInstanceProperties`` and ``CimSystemProperties`` columns and datetimes written in
  the exporting machine's culture.

The encoding is told by the byte order mark: UTF-8 with or without a BOM (5.1 writes
ASCII by default, 7 UTF-8 without BOM) and UTF-16 with a BOM (5.1 ``-Encoding
Unicode``). The separator is sniffed from the header: a comma, or the culture's list
separator with ``-UseCulture`` (``;`` in de-DE and fr-FR). Columns are found by name, in
any order; others are ignored.

The file is streamed: ``read_export`` reads up to the header, and ``ExportFile.iter_rows``
then decodes, converts and yields one typed row at a time while the SHA-256 and the row
count are taken. A row that cannot be read becomes a problem naming its file, line and
column, and the other rows are still read.
"""

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from licensing.importers import wmi
from licensing.importers.rows import (  # noqa: F401 - callers read the row types from here too
    ERROR,
    SKIPPED,
    WARNING,
    IssuedLicenseRow,
    KeyPackRow,
    PerUserIssuanceRow,
    Problem,
    RowError,
)

STYLE_WMI = "Windows PowerShell 5.1 (Get-WmiObject)"
STYLE_CIM = "PowerShell 7 (Get-CimInstance)"
STYLE_PLAIN = "plain CSV"

KEY_PACK_REQUIRED = ("KeyPackId", "TotalLicenses", "ProductType", "KeyPackType")
ISSUED_REQUIRED = ("LicenseId", "KeyPackId", "sIssuedToComputer", "LicenseStatus", "IssueDate")
COLUMNS = (
    "KeyPackId", "Description", "KeyPackType", "ProductType", "ProductVersion", "ProductVersionID",
    "TotalLicenses", "IssuedLicenses", "AvailableLicenses", "ExpirationDate", "TypeAndModel",
    "LicenseId", "sIssuedToUser", "sIssuedToComputer", "LicenseStatus", "IssueDate", "sHardwareId",
)

HEAD_BYTES = 4096  # enough to tell the encoding and refuse binary files
READ_CHUNK = 64 * 1024
MAX_LINE_CHARS = 1024 * 1024  # no export line comes near; bounds memory on a file without line ends


class _HashingReader(io.RawIOBase):
    """The caller's binary stream, read once: every byte read goes through the SHA-256 and
    the byte count. The first bytes are read ahead to tell the encoding."""

    def __init__(self, stream: BinaryIO):
        super().__init__()
        self._stream = stream
        self.sha256 = hashlib.sha256()
        self.size = 0
        chunks, size = [], 0
        while size < HEAD_BYTES:
            data = self._read(HEAD_BYTES - size)
            if not data:
                break
            chunks.append(data)
            size += len(data)
        self.head = b"".join(chunks)
        self._pending = memoryview(self.head)

    def _read(self, size: int) -> bytes:
        data = self._stream.read(size)
        if isinstance(data, str):
            raise TypeError("read_export needs a binary stream (a file opened with 'rb').")
        if data:
            self.sha256.update(data)
            self.size += len(data)
        return data or b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._pending:
            size = min(len(buffer), len(self._pending))
            buffer[:size] = self._pending[:size]
            self._pending = self._pending[size:]
            return size
        data = self._read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Hash what is left unread."""
        self._pending = memoryview(b"")
        while self._read(READ_CHUNK):
            pass


class _Unreadable(Exception):
    """The file cannot be read on from this line: the whole file is refused."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


# Bytes the decoder could not read come through as these (errors="surrogateescape"), so
# the report can name the line that holds them.
_ESCAPED = re.compile("[\udc80-\udcff]")


class _Lines:
    """The decoded lines, counted, each at most MAX_LINE_CHARS long."""

    def __init__(self, text, encoding: str):
        self._text = text
        self._encoding = encoding
        self.count = 0

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            line = self._text.readline(MAX_LINE_CHARS)
        except UnicodeDecodeError as exc:
            raise _Unreadable(self.count + 1, f"Not an Export-Csv file: {_not_text(exc)}") from None
        if not line:
            raise StopIteration
        self.count += 1
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise _Unreadable(self.count, (
                f"Not an Export-Csv file: line {self.count} is longer than {MAX_LINE_CHARS} "
                "characters; the file is damaged or not an export."
            ))
        escaped = _ESCAPED.search(line)
        if escaped:
            byte = ord(escaped.group()) - 0xDC00
            raise _Unreadable(self.count, (
                f"Not an Export-Csv file: line {self.count} is not {self._encoding} text (byte "
                f"0x{byte:02X}); export again with '-Encoding UTF8' or '-Encoding Unicode'."
            ))
        return line


@dataclass
class ExportFile:
    """One export file. ``read_export`` fills in what the header tells; the rows come from
    ``iter_rows`` (streaming) or ``load`` (into ``rows``). ``sha256``, ``size`` and
    ``row_count`` are final once the rows are read, and row problems are appended to
    ``problems`` as they are met."""

    name: str
    sha256: str = ""
    wmi_class: str = ""
    style: str = ""
    encoding: str = ""
    delimiter: str = ""
    rows: list = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    readable: bool = True
    row_count: int = 0  # data records after the header, blank lines not counted
    size: int = 0  # bytes
    _source: _HashingReader | None = field(default=None, repr=False, compare=False)
    _pending_rows: Iterator | None = field(default=None, repr=False, compare=False)
    _rows_taken: bool = field(default=False, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return {wmi.KEY_PACK_CLASS: "key packs", wmi.ISSUED_LICENSE_CLASS: "issued licenses"}.get(
            self.wmi_class, "unknown"
        )

    @property
    def bytes_read(self) -> int:
        """How much of the file has been read so far (for progress)."""
        return self._source.size if self._source is not None else self.size

    def fail(self, message: str, line: int | None = None, code: str = "unreadable_file") -> None:
        self.readable = False
        self.problems.append(Problem(ERROR, self.name, line, "", message, code))

    def iter_rows(self) -> Iterator:
        """The typed rows, one at a time, in file order; once only. Check ``readable``
        after the last one: a file can turn out unreadable part way."""
        if self._rows_taken:
            raise RuntimeError(f"The rows of {self.name} have already been read.")
        self._rows_taken = True
        rows, self._pending_rows = self._pending_rows, None
        return rows if rows is not None else iter(())

    def load(self) -> "ExportFile":
        """Read every row into ``rows``; an unreadable file keeps none."""
        self.rows = list(self.iter_rows())
        if not self.readable:
            self.rows = []
        self.finish()
        return self

    def finish(self) -> None:
        """Hash the bytes left unread, so ``sha256`` and ``size`` are the whole file's."""
        if self._source is not None:
            self._source.drain()
            self.sha256 = self._source.sha256.hexdigest()
            self.size = self._source.size
            self._source = None


def detect_encoding(data: bytes) -> tuple[str, str, int]:
    """The codec, the encoding's name and the BOM's length, told by the BOM of the file's
    first bytes. Raises ValueError for data that cannot be text of an export."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8", "UTF-8 with BOM", len(codecs.BOM_UTF8)
    if data.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", "UTF-16 LE", 2
    if data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", "UTF-16 BE", 2
    if b"\x00" in data:
        raise ValueError(
            "it is not a text file (it holds NUL bytes and has no UTF-16 byte order mark)."
        )
    return "utf-8", "UTF-8", 0


def decode(data: bytes) -> tuple[str, str]:
    """The whole text and the name of its encoding. Raises ValueError."""
    codec, name, bom = detect_encoding(data)
    try:
        return data[bom:].decode(codec), name
    except UnicodeDecodeError as exc:
        raise ValueError(_not_text(exc)) from None


def _not_text(exc: UnicodeDecodeError) -> str:
    return (
        f"it is not {exc.encoding.upper()} text ({exc.reason}); export again with "
        "'-Encoding UTF8' or '-Encoding Unicode'."
    )


def _class_from_type_line(line: str) -> str:
    # "#TYPE System.Management.ManagementObject#root\cimv2\Win32_TSLicenseKeyPack" or
    # "#TYPE Microsoft.Management.Infrastructure.CimInstance#root/cimv2/Win32_TSIssuedLicense"
    name = line[len("#TYPE"):].strip()
    for separator in ("#", "\\", "/"):
        name = name.rsplit(separator, 1)[-1]
    return name


def _sniff_delimiter(header_line: str) -> str:
    # Export-Csv writes commas unless -Delimiter or -UseCulture chose another.
    counts = {d: header_line.count(d) for d in (",", ";", "\t")}
    return max(counts, key=counts.get) if any(counts.values()) else ","


def read_export(name: str, stream: BinaryIO, *, date_order: str = "mdy") -> ExportFile:
    """Open an export from a binary file-like object (a local file, a Django storage
    file): tell its encoding, style, class and columns. Problems of the file as a whole
    are in ``problems`` with ``readable`` False; the rows follow from ``iter_rows``."""
    export = ExportFile(name=name)
    source = _HashingReader(stream)
    export._source = source
    try:
        codec, export.encoding, bom = detect_encoding(source.head)
    except ValueError as exc:
        export.fail(f"Not an Export-Csv file: {exc}", code="not_csv")
        export.finish()
        return export
    buffered = io.BufferedReader(source, READ_CHUNK)
    buffered.read(bom)
    text = io.TextIOWrapper(buffered, encoding=codec, errors="surrogateescape", newline="")
    lines = _Lines(text, export.encoding.removesuffix(" with BOM"))
    try:
        rows = _open(export, lines, date_order)
    except _Unreadable as exc:
        export.fail(exc.message, exc.line, code="not_csv")
        rows = None
    if rows is None:
        export.finish()
    else:
        export._pending_rows = rows
    return export


def read_export_bytes(name: str, data: bytes, *, date_order: str = "mdy") -> ExportFile:
    """``read_export`` for a file already in memory, with every row loaded into ``rows``."""
    return read_export(name, io.BytesIO(data), date_order=date_order).load()


def _open(export: ExportFile, lines: _Lines, date_order: str) -> Iterator | None:
    """Read the #TYPE line and the header; the row generator, or None for a file that
    cannot be imported."""
    first = next(lines, "")
    first_line_no = 1
    declared_class = ""
    if first.startswith("#TYPE"):
        declared_class = _class_from_type_line(first.strip())
        first_line_no = 2
        if "ManagementObject" in first:
            export.style = STYLE_WMI
        elif "CimInstance" in first:
            export.style = STYLE_CIM
        first = next(lines, "")
    export.delimiter = _sniff_delimiter(first)
    reader = csv.reader(_chain(first, lines), delimiter=export.delimiter, strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        export.fail(f"Not an Export-Csv file: its header cannot be read ({exc}).", first_line_no,
                    code="not_csv")
        return None
    if not header:
        export.fail("The file is empty: it has no header line.", code="not_csv")
        return None
    columns: dict[str, int] = {}
    for index, column in enumerate(header):
        columns.setdefault(column.strip().lower(), index)
    if not export.style:
        if "__class" in columns or "__genus" in columns:
            export.style = STYLE_WMI
        elif "cimclass" in columns or "ciminstanceproperties" in columns:
            export.style = STYLE_CIM
        else:
            export.style = STYLE_PLAIN

    def has(*names):
        return all(n.lower() in columns for n in names)

    if declared_class and declared_class not in (wmi.KEY_PACK_CLASS, wmi.ISSUED_LICENSE_CLASS):
        export.fail(
            f"The file holds {declared_class}; only {wmi.KEY_PACK_CLASS} and "
            f"{wmi.ISSUED_LICENSE_CLASS} exports can be imported.", 1, code="wrong_class",
        )
        return None
    if declared_class:
        export.wmi_class = declared_class
    elif has("KeyPackId", "TotalLicenses"):
        export.wmi_class = wmi.KEY_PACK_CLASS
    elif has("LicenseId", "sIssuedToComputer"):
        export.wmi_class = wmi.ISSUED_LICENSE_CLASS
    else:
        export.fail(
            "Not an export of Win32_TSLicenseKeyPack or Win32_TSIssuedLicense: it has no #TYPE "
            "line and its header has neither KeyPackId and TotalLicenses nor LicenseId and "
            "sIssuedToComputer.", first_line_no, code="not_csv",
        )
        return None
    required = KEY_PACK_REQUIRED if export.wmi_class == wmi.KEY_PACK_CLASS else ISSUED_REQUIRED
    missing = [c for c in required if c.lower() not in columns]
    if export.wmi_class == wmi.KEY_PACK_CLASS and not (
        "productversion" in columns or "productversionid" in columns
    ):
        missing.append("ProductVersion")
    if missing:
        export.fail(
            f"The {export.wmi_class} export lacks the column(s) {', '.join(missing)}.",
            first_line_no, code="missing_columns",
        )
        return None
    convert = _key_pack_row if export.wmi_class == wmi.KEY_PACK_CLASS else _issued_license_row
    # By the names the converters ask for, so a row's look-ups need no case folding.
    indexes = {name: columns[name.lower()] for name in COLUMNS if name.lower() in columns}
    return _rows(export, reader, lines, indexes, len(header), first_line_no, convert, date_order)


def _chain(first: str, lines: _Lines):
    if first:
        yield first
    yield from lines


def _rows(export, reader, lines, columns, width, first_line_no, convert, date_order):
    name = export.name
    try:
        while True:
            start = first_line_no + reader.line_num
            try:
                record = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                export.row_count += 1
                export.problems.append(Problem(
                    ERROR, name, start, "",
                    f"The row cannot be read ({exc}); the file looks truncated or damaged.",
                    "bad_row",
                ))
                continue
            if not record or (len(record) == 1 and not record[0].strip()):
                continue
            export.row_count += 1
            if len(record) != width:
                export.problems.append(Problem(
                    ERROR, name, start, "",
                    f"The row has {len(record)} fields but the header has {width}; the file looks "
                    "truncated or damaged.", "bad_row",
                ))
                continue

            def value(column, record=record):
                index = columns.get(column)
                return record[index] if index is not None else ""

            try:
                row = convert(start, value, date_order)
            except RowError as exc:
                export.problems.append(Problem(ERROR, name, start, exc.column, exc.message, exc.code))
                continue
            yield row
    except _Unreadable as exc:
        export.fail(exc.message, exc.line, code="not_csv")
    export.finish()


def _field(value, column: str, parse, *args, **kwargs):
    try:
        return parse(value(column), *args, **kwargs)
    except ValueError as exc:
        raise RowError(column, str(exc)) from None


def _optional_uint(value, column: str) -> int | None:
    if wmi.blank(value(column)):
        return None
    return _field(value, column, wmi.parse_uint)


def _lenient(parse, text: str, *args, **kwargs):
    """A value of a pseudo pack, which is skipped: unreadable is None, never an error."""
    if wmi.blank(text):
        return None
    try:
        return parse(text, *args, **kwargs)
    except ValueError:
        return None


def _key_pack_row(line: int, value, date_order: str) -> KeyPackRow:
    key_pack_type = _field(value, "KeyPackType", wmi.parse_uint)
    description = value("Description").strip()
    type_and_model = value("TypeAndModel").strip()
    pseudo = wmi.pseudo_pack_kind(key_pack_type, description, type_and_model)
    if pseudo:
        return _pseudo_pack_row(line, value, date_order, key_pack_type, pseudo,
                                (description or type_and_model)[:255])
    total = _field(value, "TotalLicenses", wmi.parse_uint)
    if total == 0:
        raise RowError("TotalLicenses", "TotalLicenses is 0; a key pack holds at least one license.")
    version = _version(value)
    key_pack_id = _field(value, "KeyPackId", wmi.parse_uint)
    issued = _optional_uint(value, "IssuedLicenses")
    available = _optional_uint(value, "AvailableLicenses")
    if issued is not None and available is not None and total != issued + available:
        raise RowError(
            "TotalLicenses",
            f"Key pack {key_pack_id}: TotalLicenses {total} is not IssuedLicenses {issued} + "
            f"AvailableLicenses {available} ({issued + available}); the row contradicts itself.",
            "key_pack_counts",
        )
    return KeyPackRow(
        line=line,
        key_pack_id=key_pack_id,
        total_licenses=total,
        issued_licenses=issued,
        available_licenses=available,
        cal_type=_field(value, "ProductType", wmi.cal_type),
        product_version=version,
        key_pack_type=key_pack_type,
        license_program=wmi.license_program(key_pack_type),
        expires_on=wmi.expiry_date(
            _field(value, "ExpirationDate", wmi.parse_datetime, date_order=date_order)
        ),
        description=(description or type_and_model)[:255],
        pseudo=None,
    )


def _version(value) -> str:
    try:
        return wmi.product_version(value("ProductVersion"), value("ProductVersionID"))
    except ValueError as exc:
        column = "ProductVersion" if not wmi.blank(value("ProductVersion")) else "ProductVersionID"
        raise RowError(column, str(exc)) from None


def _pseudo_pack_row(line, value, date_order, key_pack_type, pseudo, description) -> KeyPackRow:
    """The built-in or temporary pack, skipped by the import whatever its ProductType
    (the built-in pack says 3) and counts (4294967295, or -1 written signed). The temporary
    pack's version must be known: its temporary CALs take it."""
    try:
        version = _version(value)
    except RowError:
        if pseudo == "temporary":
            raise
        version = None
    moment = _lenient(wmi.parse_datetime, value("ExpirationDate"), date_order=date_order)
    return KeyPackRow(
        line=line,
        key_pack_id=_field(value, "KeyPackId", wmi.parse_uint),
        total_licenses=_lenient(wmi.parse_count, value("TotalLicenses")),
        issued_licenses=_lenient(wmi.parse_count, value("IssuedLicenses")),
        available_licenses=_lenient(wmi.parse_count, value("AvailableLicenses")),
        cal_type=_lenient(wmi.cal_type, value("ProductType")),
        product_version=version,
        key_pack_type=key_pack_type,
        license_program=wmi.license_program(key_pack_type),
        expires_on=wmi.expiry_date(moment),
        description=description,
        pseudo=pseudo,
    )


def _issued_license_row(line: int, value, date_order: str):
    issued_at = _field(value, "IssueDate", wmi.parse_datetime, date_order=date_order)
    if issued_at is None:
        raise RowError("IssueDate", "IssueDate is blank.")
    computer = value("sIssuedToComputer").strip()
    user = value("sIssuedToUser").strip()
    if not computer and not user:
        raise RowError(
            "sIssuedToComputer",
            "sIssuedToComputer and sIssuedToUser are blank; the license names neither a computer "
            "nor a user.",
        )
    license_id = _field(value, "LicenseId", wmi.parse_uint)
    key_pack_id = _field(value, "KeyPackId", wmi.parse_uint)
    status = _field(value, "LicenseStatus", wmi.parse_uint)
    expires_at = _field(value, "ExpirationDate", wmi.parse_datetime, date_order=date_order)
    if not computer:
        # A per-user CAL: no computer, an all-zero hardware ID, the user as DOMAIN\user.
        return PerUserIssuanceRow(
            line=line, license_id=license_id, key_pack_id=key_pack_id, user=user,
            status=status, issued_at=issued_at, expires_at=expires_at,
        )
    return IssuedLicenseRow(
        line=line,
        license_id=license_id,
        key_pack_id=key_pack_id,
        computer=computer,
        hardware_id=value("sHardwareId").strip()[:128],
        user=user,
        status=status,
        issued_at=issued_at,
        expires_at=expires_at,
    )
