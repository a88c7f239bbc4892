"""Rule 13: a license server holds CALs of its own Windows version or older.

Checked wherever a key pack or a CAL enters a server: a key pack installed or edited (page
and API), a CSC call logged and its reissued pack installed, a temporary CAL issued, and an
import (its planner calls ``licensing.rules.version_refusal`` on each pack row). A server's
own version is not set back below the packs it holds (``license_server_update``).
"""

from core.locks import share_key
from licensing import rules
from licensing.choices import version_rank
from licensing.models import KeyPack, License, LicenseServer
from licensing.rules import refuse_if


def newest_product_held(license_server_id: int) -> str | None:
    """The newest product version among the server's key packs and CALs, or None."""
    versions = set(KeyPack.objects.filter(license_server_id=license_server_id)
                   .values_list("product_version", flat=True).distinct())
    versions |= set(License.objects.filter(license_server_id=license_server_id)
                    .values_list("product_version", flat=True).distinct())
    return max(versions, key=version_rank) if versions else None


def check_version_supported(*, license_server_id: int, product_version: str) -> LicenseServer:
    """Rule 13 for a key pack (or CAL) entering a server. The server is read FOR KEY SHARE, so
    its Windows version cannot change under the caller until it commits; returns it."""
    server = share_key(LicenseServer.objects, license_server_id)
    refuse_if(rules.version_refusal(server_name=server.name, server_version=server.windows_version,
                                    product_version=product_version))
    return server
