"""The documented values of the TS licensing WMI classes, mapped onto the portal's choices.

Sources: the ``Win32_TSLicenseKeyPack`` and ``Win32_TSIssuedLicense`` class references
(TlsWmiProv.mof). Every mapper raises ``ValueError`` with a sentence for the report.
"""

import functools
import re
from datetime import UTC, date, datetime, timedelta, timezone

from django.utils import timezone as dj_timezone

from licensing.models import CalType, LicenseProgram, WindowsVersion

KEY_PACK_CLASS = "Win32_TSLicenseKeyPack"
ISSUED_LICENSE_CLASS = "Win32_TSIssuedLicense"

# ProductType
PRODUCT_TYPES = {0: CalType.PER_DEVICE, 1: CalType.PER_USER}

# KeyPackType: 0 unknown, 1 retail purchase, 2 volume purchase, 3 concurrent license,
# 4 temporary, 5 open license, 6 not supported (the built-in pack of Windows 2000/2003,
# "Built-in TS Per Device CAL", listed with ProductType 3 and TotalLicenses 4294967295).
KEY_PACK_TYPE_TEMPORARY = 4
KEY_PACK_TYPE_BUILTIN = 6
KEY_PACK_PROGRAMS = {1: LicenseProgram.RETAIL, 2: LicenseProgram.SELECT, 5: LicenseProgram.OPEN}

# LicenseStatus
LICENSE_STATUS_LABELS = {
    0: "unknown",
    1: "temporary",
    2: "active",
    3: "upgrade",
    4: "revoked",
    5: "pending",
    6: "concurrent",
}
LICENSE_STATUS_TEMPORARY = 1
LICENSE_STATUS_ACTIVE = 2
LICENSE_STATUS_REVOKED = 4

# ProductVersion strings, compared without regard to case or repeated spaces.
# "Windows Server 7" is the class's own name for Windows Server 2008 R2; "Windows .NET
# Server" is the pre-release name of Windows Server 2003, whose R2 uses 2003 CALs.
PRODUCT_VERSIONS = {
    "windows 2000 server": WindowsVersion.WINDOWS_2000_SERVER,
    "windows 2000": WindowsVersion.WINDOWS_2000_SERVER,
    "windows .net server": WindowsVersion.WINDOWS_SERVER_2003,
    "windows server 2003": WindowsVersion.WINDOWS_SERVER_2003,
    "windows server 2003 r2": WindowsVersion.WINDOWS_SERVER_2003,
    "windows server 2008": WindowsVersion.WINDOWS_SERVER_2008,
    "windows server 7": WindowsVersion.WINDOWS_SERVER_2008_R2,
    "windows server 2008 r2": WindowsVersion.WINDOWS_SERVER_2008_R2,
    "windows server 2012": WindowsVersion.WINDOWS_SERVER_2012,
    "windows server 2012 r2": WindowsVersion.WINDOWS_SERVER_2012_R2,
    "windows server 2016": WindowsVersion.WINDOWS_SERVER_2016,
    "windows server 2019": WindowsVersion.WINDOWS_SERVER_2019,
    "windows server 2022": WindowsVersion.WINDOWS_SERVER_2022,
    "windows server 2025": WindowsVersion.WINDOWS_SERVER_2025,
}
# "<version> or <version> R2": a pack that serves both, written in the server's language
# ("Windows Server 2008 oder Windows Server 2008 R2", "... ou ..."). The pack is the first.
EITHER_VERSION_RE = re.compile(r"^(windows server \S+) \S+ \1 r2$")
# ProductVersionID, used when ProductVersion is blank or a text not listed above. 2 is the
# 2008 pack, which also serves 2008 R2; 4 serves 2012 and 2012 R2 alike.
PRODUCT_VERSION_IDS = {
    2: WindowsVersion.WINDOWS_SERVER_2008,
    3: WindowsVersion.WINDOWS_SERVER_2008_R2,
    4: WindowsVersion.WINDOWS_SERVER_2012,
    5: WindowsVersion.WINDOWS_SERVER_2016,
    6: WindowsVersion.WINDOWS_SERVER_2019,
    7: WindowsVersion.WINDOWS_SERVER_2022,
}

# "Never expires": the licensing service writes 2038-01-19 (the largest 32-bit time) or
# 2038-01-01. Any expiry from 2038 on means none.
NEVER_EXPIRES = date(2038, 1, 1)

DATE_ORDERS = ("mdy", "dmy", "ymd")
DATE_ORDER_EXAMPLES = {
    "mdy": "1/15/2024 9:30:12 AM",
    "dmy": "15/01/2024 09:30:12",
    "ymd": "2024-01-15 09:30:12",
}


def blank(value: str | None) -> bool:
    return value is None or not value.strip()


def parse_uint(value: str, *, minimum: int = 0) -> int:
    text = (value or "").strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 10):
        raise ValueError(f"'{text}' is not a whole number.")
    number = int(text)
    if number < minimum or number > 0xFFFFFFFF:
        raise ValueError(f"{number} is out of range (a uint32 of at least {minimum}).")
    return number


def parse_count(value: str) -> int:
    """A uint32 count, also as written by tools that print it signed (-1 for 4294967295)."""
    text = (value or "").strip()
    if re.fullmatch(r"-\d{1,10}", text) and int(text) >= -0x80000000:
        return int(text) & 0xFFFFFFFF
    return parse_uint(text)


def _text_version(text: str) -> str | None:
    if text in PRODUCT_VERSIONS:
        return PRODUCT_VERSIONS[text]
    match = EITHER_VERSION_RE.match(text)
    if match:
        return PRODUCT_VERSIONS.get(match.group(1))
    return None


def product_version(value: str, version_id: str | None = None) -> str:
    """The portal's version for ProductVersion, a free text that may be localised; when the
    text is not one listed, ProductVersionID decides."""
    text = " ".join((value or "").split()).lower()
    if text:
        known = _text_version(text)
        if known:
            return known
    number = None
    if not blank(version_id):
        try:
            number = parse_uint(version_id)
        except ValueError:
            number = None
        if number in PRODUCT_VERSION_IDS:
            return PRODUCT_VERSION_IDS[number]
    if blank(version_id):
        id_part = "ProductVersionID is blank"
    elif number is None:
        id_part = f"ProductVersionID '{version_id.strip()}' is not a whole number"
    else:
        id_part = f"ProductVersionID {number} is not a known version"
    if text:
        raise ValueError(
            f"Unknown ProductVersion '{value.strip()}' and {id_part}; expected a documented version, "
            "e.g. 'Windows Server 2003', 'Windows Server 7', 'Windows Server 2012', or a "
            "ProductVersionID from 2 (2008) to 7 (2022)."
        )
    if blank(version_id):
        raise ValueError("ProductVersion and ProductVersionID are blank.")
    raise ValueError(f"ProductVersion is blank and {id_part}.")


def cal_type(value: str) -> str:
    number = parse_uint(value)
    if number not in PRODUCT_TYPES:
        raise ValueError(f"ProductType {number} is not valid (0 is per device, 1 is per user).")
    return PRODUCT_TYPES[number]


def license_program(key_pack_type: int) -> str:
    return KEY_PACK_PROGRAMS.get(key_pack_type, LicenseProgram.OTHER)


def pseudo_pack_kind(key_pack_type: int, description: str, type_and_model: str) -> str | None:
    """``"built-in"`` or ``"temporary"`` for the packs that hold no purchased CALs, else None."""
    words = f"{description} {type_and_model}".lower()
    if key_pack_type == KEY_PACK_TYPE_BUILTIN or "built-in" in words or "builtin" in words:
        return "built-in"
    if key_pack_type == KEY_PACK_TYPE_TEMPORARY or "temporary licenses" in words:
        return "temporary"
    return None


# DMTF datetime: yyyymmddHHMMSS.mmmmmmsUUU, UUU the offset from UTC in minutes.
DMTF_RE = re.compile(
    r"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})\.(\d{6})([+-])(\d{3})$"
)
# Culture dates of Get-CimInstance: 1/15/2024 9:30:12 AM, 15.01.2024 09:30:12, 2024-01-15
# 09:30:12. Newer ICU puts U+202F or U+00A0 before AM/PM, or inside it ("p.\u00a0m.").
LOCALE_RE = re.compile(
    r"^(\d{1,4})[./-]\s?(\d{1,2})[./-]\s?(\d{1,4})\.?"
    r"(?:[\sT]+(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([AaPp])\.?\s*[Mm]\.?)?)?$"
)


NO_DATE_CHARS = frozenset("*.+-0")


@functools.cache
def _utc_offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def parse_datetime(value: str, *, date_order: str = "mdy") -> datetime | None:
    """A DMTF datetime (Get-WmiObject) or a locale one (Get-CimInstance), as an aware
    datetime. Blank and wildcard (``*``) values mean no date. Locale values carry no
    offset; they are read in the portal's time zone."""
    text = (value or "").strip()
    if not text or (text[0] in NO_DATE_CHARS and set(text) <= NO_DATE_CHARS):
        return None
    if "*" in text[:8]:
        return None
    match = DMTF_RE.match(text)
    if match:
        year, month, day, hour, minute, second, micro, sign, offset = match.groups()
        minutes = int(offset) * (1 if sign == "+" else -1)
        try:
            return datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), int(micro),
                tzinfo=_utc_offset(minutes),
            )
        except ValueError as exc:
            raise ValueError(f"'{text}' is not a valid DMTF datetime ({exc}).") from None
    match = LOCALE_RE.match(text)
    if not match:
        raise ValueError(
            f"'{text}' is neither a DMTF datetime (20240115093012.000000-000) nor a date like "
            f"{DATE_ORDER_EXAMPLES[date_order]} ({date_order})."
        )
    first, second_part, third, hour, minute, second, meridiem = match.groups()
    if date_order == "mdy":
        month, day, year = first, second_part, third
    elif date_order == "dmy":
        day, month, year = first, second_part, third
    else:
        year, month, day = first, second_part, third
    if len(year) != 4:
        raise ValueError(
            f"'{text}' does not match the date order {date_order} "
            f"(e.g. {DATE_ORDER_EXAMPLES[date_order]})."
        )
    hour_n = int(hour or 0)
    if meridiem:
        if not 1 <= hour_n <= 12:
            raise ValueError(f"'{text}' has hour {hour_n} with AM/PM.")
        hour_n = hour_n % 12 + (12 if meridiem.lower() == "p" else 0)
    try:
        naive = datetime(int(year), int(month), int(day), hour_n, int(minute or 0), int(second or 0))
    except ValueError as exc:
        raise ValueError(
            f"'{text}' is not a valid date in the order {date_order} ({exc})."
        ) from None
    return dj_timezone.make_aware(naive, dj_timezone.get_default_timezone())


def expiry_date(moment: datetime | None) -> date | None:
    """A key pack's expiry date; the licensing service's "never" becomes no date.

    The date is compared as written and in UTC: a server west of UTC writes 2038-01-19
    03:14:07 UTC as the evening of the 18th."""
    if moment is None:
        return None
    day = moment.date()
    if day >= NEVER_EXPIRES or (moment.tzinfo and moment.astimezone(UTC).date() >= NEVER_EXPIRES):
        return None
    return day


def as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
