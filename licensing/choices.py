"""The domain's vocabularies: Windows versions, CAL types, statuses and the like.

Plain enums with no models, so that rules, parsers and models can all use them.
"""

from django.db import models


class WindowsVersion(models.TextChoices):
    """A Windows Server release: what a license server runs, and what a CAL is for."""

    WINDOWS_2000_SERVER = "windows_2000_server", "Windows 2000 Server"
    WINDOWS_SERVER_2003 = "windows_server_2003", "Windows Server 2003"
    WINDOWS_SERVER_2008 = "windows_server_2008", "Windows Server 2008"
    WINDOWS_SERVER_2008_R2 = "windows_server_2008_r2", "Windows Server 2008 R2"
    WINDOWS_SERVER_2012 = "windows_server_2012", "Windows Server 2012"
    WINDOWS_SERVER_2012_R2 = "windows_server_2012_r2", "Windows Server 2012 R2"
    WINDOWS_SERVER_2016 = "windows_server_2016", "Windows Server 2016"
    WINDOWS_SERVER_2019 = "windows_server_2019", "Windows Server 2019"
    WINDOWS_SERVER_2022 = "windows_server_2022", "Windows Server 2022"
    WINDOWS_SERVER_2025 = "windows_server_2025", "Windows Server 2025"


# Windows versions in release order: a license server holds CALs of its own version or older
# (rule 13).
VERSION_RANK = {version: rank for rank, version in enumerate(WindowsVersion.values)}

# Rule 12: revocation in RD Licensing Manager exists from Windows Server 2008 R2 on.
REVOCATION_FROM = WindowsVersion.WINDOWS_SERVER_2008_R2


def version_rank(version: str) -> int:
    return VERSION_RANK[version]


# The article's era: these servers hand Windows 2000/XP Professional clients their built-in CAL.
VERSIONS_WITH_BUILTIN_PRO_CAL = frozenset(
    {WindowsVersion.WINDOWS_2000_SERVER, WindowsVersion.WINDOWS_SERVER_2003}
)


class ActivationStatus(models.TextChoices):
    ACTIVATED = "activated", "Activated"
    NOT_ACTIVATED = "not_activated", "Not activated"


class CalType(models.TextChoices):
    PER_DEVICE = "per_device", "Per device"
    PER_USER = "per_user", "Per user"


class LicenseProgram(models.TextChoices):
    RETAIL = "retail", "Retail"
    OPEN = "open", "Open License"
    SELECT = "select", "Select"
    ENTERPRISE_AGREEMENT = "enterprise_agreement", "Enterprise Agreement"
    CAMPUS = "campus", "Campus"
    SCHOOL = "school", "School"
    SERVICE_PROVIDER = "service_provider", "Service Provider"
    OTHER = "other", "Other"


class KeyPackOrigin(models.TextChoices):
    ORIGINAL = "original", "Original (purchased)"
    REISSUE = "reissue", "Reissue (CSC call)"


class LicenseKind(models.TextChoices):
    PERMANENT = "permanent", "Permanent"
    TEMPORARY = "temporary", "Temporary (90 days)"


class LicenseStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    TRANSFERRED = "transferred", "Transferred"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


class LicenseEndReason(models.TextChoices):
    EXPIRED_90_DAYS = "expired_90_days", "Temporary CAL reached its 90 days"
    REPLACED_BY_PERMANENT = "replaced_by_permanent", "Replaced by a permanent CAL"
    TRANSFERRED = "transferred", "Transferred to another machine"
    IMPORTED = "imported", "Ended on the license server (import)"
    ABSENT_ON_SERVER = "absent_on_server", "No longer listed by the license server"
    REVOKED = "revoked", "Revoked in RD Licensing Manager"


# A key pack's issued seats: its permanent CALs in these statuses (DOMAIN.md).
ISSUED_STATUSES = (LicenseStatus.ACTIVE, LicenseStatus.TRANSFERRED)


class TransferStatus(models.TextChoices):
    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    REMOVAL_CONFIRMED = "removal_confirmed", "Removal confirmed"
    AWAITING_REISSUE = "awaiting_reissue", "Awaiting reissue"
    COMPLETED = "completed", "Completed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"


OPEN_TRANSFER_STATUSES = (
    TransferStatus.REQUESTED,
    TransferStatus.APPROVED,
    TransferStatus.REMOVAL_CONFIRMED,
    TransferStatus.AWAITING_REISSUE,
)


class RemovalMethod(models.TextChoices):
    REGISTRY_KEY_DELETED = "registry_key_deleted", "License registry key deleted"
    MACHINE_DECOMMISSIONED = "machine_decommissioned", "Machine decommissioned"


class ReissueStatus(models.TextChoices):
    OPEN = "open", "Open"
    FULFILLED = "fulfilled", "Fulfilled"
    DENIED = "denied", "Denied"
    CANCELLED = "cancelled", "Cancelled"


class ReissueChannel(models.TextChoices):
    # Article: "you can complete this reissue process only by using the telephone".
    TELEPHONE = "telephone", "Telephone"


class DriftKind(models.TextChoices):
    PACK_MISSING_ON_SERVER = "pack_missing_on_server", "Key pack missing on the server"
    PACK_COUNT_MISMATCH = "pack_count_mismatch", "Key pack counts differ"
    LICENSE_MISSING_ON_SERVER = "license_missing_on_server", "CAL missing on the server"
    TRANSFERRED_SOURCE_STILL_ISSUED = "transferred_source_still_issued", "Transferred CAL still issued"
    DUPLICATE_ISSUANCE = "duplicate_issuance", "Duplicate issuance"
    TEMPORARY_OVERDUE = "temporary_overdue", "Temporary CAL overdue"
    PER_USER_OVER_ALLOCATED = "per_user_over_allocated", "Per-user CALs over-allocated"


class DriftState(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
