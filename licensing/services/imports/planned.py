"""What an import plans, row by row: packs, machines and licenses to create or update,
and what the portal already records of them (plain values, no model instances)."""

from dataclasses import dataclass, field
from datetime import datetime

from licensing.importers.export_csv import ExportFile, IssuedLicenseRow, KeyPackRow
from licensing.models import KeyPack, LicenseStatus


@dataclass
class PackPlan:
    file: ExportFile
    row: KeyPackRow
    existing: KeyPack | None
    changes: dict = field(default_factory=dict)
    blocked: bool = False
    instance: KeyPack | None = None

    @property
    def total(self) -> int:
        return self.row.total_licenses


@dataclass(slots=True)
class RecordedMachine:
    """The columns of a recorded client machine the plan needs (no model instances)."""

    pk: int
    hostname: str
    status: str
    os_edition: str


@dataclass(slots=True)
class RecordedLicense:
    pk: int
    machine_id: int
    key_pack_id: int | None
    kind: str
    status: str
    end_reason: str
    hardware_id: str
    expires_at: datetime | None
    product_version: str


LICENSE_COLUMNS = (
    "pk", "machine_id", "key_pack_id", "kind", "status", "end_reason", "hardware_id",
    "expires_at", "product_version",
)


@dataclass
class NewMachine:
    hostname: str
    hardware_id: str
    file: str
    line: int
    pk: int | None = None


@dataclass
class NewLicense:
    file: str
    row: IssuedLicenseRow
    machine: object  # RecordedMachine or NewMachine
    kind: str
    product_version: str
    pack: object | None  # KeyPack or PackPlan
    status: str = LicenseStatus.ACTIVE
    expires_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str = ""


@dataclass
class LicenseUpdate:
    license_pk: int
    changes: dict
    file: str
    line: int
    why: str
