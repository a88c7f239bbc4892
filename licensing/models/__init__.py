"""License servers, key packs, issued CALs, transfers, CSC reissue calls, and the jobs and
snapshots that keep them in step with the license servers.

Counts that can be derived (a key pack's issued and available seats, a license's
transferability) are derived, never stored, so they cannot drift. Rules that
concurrency could break are backed by constraints here; ``licensing.rules`` and the
services in ``licensing/services`` own the rules and their refusal codes.
"""

from licensing.choices import (
    ISSUED_STATUSES,
    OPEN_TRANSFER_STATUSES,
    VERSIONS_WITH_BUILTIN_PRO_CAL,
    ActivationStatus,
    CalType,
    DriftKind,
    DriftState,
    KeyPackOrigin,
    LicenseEndReason,
    LicenseKind,
    LicenseProgram,
    LicenseStatus,
    ReissueChannel,
    ReissueStatus,
    RemovalMethod,
    TransferStatus,
    WindowsVersion,
)
from licensing.models.jobs import ExportJob
from licensing.models.licenses import License, LicenseQuerySet, Revocation
from licensing.models.servers import KeyPack, KeyPackQuerySet, LicenseServer, issued_q
from licensing.models.snapshots import (
    CollectorBinding,
    DriftItem,
    ImportJob,
    ImportRow,
    PerUserIssuance,
    Snapshot,
)
from licensing.models.workflow import CscContact, ReissueRequest, TransferRequest

__all__ = [
    "ISSUED_STATUSES", "OPEN_TRANSFER_STATUSES", "VERSIONS_WITH_BUILTIN_PRO_CAL", "ActivationStatus", "CalType",
    "CollectorBinding", "CscContact", "DriftItem", "DriftKind", "DriftState", "ExportJob", "ImportJob", "ImportRow",
    "PerUserIssuance", "Snapshot", "KeyPack", "KeyPackOrigin", "KeyPackQuerySet", "License", "LicenseEndReason",
    "LicenseKind", "LicenseProgram", "LicenseQuerySet", "LicenseServer", "LicenseStatus", "ReissueChannel",
    "ReissueRequest", "ReissueStatus", "RemovalMethod", "Revocation", "TransferRequest", "TransferStatus",
    "WindowsVersion", "issued_q",
]
