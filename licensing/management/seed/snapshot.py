"""The snapshot the Remote Desktop farm's license server sends last: its two exports, written
as Windows PowerShell 5.1's ``Get-WmiObject ... | Export-Csv`` writes them, and imported by
its collector account through the real import (``license_server_import``).

The exports list what the server holds: its key packs, every active per-device CAL the portal
records for it, and per-user CALs, which only a snapshot tells. More Windows Server 2022
per-user CALs are issued than are installed (the server does not enforce them), so the
compliance page and the reconciliation show the over-allocation.
"""

import codecs
import random
from datetime import UTC, datetime, timedelta

from django.core.management.base import CommandError

from core.roles import COLLECTOR
from licensing.models import CalType, KeyPack, License, LicenseKind, LicenseServer, LicenseStatus, WindowsVersion
from licensing.services.collectors import account_save
from licensing.services.imports import ImportReport, license_server_import

KEY_PACK_COLUMNS = ("AvailableLicenses", "Description", "ExpirationDate", "IssuedLicenses", "KeyPackId",
                    "KeyPackType", "ProductType", "ProductVersion", "ProductVersionID", "TotalLicenses",
                    "TypeAndModel")
ISSUED_COLUMNS = ("ExpirationDate", "IssueDate", "KeyPackId", "LicenseId", "LicenseStatus", "sHardwareId",
                  "sIssuedToComputer", "sIssuedToUser")
PRODUCT_VERSION_IDS = {WindowsVersion.WINDOWS_SERVER_2008: "2", WindowsVersion.WINDOWS_SERVER_2008_R2: "3",
                       WindowsVersion.WINDOWS_SERVER_2012: "4", WindowsVersion.WINDOWS_SERVER_2012_R2: "4",
                       WindowsVersion.WINDOWS_SERVER_2016: "5", WindowsVersion.WINDOWS_SERVER_2019: "6",
                       WindowsVersion.WINDOWS_SERVER_2022: "7"}
NEVER = datetime(2038, 1, 19, 3, 14, 7, tzinfo=UTC)
VOLUME = 2  # KeyPackType: volume purchase
ACTIVE = 2  # LicenseStatus
OVER_ALLOCATED = WindowsVersion.WINDOWS_SERVER_2022
PER_USER_LICENSE_IDS = 900_000
DOMAIN = "CONTOSO"


def dmtf(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S") + ".000000+000"


def export_csv(wmi_class: str, columns, rows, computer: str) -> bytes:
    lines = [f"#TYPE System.Management.ManagementObject#root\\cimv2\\{wmi_class}",
             ",".join(f'"{c}"' for c in ("PSComputerName", "__CLASS", *columns))]
    for row in rows:
        lines.append(",".join(f'"{v}"' for v in (computer, wmi_class, *(row[c] for c in columns))))
    return codecs.BOM_UTF16_LE + "\r\n".join(lines + [""]).encode("utf-16-le")


def _pack_row(pack: KeyPack, issued: int) -> dict:
    issued = min(issued, pack.total_licenses)  # the server counts no more than it holds
    per_user = pack.cal_type == CalType.PER_USER
    return {"AvailableLicenses": str(pack.total_licenses - issued), "Description": "A02",
            "ExpirationDate": dmtf(NEVER), "IssuedLicenses": str(issued), "KeyPackId": str(pack.key_pack_id),
            "KeyPackType": str(VOLUME), "ProductType": "1" if per_user else "0",
            "ProductVersion": WindowsVersion(pack.product_version).label,
            "ProductVersionID": PRODUCT_VERSION_IDS.get(pack.product_version, ""),
            "TotalLicenses": str(pack.total_licenses),
            "TypeAndModel": "RDS Per User CAL" if per_user else "RDS Per Device CAL"}


def _issued_row(license_id, key_pack_id, issued_at, expires_at, *, computer="", hardware="", user="") -> dict:
    return {"ExpirationDate": dmtf(expires_at), "IssueDate": dmtf(issued_at), "KeyPackId": str(key_pack_id),
            "LicenseId": str(license_id), "LicenseStatus": str(ACTIVE), "sHardwareId": hardware or "0-0-0-0-0",
            "sIssuedToComputer": computer, "sIssuedToUser": user}


def exports(server: LicenseServer, *, rng: random.Random, today: datetime) -> list[tuple[str, bytes]]:
    packs = list(KeyPack.objects.filter(license_server=server).order_by("key_pack_id"))
    issued_rows, listed = [], {}
    cals = (License.objects.filter(license_server=server, kind=LicenseKind.PERMANENT, status=LicenseStatus.ACTIVE)
            .select_related("machine", "key_pack").order_by("license_id", "pk"))
    for cal in cals:
        renewed = max(cal.issued_at, today - timedelta(days=rng.randint(1, 40)))
        issued_rows.append(_issued_row(cal.license_id, cal.key_pack.key_pack_id, cal.issued_at,
                                       renewed + timedelta(days=rng.randint(52, 89)), computer=cal.machine.hostname,
                                       hardware=cal.hardware_id))
        listed[cal.key_pack_id] = listed.get(cal.key_pack_id, 0) + 1
    per_user = [p for p in packs if p.cal_type == CalType.PER_USER]
    over = {p.pk: 0 for p in per_user}
    over_allocated = [p for p in per_user if p.product_version == OVER_ALLOCATED]
    if over_allocated:
        installed = sum(p.total_licenses for p in over_allocated)
        over[over_allocated[0].pk] = max(3, installed // 20)
    user_number = 0
    for pack in per_user:
        count = (pack.total_licenses + over[pack.pk] if pack.product_version == OVER_ALLOCATED
                 else pack.total_licenses * 3 // 5)
        for _ in range(count):
            user_number += 1
            issued_at = max(pack.created_at, today - timedelta(days=50)) + timedelta(
                seconds=rng.randrange(40 * 86400))
            issued_rows.append(_issued_row(PER_USER_LICENSE_IDS + user_number, pack.key_pack_id, issued_at,
                                           issued_at + timedelta(days=rng.randint(52, 89)),
                                           user=f"{DOMAIN}\\rds.user{user_number:05d}"))
        listed[pack.pk] = count
    computer = server.name
    return [
        ("keypacks.csv", export_csv("Win32_TSLicenseKeyPack", KEY_PACK_COLUMNS,
                                    [_pack_row(p, listed.get(p.pk, 0)) for p in packs], computer)),
        ("issued.csv", export_csv("Win32_TSIssuedLicense", ISSUED_COLUMNS, issued_rows, computer)),
    ]


def send_snapshot(server: LicenseServer, *, rng: random.Random, today: datetime) -> ImportReport:
    """The server's collector account, and the snapshot it sends now."""
    collector, _ = account_save(username=f"collector-{server.name.lower()}", role=COLLECTOR,
                                license_server=server.name)
    report = license_server_import(server_name=server.name, files=exports(server, rng=rng, today=today),
                                   actor=collector)
    if not report.committed:
        problems = "; ".join(str(p) for p in report.errors[:5])
        raise CommandError(f"The demo snapshot of {server.name} was refused: {problems}")
    return report
