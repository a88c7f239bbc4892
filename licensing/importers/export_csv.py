"""Reading a PowerShell ``Export-Csv`` file of one TS licensing WMI class.

Two styles are recognised:

- Windows PowerShell 5.1 with ``Get-WmiObject``: an optional ``#TYPE
  System.Management.ManagementObject#root\\cimv2\\<class>`` line, the WMI system columns
  (``__GENUS``, ``__CLASS``, ...) and DMTF datetimes.
- PowerShell 7 with ``Get-CimInstance``: no ``#TYPE`` line, the ``CimClass``,
  ``CimInstanceProperties`` and ``CimSystemProperties`` columns and datetimes written in
  the exporting machine's locale.

The encoding is told by the byte order mark: UTF-8 (with or without a BOM) and UTF-16
with a BOM. Columns are found by name, in any order; others are ignored. Values are
converted into typed rows here; a row that cannot be read becomes a problem naming its
file, line and column, and the other rows are still read.
"""

import codecs
import csv
import io
import itertools
from dataclasses import dataclass, field
from datetime import datetime

from licensing.importers import wmi

STYLE_WMI = "Windows PowerShell 5.1 (Get-WmiObject)"
STYLE_CIM = "PowerShell 7 (Get-CimInstance)"
STYLE_PLAIN = "plain CSV"

KEY_PACK_REQUIRED = ("KeyPackId", "TotalLicenses", "ProductType", "KeyPackType")
ISSUED_REQUIRED = ("LicenseId", "KeyPackId", "sIssuedToComputer", "LicenseStatus", "IssueDate")

ERROR = "error"
SKIPPED = "skipped"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One line of the import report: an error, a skipped row, or a warning."""

    level: str
    file: str
    line: int | None
    column: str
    message: str
    code: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f", line {self.line}"
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


@dataclass(slots=True)
class KeyPackRow:
    line: int
    key_pack_id: int
    total_licenses: int
    issued_licenses: int | None
    available_licenses: int | None
    cal_type: str
    product_version: str
    key_pack_type: int
    license_program: str
    expires_on: object
    description: str
    pseudo: str | None


@dataclass(slots=True)
class IssuedLicenseRow:
    line: int
    license_id: int
    key_pack_id: int
    computer: str
    hardware_id: str
    user: str
    status: int
    issued_at: datetime
    expires_at: datetime | None


@dataclass
class ExportFile:
    name: str
    sha256: str
    wmi_class: str = ""
    style: str = ""
    encoding: str = ""
    rows: list = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    readable: bool = True

    @property
    def kind(self) -> str:
        return {wmi.KEY_PACK_CLASS: "key packs", wmi.ISSUED_LICENSE_CLASS: "issued licenses"}.get(
            self.wmi_class, "unknown"
        )

    def fail(self, message: str, line: int | None = None, code: str = "unreadable_file") -> None:
        self.readable = False
        self.problems.append(Problem(ERROR, self.name, line, "", message, code))


class RowError(ValueError):
    def __init__(self, column: str, message: str):
        super().__init__(message)
        self.column = column
        self.message = message


def detect_encoding(data: bytes) -> tuple[str, str, int]:
    """The codec, the encoding's name and the BOM's length, told by the BOM.

    Raises ValueError for data that cannot be text of an export."""
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
        raise ValueError(_not_utf8(exc)) from None


def _not_utf8(exc: UnicodeDecodeError) -> str:
    return (
        f"it is not {exc.encoding.upper()} text (byte {exc.start}); export again with "
        "'-Encoding UTF8' or '-Encoding Unicode'."
    )


def _lines(data: bytes, codec: str, bom: int):
    """The file's lines, decoded a chunk at a time so a large export is never held twice."""
    buffer = io.BytesIO(data)
    buffer.seek(bom)
    return io.TextIOWrapper(buffer, encoding=codec, newline="")


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


def read_export(name: str, data: bytes, sha256: str, *, date_order: str = "mdy") -> ExportFile:
    export = ExportFile(name=name, sha256=sha256)
    try:
        codec, export.encoding, bom = detect_encoding(data)
    except ValueError as exc:
        export.fail(f"Not an Export-Csv file: {exc}", code="not_csv")
        return export
    try:
        return _read(export, _lines(data, codec, bom), date_order)
    except UnicodeDecodeError as exc:
        export.rows = []
        export.fail(f"Not an Export-Csv file: {_not_utf8(exc)}", code="not_csv")
        return export


def _read(export: ExportFile, lines, date_order: str) -> ExportFile:
    name = export.name
    first = lines.readline()
    first_line_no = 1
    declared_class = ""
    if first.startswith("#TYPE"):
        declared_class = _class_from_type_line(first.strip())
        first_line_no = 2
        if "ManagementObject" in first:
            export.style = STYLE_WMI
        elif "CimInstance" in first:
            export.style = STYLE_CIM
        first = lines.readline()
    reader = csv.reader(itertools.chain([first], lines), delimiter=_sniff_delimiter(first),
                        strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        export.fail(f"Not an Export-Csv file: its header cannot be read ({exc}).", first_line_no,
                    code="not_csv")
        return export
    if not header:
        export.fail("The file is empty: it has no header line.", code="not_csv")
        return export
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
        return export
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
        return export
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
        return export

    convert = _key_pack_row if export.wmi_class == wmi.KEY_PACK_CLASS else _issued_license_row
    width = len(header)
    while True:
        start = first_line_no + reader.line_num
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            export.problems.append(Problem(
                ERROR, name, start, "",
                f"The row cannot be read ({exc}); the file looks truncated or damaged.",
                "bad_row",
            ))
            continue
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if len(record) != width:
            export.problems.append(Problem(
                ERROR, name, start, "",
                f"The row has {len(record)} fields but the header has {width}; the file looks "
                "truncated or damaged.", "bad_row",
            ))
            continue

        def value(column, record=record):
            index = columns.get(column.lower())
            return record[index] if index is not None else ""

        try:
            export.rows.append(convert(start, value, date_order))
        except RowError as exc:
            export.problems.append(Problem(ERROR, name, start, exc.column, exc.message, "bad_value"))
    return export


def _field(value, column: str, parse, *args, **kwargs):
    try:
        return parse(value(column), *args, **kwargs)
    except ValueError as exc:
        raise RowError(column, str(exc)) from None


def _optional_uint(value, column: str) -> int | None:
    if wmi.blank(value(column)):
        return None
    return _field(value, column, wmi.parse_uint)


def _key_pack_row(line: int, value, date_order: str) -> KeyPackRow:
    key_pack_type = _field(value, "KeyPackType", wmi.parse_uint)
    description = value("Description").strip()
    type_and_model = value("TypeAndModel").strip()
    pseudo = wmi.pseudo_pack_kind(key_pack_type, description, type_and_model)
    total = _field(value, "TotalLicenses", wmi.parse_uint)
    if total == 0 and pseudo is None:
        raise RowError("TotalLicenses", "TotalLicenses is 0; a key pack holds at least one license.")
    try:
        version = wmi.product_version(value("ProductVersion"), value("ProductVersionID"))
    except ValueError as exc:
        column = "ProductVersion" if not wmi.blank(value("ProductVersion")) else "ProductVersionID"
        raise RowError(column, str(exc)) from None
    return KeyPackRow(
        line=line,
        key_pack_id=_field(value, "KeyPackId", wmi.parse_uint),
        total_licenses=total,
        issued_licenses=_optional_uint(value, "IssuedLicenses"),
        available_licenses=_optional_uint(value, "AvailableLicenses"),
        cal_type=_field(value, "ProductType", wmi.cal_type),
        product_version=version,
        key_pack_type=key_pack_type,
        license_program=wmi.license_program(key_pack_type),
        expires_on=wmi.expiry_date(
            _field(value, "ExpirationDate", wmi.parse_datetime, date_order=date_order)
        ),
        description=(description or type_and_model)[:255],
        pseudo=pseudo,
    )


def _issued_license_row(line: int, value, date_order: str) -> IssuedLicenseRow:
    issued_at = _field(value, "IssueDate", wmi.parse_datetime, date_order=date_order)
    if issued_at is None:
        raise RowError("IssueDate", "IssueDate is blank.")
    computer = value("sIssuedToComputer").strip()
    if not computer:
        raise RowError("sIssuedToComputer", "sIssuedToComputer is blank.")
    return IssuedLicenseRow(
        line=line,
        license_id=_field(value, "LicenseId", wmi.parse_uint),
        key_pack_id=_field(value, "KeyPackId", wmi.parse_uint),
        computer=computer,
        hardware_id=value("sHardwareId").strip()[:128],
        user=value("sIssuedToUser").strip(),
        status=_field(value, "LicenseStatus", wmi.parse_uint),
        issued_at=issued_at,
        expires_at=_field(value, "ExpirationDate", wmi.parse_datetime, date_order=date_order),
    )
