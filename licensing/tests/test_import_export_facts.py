"""Exports as Windows really writes them: the built-in pack, localised ProductVersion texts,
per-user issuances, "never expires", key pack counts, culture dates and separators, and a
parser that streams.

The files in import_files/ are written the way Export-Csv writes them: Windows PowerShell
5.1 with Get-WmiObject (#TYPE line, PSComputerName and the WMI system columns, class
properties in alphabetical order, DMTF datetimes, ASCII by default or UTF-16 LE with BOM
for -Encoding Unicode) and PowerShell 7 with Get-CimInstance (no #TYPE line, class
properties in MOF order then PSComputerName, CimClass, CimInstanceProperties and
CimSystemProperties, culture datetimes, UTF-8 without BOM by default or with it for
-Encoding utf8BOM); quoted fields, CRLF line ends, ";" with -UseCulture in de-DE and fr-FR.
"""

import hashlib
import io
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage

from licensing.importers import wmi
from licensing.importers.export_csv import (
    ERROR,
    STYLE_CIM,
    STYLE_WMI,
    IssuedLicenseRow,
    PerUserIssuanceRow,
    Problem,
    read_export,
    read_export_bytes,
)
from licensing.models import CalType, KeyPack, License, LicenseProgram, PerUserIssuance, WindowsVersion
from licensing.services.imports import license_server_import
from licensing.tests.factories import LicenseServerFactory

FILES = Path(__file__).parent / "import_files"


def read(name, **kwargs):
    return read_export_bytes(name, (FILES / name).read_bytes(), **kwargs)


def problems(export):
    return [(p.level, p.line, p.column, p.code) for p in export.problems]




@pytest.fixture
def server_east(db):
    return LicenseServerFactory(
        name="TSLS-EAST", windows_version=WindowsVersion.WINDOWS_SERVER_2012,
        builtin_cal_for_pro_clients=False,
    )


# 1. The built-in pack ------------------------------------------------------------------


def test_built_in_pack_with_product_type_3_and_all_ones_total_is_read_as_a_pseudo_pack():
    export = read("keypacks_ps51_builtin_unicode.csv")

    assert (export.wmi_class, export.style, export.encoding, export.delimiter) == (
        "Win32_TSLicenseKeyPack", STYLE_WMI, "UTF-16 LE", ","
    )
    assert export.problems == []
    packs = {r.key_pack_id: r for r in export.rows}
    assert [r.pseudo for r in export.rows] == ["built-in", "temporary", None, None, None]
    builtin = packs[2]
    assert (builtin.line, builtin.key_pack_type, builtin.total_licenses) == (3, 6, 4294967295)
    assert builtin.cal_type is None  # ProductType 3 is outside the documented 0-2
    assert builtin.product_version == WindowsVersion.WINDOWS_2000_SERVER


def test_built_in_pack_counts_written_signed_are_read_too():
    export = read("keypacks_signed_counts.csv")

    assert export.problems == []
    builtin, purchased = export.rows
    assert (builtin.pseudo, builtin.total_licenses, builtin.available_licenses) == ("built-in", 4294967295, 4294967295)
    assert (purchased.key_pack_id, purchased.total_licenses) == (7, 20)
    assert wmi.parse_count("-1") == 4294967295
    with pytest.raises(ValueError, match="not a whole number"):
        wmi.parse_uint("-1")  # a purchased pack's count stays strict


def test_pseudo_packs_are_read_leniently_but_the_temporary_packs_version_must_be_known():
    header = ('"KeyPackId","Description","KeyPackType","ProductType","ProductVersion","ProductVersionID",'
              '"TotalLicenses","IssuedLicenses","AvailableLicenses","ExpirationDate","TypeAndModel"\r\n')
    text = header + (
        '"2","Built-in TS Per Device CAL","6","3","Windows 2000 Server (built-in)","0","-1","x","-1","",'
        '"Built-in TS Per Device CAL"\r\n'
        '"3","Temporary Licenses for Windows Server 2030","4","0","Windows Server 2030","9","0","1","0",'
        '"1/19/2038 3:14:07 AM","Temporary Licenses for RDS Per Device CAL"\r\n'
    )
    export = read_export_bytes("pseudo.csv", text.encode())

    [builtin] = export.rows
    assert (builtin.pseudo, builtin.product_version, builtin.cal_type) == ("built-in", None, None)
    assert (builtin.total_licenses, builtin.issued_licenses, builtin.expires_on) == (4294967295, None, None)
    assert problems(export) == [(ERROR, 3, "ProductVersion", "bad_value")]


def test_an_export_listing_the_built_in_pack_imports_and_skips_it(server_east):
    report = license_server_import(server_name="TSLS-EAST", actor="alice",
                                   files=[("keypacks.csv", (FILES / "keypacks_ps51_builtin_unicode.csv").read_bytes())])

    assert report.committed and report.errors == []
    assert [(p.line, p.code) for p in report.skipped] == [(3, "pseudo_pack"), (4, "pseudo_pack")]
    assert "the built-in pack" in report.skipped[0].message
    assert set(KeyPack.objects.values_list("key_pack_id", flat=True)) == {4, 5, 6}


def test_a_temporary_cal_of_a_built_in_pack_of_unknown_version_is_a_problem(server_east):
    packs = ('"KeyPackId","Description","KeyPackType","ProductType","ProductVersion","ProductVersionID",'
             '"TotalLicenses"\r\n"2","Built-in TS Per Device CAL","6","3","?","0","4294967295"\r\n')
    issued = ('"LicenseId","KeyPackId","sIssuedToComputer","LicenseStatus","IssueDate"\r\n'
              '"1","2","WS-0001","1","20240115093012.000000+000"\r\n')
    report = license_server_import(server_name="TSLS-EAST", actor="alice",
                                   files=[("packs.csv", packs.encode()), ("issued.csv", issued.encode())])

    assert not report.committed
    assert [(p.file, p.line, p.code) for p in report.errors] == [("issued.csv", 2, "unknown_key_pack")]
    assert "the built-in pack, whose product version is unknown" in report.errors[0].message


# 2. ProductVersion is free text -------------------------------------------------------


def test_localised_exports_map_their_versions():
    german = read("keypacks_ps7_de_usculture.csv", date_order="dmy")
    french = read("keypacks_ps7_fr_usculture.csv", date_order="dmy")

    assert german.problems == [] and french.problems == []
    assert {r.key_pack_id: r.product_version for r in german.rows} == {
        2: WindowsVersion.WINDOWS_2000_SERVER,
        3: WindowsVersion.WINDOWS_SERVER_2008,
        4: WindowsVersion.WINDOWS_SERVER_2008,
        5: WindowsVersion.WINDOWS_SERVER_2016,
        6: WindowsVersion.WINDOWS_SERVER_2022,  # "Windows Server 2022 Standard", ProductVersionID 7
    }
    assert german.rows[1].description.startswith("Temporäre Lizenzen für Windows Server 2008")
    assert {r.key_pack_id: r.product_version for r in french.rows} == {
        4: WindowsVersion.WINDOWS_SERVER_2008, 7: WindowsVersion.WINDOWS_SERVER_2019,
    }


def test_unknown_versions_map_by_id_or_become_a_problem_of_their_row():
    export = read("keypacks_ps7_unknown_versions.csv")

    assert {r.key_pack_id: r.product_version for r in export.rows} == {
        10: WindowsVersion.WINDOWS_SERVER_2016, 11: WindowsVersion.WINDOWS_SERVER_2022,
    }
    assert problems(export) == [
        (ERROR, 4, "ProductVersion", "bad_value"),
        (ERROR, 5, "ProductVersion", "bad_value"),
    ]
    assert str(export.problems[0]).startswith(
        "keypacks_ps7_unknown_versions.csv, line 4, column ProductVersion: Unknown ProductVersion "
        "'Windows Server 2030' and ProductVersionID 9 is not a known version"
    )
    assert "ProductVersionID is blank" in export.problems[1].message


# 3. Per-user issuances ----------------------------------------------------------------


def test_per_user_issuances_are_rows_of_their_own():
    export = read("issued_ps51_per_user.csv")

    assert (export.style, export.encoding) == (STYLE_WMI, "UTF-8")  # ASCII, 5.1's default
    assert export.problems == []
    device, bob, carol = export.rows
    assert isinstance(device, IssuedLicenseRow) and not device.per_user
    assert (device.computer, device.user) == ("WS-0101", "CONTOSO\\alice")
    assert isinstance(bob, PerUserIssuanceRow) and bob.per_user
    assert (bob.line, bob.license_id, bob.key_pack_id, bob.user, bob.status) == (4, 2, 5, "CONTOSO\\bob", 2)
    assert bob.issued_at == datetime(2024, 1, 16, 15, 15, tzinfo=UTC)  # DMTF -300
    assert bob.expires_at == datetime(2024, 5, 1, 14, 15, tzinfo=UTC)
    assert (carol.line, carol.user) == (5, "CONTOSO\\carol")  # sIssuedToComputer " "

    cim = read("issued_ps7_en_us_nnbsp.csv")
    assert cim.problems == []
    assert [type(r).__name__ for r in cim.rows] == ["IssuedLicenseRow", "IssuedLicenseRow", "PerUserIssuanceRow"]
    assert cim.rows[2].user == "CONTOSO\\dave"


def test_a_license_issued_to_nobody_is_a_problem_of_its_row():
    text = (
        '"LicenseId","KeyPackId","sIssuedToUser","sIssuedToComputer","LicenseStatus","IssueDate",'
        '"ExpirationDate","sHardwareId"\r\n'
        '"1","4"," ","","2","20240115093012.000000-000","","0-0-0-0-0"\r\n'
    )
    export = read_export_bytes("nobody.csv", text.encode())

    assert export.rows == []
    [problem] = export.problems
    assert (problem.level, problem.file, problem.line, problem.column, problem.code) == (
        ERROR, "nobody.csv", 2, "sIssuedToComputer", "bad_value"
    )
    assert "names neither a computer nor a user" in problem.message


def test_the_import_records_per_user_issuances_and_never_refuses_them(server_east):
    report = license_server_import(server_name="TSLS-EAST", actor="alice", files=[
        (name, (FILES / name).read_bytes())
        for name in ("keypacks_ps51_builtin_unicode.csv", "issued_ps51_per_user.csv")
    ])

    assert report.committed and report.errors == []
    # Inventory only (rule 2): per-user issuances, never a machine's CAL.
    assert list(License.objects.values_list("license_id", "machine__hostname")) == [(1, "WS-0101")]
    issuances = PerUserIssuance.objects.order_by("license_id")
    assert [(i.license_id, i.user, i.key_pack.key_pack_id, i.product_version) for i in issuances] == [
        (2, "CONTOSO\\bob", 5, WindowsVersion.WINDOWS_SERVER_2008_R2),
        (3, "CONTOSO\\carol", 5, WindowsVersion.WINDOWS_SERVER_2008_R2),
    ]
    assert report.created["per_user_issuance"] == 2


# 4. "Never expires" -------------------------------------------------------------------


def test_never_expiring_packs_have_no_expiry_date():
    east = {r.key_pack_id: r.expires_on for r in read("keypacks_ps51_builtin_unicode.csv").rows}
    german = {r.key_pack_id: r.expires_on for r in read("keypacks_ps7_de_usculture.csv", date_order="dmy").rows}
    signed = {r.key_pack_id: r.expires_on for r in read("keypacks_signed_counts.csv").rows}

    assert east == {2: None, 3: None, 4: None, 5: None, 6: date(2027, 6, 30)}
    assert german == {2: None, 3: None, 4: None, 5: None, 6: date(2027, 6, 30)}
    assert signed == {2: None, 7: None}  # 1/1/2038 12:00:00 AM


# 5. TotalLicenses = IssuedLicenses + AvailableLicenses ----------------------------------


def test_a_purchased_pack_whose_counts_disagree_is_a_problem():
    export = read("keypacks_ps51_counts.csv")

    assert [r.key_pack_id for r in export.rows] == [2, 3, 5]  # built-in and temporary are exempt
    assert export.problems == [Problem(
        ERROR, "keypacks_ps51_counts.csv", 5, "TotalLicenses",
        "Key pack 4: TotalLicenses 10 is not IssuedLicenses 3 + AvailableLicenses 6 (9); the row "
        "contradicts itself.", "key_pack_counts",
    )]


# 6. Culture dates and separators ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "order", "encoding", "delimiter", "first_issued"),
    [
        ("issued_ps7_en_us_nnbsp.csv", "mdy", "UTF-8 with BOM", ",", datetime(2024, 1, 15, 9, 30, 12, tzinfo=UTC)),
        ("issued_ps7_en_gb.csv", "dmy", "UTF-8", ",", datetime(2024, 1, 15, 9, 30, 12, tzinfo=UTC)),
        ("issued_ps7_de_usculture.csv", "dmy", "UTF-8 with BOM", ";", datetime(2024, 1, 15, 9, 30, 12, tzinfo=UTC)),
        ("issued_ps51_de_usculture_unicode.csv", "dmy", "UTF-16 LE", ";", datetime(2024, 1, 15, 8, 30, 12, tzinfo=UTC)),
    ],
)
def test_exports_in_each_culture_are_read(name, order, encoding, delimiter, first_issued):
    export = read(name, date_order=order)

    assert export.problems == []
    assert (export.encoding, export.delimiter, export.wmi_class) == (encoding, delimiter, "Win32_TSIssuedLicense")
    assert export.style == (STYLE_WMI if "ps51" in name else STYLE_CIM)
    assert export.rows[0].issued_at == first_issued
    assert all(r.expires_at > r.issued_at for r in export.rows)


def test_semicolon_key_pack_export_from_fr_fr():
    export = read("keypacks_ps7_fr_usculture.csv", date_order="dmy")
    assert (export.delimiter, export.encoding) == (";", "UTF-8")
    pack = export.rows[1]
    assert (pack.key_pack_id, pack.license_program, pack.cal_type) == (7, LicenseProgram.OPEN, CalType.PER_DEVICE)
    assert pack.expires_on == date(2030, 12, 31)


# Streaming ----------------------------------------------------------------------------

ISSUED_HEADER = (
    '"LicenseId","KeyPackId","sIssuedToUser","sIssuedToComputer","LicenseStatus","IssueDate",'
    '"ExpirationDate","sHardwareId","PSComputerName","CimClass","CimInstanceProperties","CimSystemProperties"\r\n'
)


def write_issued(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write(ISSUED_HEADER)
        for n in range(1, rows + 1):
            out.write(
                f'"{n}","7","","WS-{n:07d}","2","20240115093012.000000-300","20240412093012.000000-240",'
                f'"{n:08x}-00000000-00000000-00000000-00000000","","root/cimv2:Win32_TSIssuedLicense",'
                '"Microsoft.Management.Infrastructure.Internal.Data.CimPropertiesCollection",'
                '"Microsoft.Management.Infrastructure.CimSystemProperties"\r\n'
            )
    return path


def test_rows_stream_from_a_file_object_with_the_hash_and_count_taken_on_the_way(tmp_path):
    path = write_issued(tmp_path / "issued.csv", 20000)
    with open(path, "rb") as stream:
        export = read_export("issued.csv", stream)
        rows = export.iter_rows()
        first = next(rows)
        assert first.license_id == 1
        assert stream.tell() < 256 * 1024  # read as far as needed, not the whole file
        assert export.sha256 == ""  # known once the rows are read
        rest = sum(1 for _ in rows)

    assert rest == 19999 and export.row_count == 20000 and export.readable
    data = path.read_bytes()
    assert (export.sha256, export.size) == (hashlib.sha256(data).hexdigest(), len(data))
    with pytest.raises(RuntimeError, match="already been read"):
        export.iter_rows()


def test_a_django_storage_file_is_read_the_same_way(tmp_path):
    storage = FileSystemStorage(location=tmp_path)
    storage.save("upload.csv", io.BytesIO((FILES / "keypacks_ps51_builtin_unicode.csv").read_bytes()))
    with storage.open("upload.csv", "rb") as stream:
        export = read_export("upload.csv", stream).load()

    assert [r.key_pack_id for r in export.rows] == [2, 3, 4, 5, 6]
    assert export.sha256 == hashlib.sha256((FILES / "keypacks_ps51_builtin_unicode.csv").read_bytes()).hexdigest()


def test_damage_part_way_is_a_problem_never_an_exception():
    good = '"KeyPackId","TotalLicenses","IssuedLicenses","AvailableLicenses","ProductType","KeyPackType",' \
           '"ProductVersion"\r\n"4","5","2","3","0","2","Windows Server 2003"\r\n'
    not_utf8 = read_export_bytes("latin1.csv", (good + '"5","5","2","3","0","2","Windows Server 2003 Größe"\r\n')
                                 .encode("cp1252"))
    assert not not_utf8.readable and not_utf8.rows == []
    assert [(p.line, p.code) for p in not_utf8.problems] == [(3, "not_csv")]
    assert "not UTF-8 text" in not_utf8.problems[0].message

    odd = read_export_bytes("cut.csv", b"\xff\xfe" + good.encode("utf-16-le") + b"\x00")
    assert not odd.readable and [p.code for p in odd.problems] == ["not_csv"]
    assert odd.sha256 == hashlib.sha256(b"\xff\xfe" + good.encode("utf-16-le") + b"\x00").hexdigest()

    endless = read_export_bytes("endless.csv", good.encode() + b'"6",' + b"x" * (2 * 1024 * 1024))
    assert not endless.readable and [(p.line, p.code) for p in endless.problems] == [(3, "not_csv")]
    assert "longer than" in endless.problems[0].message


def _peak_while_parsing(path):
    with open(path, "rb") as stream:
        tracemalloc.start()
        try:
            export = read_export(path.name, stream)
            count = sum(1 for _ in export.iter_rows())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert export.problems == [] and count == export.row_count
    return count, peak


@pytest.mark.slow
def test_memory_stays_flat_whatever_the_row_count(tmp_path):
    small = _peak_while_parsing(write_issued(tmp_path / "small.csv", 10_000))
    large = _peak_while_parsing(write_issued(tmp_path / "large.csv", 50_000))

    assert (small[0], large[0]) == (10_000, 50_000)
    assert large[1] < 1024 * 1024  # a 50,000-row file (about 15 MB) parsed in under 1 MiB
    assert large[1] < small[1] * 1.25 + 64 * 1024, (small, large)
