"""What the parser yields: typed rows of the two WMI classes, and the problems it finds."""

from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar

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
    """A row of Win32_TSLicenseKeyPack. ``pseudo`` is "built-in" or "temporary" for the
    packs that hold no purchased CALs; their counts, ``cal_type`` and (for the built-in
    pack) ``product_version`` are read leniently and may be None."""

    line: int
    key_pack_id: int
    total_licenses: int | None
    issued_licenses: int | None
    available_licenses: int | None
    cal_type: str | None
    product_version: str | None
    key_pack_type: int
    license_program: str
    expires_on: date | None
    description: str
    pseudo: str | None


@dataclass(slots=True)
class IssuedLicenseRow:
    """A row of Win32_TSIssuedLicense issued to a computer (a per-device CAL)."""

    per_user: ClassVar[bool] = False

    line: int
    license_id: int
    key_pack_id: int
    computer: str
    hardware_id: str
    user: str
    status: int
    issued_at: datetime
    expires_at: datetime | None


@dataclass(slots=True)
class PerUserIssuanceRow:
    """A row of Win32_TSIssuedLicense issued to a user: no computer, an all-zero hardware
    ID, ``sIssuedToUser`` as DOMAIN\\user."""

    per_user: ClassVar[bool] = True

    line: int
    license_id: int
    key_pack_id: int
    user: str
    status: int
    issued_at: datetime
    expires_at: datetime | None


class RowError(ValueError):
    def __init__(self, column: str, message: str, code: str = "bad_value"):
        super().__init__(message)
        self.column = column
        self.message = message
        self.code = code
