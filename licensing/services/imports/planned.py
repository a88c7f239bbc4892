"""What an import plans, row by row: packs and licenses to create or update, and what the
portal already records of them (plain values, not model instances)."""

from dataclasses import dataclass, field
from datetime import datetime

from licensing.importers.export_csv import ExportFile, KeyPackRow
from licensing.models import ImportRow, KeyPack, LicenseStatus


@dataclass
class PackPlan:
    file: ExportFile
    row: KeyPackRow
    existing: KeyPack | None
    changes: dict = field(default_factory=dict)
    blocked: bool = False
    instance: KeyPack | None = None  # the row, once written

    @property
    def total(self) -> int:
        return self.row.total_licenses


@dataclass(slots=True)
class RecordedMachine:
    pk: int
    hostname: str
    status: str
    os_edition: str


@dataclass(slots=True)
class RecordedLicense:
    pk: int | None
    machine_id: int
    key_pack_id: int | None
    kind: str
    status: str
    end_reason: str
    hardware_id: str
    expires_at: datetime | None
    product_version: str
    license_id: int | None


LICENSE_COLUMNS = (
    "pk", "machine_id", "key_pack_id", "kind", "status", "end_reason", "hardware_id", "expires_at",
    "product_version", "license_id",
)


@dataclass(slots=True)
class NewLicense:
    file: str
    row: ImportRow
    machine: RecordedMachine
    kind: str
    product_version: str
    pack: KeyPack | None
    status: str = LicenseStatus.ACTIVE
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str = ""


@dataclass(slots=True)
class NewPerUser:
    file: str
    row: ImportRow
    pack: KeyPack


@dataclass(slots=True)
class LicenseUpdate:
    license_pk: int
    changes: dict
    file: str
    line: int
    why: str
