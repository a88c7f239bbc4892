"""Export-Csv files written as Windows PowerShell 5.1 writes them (``Get-WmiObject ... |
Export-Csv``: a #TYPE line, quoted fields, CRLF, DMTF datetimes), for tests that need a
server's exports of their own making."""

import codecs
from datetime import UTC, datetime, timedelta

KEY_PACK_COLUMNS = ("AvailableLicenses", "Description", "ExpirationDate", "IssuedLicenses", "KeyPackId",
                    "KeyPackType", "ProductType", "ProductVersion", "ProductVersionID", "TotalLicenses",
                    "TypeAndModel")
ISSUED_COLUMNS = ("ExpirationDate", "IssueDate", "KeyPackId", "LicenseId", "LicenseStatus", "sHardwareId",
                  "sIssuedToComputer", "sIssuedToUser")
VERSIONS = {"windows_server_2003": ("Windows Server 2003", "1"), "windows_server_2019": ("Windows Server 2019", "6"),
            "windows_server_2008_r2": ("Windows Server 7", "3"), "windows_server_2022": ("Windows Server 2022", "7")}
NEVER = datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC)


def dmtf(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S") + ".000000-000"


def _csv(wmi_class: str, columns, rows) -> bytes:
    lines = [f"#TYPE System.Management.ManagementObject#root\\cimv2\\{wmi_class}",
             ",".join(f'"{c}"' for c in ("PSComputerName", "__CLASS", *columns))]
    for row in rows:
        lines.append(",".join(f'"{v}"' for v in ("TSLS", wmi_class, *(row[c] for c in columns))))
    return codecs.BOM_UTF16_LE + "\r\n".join(lines + [""]).encode("utf-16-le")


def key_pack(key_pack_id: int, total: int, *, issued: int = 0, product="windows_server_2019", per_user=False,
             key_pack_type: int = 2, expires: datetime = NEVER) -> dict:
    name, version_id = VERSIONS[product]
    return {"AvailableLicenses": str(total - issued), "Description": "A02", "ExpirationDate": dmtf(expires),
            "IssuedLicenses": str(issued), "KeyPackId": str(key_pack_id), "KeyPackType": str(key_pack_type),
            "ProductType": "1" if per_user else "0", "ProductVersion": name, "ProductVersionID": version_id,
            "TotalLicenses": str(total), "TypeAndModel": "RDS Per User CAL" if per_user else "RDS Per Device CAL"}


def issued(license_id: int, key_pack_id: int, computer: str, *, status: int = 2, issued_at: datetime | None = None,
           expires_at: datetime | None = None, user: str = "", hardware: str = "") -> dict:
    issued_at = issued_at or datetime.now(UTC) - timedelta(days=10)
    expires_at = expires_at or issued_at + timedelta(days=60)
    return {"ExpirationDate": dmtf(expires_at), "IssueDate": dmtf(issued_at), "KeyPackId": str(key_pack_id),
            "LicenseId": str(license_id), "LicenseStatus": str(status),
            "sHardwareId": hardware or (f"hw-{license_id}" if computer else "0-0-0-0-0"),
            "sIssuedToComputer": computer, "sIssuedToUser": user}


def key_packs_csv(*rows) -> tuple[str, bytes]:
    return "keypacks.csv", _csv("Win32_TSLicenseKeyPack", KEY_PACK_COLUMNS, rows)


def issued_csv(*rows) -> tuple[str, bytes]:
    return "issued.csv", _csv("Win32_TSIssuedLicense", ISSUED_COLUMNS, rows)
