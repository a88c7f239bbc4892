"""Reading Export-Csv files and mapping WMI values (no database)."""

import codecs
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from licensing.importers import wmi
from licensing.importers.export_csv import STYLE_CIM, STYLE_WMI, decode, read_export_bytes
from licensing.models import CalType, LicenseProgram, WindowsVersion

FILES = Path(__file__).parent / "import_files"


def read(name, **kwargs):
    return read_export_bytes(name, (FILES / name).read_bytes(), **kwargs)


def test_decode_tells_the_encoding_by_its_bom():
    text = "KeyPackId,TotalLicenses\r\n"
    assert decode(text.encode()) == (text, "UTF-8")
    assert decode(codecs.BOM_UTF8 + text.encode()) == (text, "UTF-8 with BOM")
    assert decode(codecs.BOM_UTF16_LE + text.encode("utf-16-le")) == (text, "UTF-16 LE")
    with pytest.raises(ValueError, match="not a text file"):
        decode(text.encode("utf-16-le"))  # UTF-16 without its BOM
    with pytest.raises(ValueError, match="not UTF-8"):
        decode("Größe".encode("cp1252"))


def test_dmtf_datetimes_carry_their_utc_offset_in_minutes():
    moment = wmi.parse_datetime("20240115093012.000000+060")
    assert moment == datetime(2024, 1, 15, 8, 30, 12, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(minutes=60)
    assert wmi.parse_datetime("20240115093012.500000-300").astimezone(UTC) == datetime(
        2024, 1, 15, 14, 30, 12, 500000, tzinfo=UTC
    )
    assert wmi.parse_datetime("") is None
    assert wmi.parse_datetime("********000000.000000+000") is None
    with pytest.raises(ValueError, match="not a valid DMTF"):
        wmi.parse_datetime("20241315093012.000000-000")


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("1/15/2024 9:30:12 AM", "mdy", datetime(2024, 1, 15, 9, 30, 12)),
        ("12/31/2030 11:59:59 PM", "mdy", datetime(2030, 12, 31, 23, 59, 59)),
        ("1/1/2024 12:05:00 AM", "mdy", datetime(2024, 1, 1, 0, 5)),
        ("15/01/2024 09:30:12", "dmy", datetime(2024, 1, 15, 9, 30, 12)),
        ("15.01.2024 09:30:12", "dmy", datetime(2024, 1, 15, 9, 30, 12)),
        ("2024-01-15 09:30:12", "ymd", datetime(2024, 1, 15, 9, 30, 12)),
        ("2024/01/15", "ymd", datetime(2024, 1, 15)),
    ],
)
def test_locale_datetimes_follow_the_date_order(text, order, expected):
    assert wmi.parse_datetime(text, date_order=order) == expected.replace(tzinfo=UTC)


def test_locale_datetime_in_the_wrong_order_is_refused():
    with pytest.raises(ValueError, match="not a valid date in the order mdy"):
        wmi.parse_datetime("15/01/2024 09:30:12", date_order="mdy")
    with pytest.raises(ValueError, match="does not match the date order dmy"):
        wmi.parse_datetime("2024-01-15 09:30:12", date_order="dmy")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Windows 2000 Server", WindowsVersion.WINDOWS_2000_SERVER),
        ("Windows .NET Server", WindowsVersion.WINDOWS_SERVER_2003),
        ("Windows Server 2003 R2", WindowsVersion.WINDOWS_SERVER_2003),
        ("Windows Server 2008", WindowsVersion.WINDOWS_SERVER_2008),
        ("Windows Server 7", WindowsVersion.WINDOWS_SERVER_2008_R2),
        ("windows  server 2008 r2", WindowsVersion.WINDOWS_SERVER_2008_R2),
        ("Windows Server 2012", WindowsVersion.WINDOWS_SERVER_2012),
        ("Windows Server 2025", WindowsVersion.WINDOWS_SERVER_2025),
    ],
)
def test_documented_product_versions(text, expected):
    assert wmi.product_version(text) == expected


def test_unknown_product_version_and_the_version_id_fallback():
    with pytest.raises(ValueError, match="Unknown ProductVersion 'Windows Server 2030'"):
        wmi.product_version("Windows Server 2030", "9")
    assert wmi.product_version("", "3") == WindowsVersion.WINDOWS_SERVER_2008_R2
    with pytest.raises(ValueError, match="ProductVersionID 9 is not a known version"):
        wmi.product_version("", "9")


def test_key_pack_types_and_pseudo_packs():
    assert wmi.license_program(1) == LicenseProgram.RETAIL
    assert wmi.license_program(2) == LicenseProgram.SELECT
    assert wmi.license_program(5) == LicenseProgram.OPEN
    assert wmi.license_program(3) == LicenseProgram.OTHER
    assert wmi.pseudo_pack_kind(6, "", "") == "built-in"
    assert wmi.pseudo_pack_kind(0, "Windows 2000 Server - Built-in TS Per Device CAL", "") == "built-in"
    assert wmi.pseudo_pack_kind(4, "", "") == "temporary"
    assert wmi.pseudo_pack_kind(2, "A02", "RDS Per Device CAL") is None
    assert wmi.cal_type("1") == CalType.PER_USER
    with pytest.raises(ValueError, match="ProductType 2 is not valid"):
        wmi.cal_type("2")


def test_windows_powershell_51_export_with_type_line():
    export = read("keypacks_ps51_utf16.csv")
    assert (export.wmi_class, export.style, export.encoding) == (
        "Win32_TSLicenseKeyPack", STYLE_WMI, "UTF-16 LE"
    )
    assert export.problems == []
    pack = export.rows[2]
    assert (pack.line, pack.key_pack_id, pack.total_licenses, pack.issued_licenses) == (5, 4, 5, 2)
    assert pack.expires_on is None  # 2038-01-19 is the licensing service's "never"
    assert [r.pseudo for r in export.rows] == ["built-in", "temporary", None, None]
    assert export.rows[3].expires_on.isoformat() == "2027-06-30"


def test_powershell_7_export_without_type_line():
    export = read("issued_ps7.csv")
    assert (export.wmi_class, export.style, export.encoding) == ("Win32_TSIssuedLicense", STYLE_CIM, "UTF-8")
    first = export.rows[0]
    assert (first.line, first.license_id, first.computer, first.status) == (2, 11, "RDS-CLIENT-01", 2)
    assert first.issued_at == datetime(2024, 1, 15, 9, 30, 12, tzinfo=UTC)


def test_columns_in_any_order_extra_columns_and_another_delimiter():
    text = (
        "Extra;sIssuedToComputer;LicenseStatus;IssueDate;KeyPackId;LicenseId\r\n"
        "x;PC-1;2;20240115093012.000000+120;4;99\r\n"
    )
    export = read_export_bytes("semicolons.csv", text.encode())
    assert export.problems == []
    row = export.rows[0]
    assert (row.license_id, row.key_pack_id, row.computer) == (99, 4, "PC-1")
    assert row.issued_at.utcoffset() == timedelta(hours=2)
    assert row.issued_at.astimezone(UTC).hour == 7


def test_truncated_file_reports_its_last_line():
    export = read("issued_truncated.csv")
    assert len(export.rows) == 2
    [problem] = export.problems
    assert (problem.level, problem.line, problem.code) == ("error", 4, "bad_row")
    assert "truncated" in problem.message


def test_bad_value_names_file_line_and_column():
    export = read("keypacks_unknown_version.csv")
    [problem] = export.problems
    assert (problem.file, problem.line, problem.column) == ("keypacks_unknown_version.csv", 3, "ProductVersion")
    assert str(problem).startswith("keypacks_unknown_version.csv, line 3, column ProductVersion: Unknown")
    assert [r.key_pack_id for r in export.rows] == [7]


def test_files_that_are_not_exports():
    binary = read_export_bytes("photo.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    text = read("random.txt")
    other_class = read_export_bytes(
        "servers.csv",
        b'#TYPE System.Management.ManagementObject#root\\cimv2\\Win32_TSLicenseServer\r\n"Name"\r\n"A"\r\n',
    )
    missing = read_export_bytes("partial.csv", b'"KeyPackId","TotalLicenses"\r\n"4","5"\r\n')
    for export, code in ((binary, "not_csv"), (text, "not_csv"), (other_class, "wrong_class"),
                         (missing, "missing_columns")):
        assert not export.readable
        assert [p.code for p in export.problems] == [code]
        assert export.rows == []
    assert "Win32_TSLicenseServer" in other_class.problems[0].message
    assert "ProductType, KeyPackType, ProductVersion" in missing.problems[0].message


@pytest.mark.parametrize(
    ("text", "version_id", "expected"),
    [
        ("Windows Server 2008 or Windows Server 2008 R2", "2", WindowsVersion.WINDOWS_SERVER_2008),
        ("Windows Server 2008 oder Windows Server 2008 R2", "2", WindowsVersion.WINDOWS_SERVER_2008),
        ("Windows Server 2008 ou Windows Server 2008 R2", "2", WindowsVersion.WINDOWS_SERVER_2008),
        ("Windows Server 2012 o Windows Server 2012 R2", "", WindowsVersion.WINDOWS_SERVER_2012),
        ("Windows Server 2008 или Windows Server 2008 R2", "", WindowsVersion.WINDOWS_SERVER_2008),
        ("Windows Server 7", "3", WindowsVersion.WINDOWS_SERVER_2008_R2),
        # Texts not listed: ProductVersionID decides.
        ("Windows Server 2008 und höher", "2", WindowsVersion.WINDOWS_SERVER_2008),
        ("Windows Server 2016 (Remote Desktop Services)", "5", WindowsVersion.WINDOWS_SERVER_2016),
        ("Windows Server 2019 Datacenter", "6", WindowsVersion.WINDOWS_SERVER_2019),
        ("Windows Server 2022 Standard", "7", WindowsVersion.WINDOWS_SERVER_2022),
        ("", "4", WindowsVersion.WINDOWS_SERVER_2012),
    ],
)
def test_product_version_texts_and_the_version_id(text, version_id, expected):
    assert wmi.product_version(text, version_id) == expected


@pytest.mark.parametrize(
    ("text", "version_id", "message"),
    [
        ("Windows Server 2030", "9", "Unknown ProductVersion 'Windows Server 2030' and ProductVersionID 9 is not"),
        ("Windows Server vNext", "", "Unknown ProductVersion 'Windows Server vNext' and ProductVersionID is blank"),
        ("Windows Server vNext", "x", "ProductVersionID 'x' is not a whole number"),
        ("", "", "ProductVersion and ProductVersionID are blank"),
    ],
)
def test_unknown_product_version_without_a_known_id_is_refused(text, version_id, message):
    with pytest.raises(ValueError, match=message):
        wmi.product_version(text, version_id)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20380119031407.000000+000", None),
        ("20380101000000.000000+000", None),
        ("20380118221407.000000-300", None),  # 2038-01-19 03:14:07 UTC, written at UTC-5
        ("20371231190000.000000-300", None),  # 2038-01-01 00:00 UTC, written at UTC-5
        ("1/19/2038 3:14:07 AM", None),
        ("1/1/2038 12:00:00 AM", None),
        ("20371231000000.000000+000", date(2037, 12, 31)),
        ("20270630000000.000000+120", date(2027, 6, 30)),
    ],
)
def test_2038_means_no_expiry(text, expected):
    assert wmi.expiry_date(wmi.parse_datetime(text)) == expected


@pytest.mark.parametrize(
    ("text", "order", "expected"),
    [
        ("1/15/2024 9:30:12\u202fAM", "mdy", datetime(2024, 1, 15, 9, 30, 12)),
        ("2/29/2024 4:05:00\u202fPM", "mdy", datetime(2024, 2, 29, 16, 5)),
        ("3/9/2024 9:30:12\u00a0AM", "mdy", datetime(2024, 3, 9, 9, 30, 12)),
        ("15/01/2024 4:05:00 p.\u00a0m.", "dmy", datetime(2024, 1, 15, 16, 5)),  # es-ES
        ("15/01/2024 09:30:12", "dmy", datetime(2024, 1, 15, 9, 30, 12)),  # en-GB, fr-FR
        ("15.01.2024 09:30:12", "dmy", datetime(2024, 1, 15, 9, 30, 12)),  # de-DE
        ("2024. 01. 15. 9:30:12", "ymd", datetime(2024, 1, 15, 9, 30, 12)),  # hu-HU
    ],
)
def test_culture_datetimes(text, order, expected):
    assert wmi.parse_datetime(text, date_order=order) == expected.replace(tzinfo=UTC)
