"""Where a request comes from: the client's address, read behind the proxies we trust.

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only when the
request arrives from a trusted proxy (``PORTAL_TRUSTED_PROXIES``), and only as far as the
chain of trusted proxies goes: reading the header from the right, the first address that is
not a trusted proxy is the client. With no trusted proxy, the client is ``REMOTE_ADDR``.
The lockout (django-axes), the throttles and the audit trail all read the address here.
"""

import ipaddress
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_proxies(value: str) -> tuple[Network, ...]:
    """``PORTAL_TRUSTED_PROXIES``: comma-separated addresses or networks (CIDR), e.g.
    ``10.0.0.5, 10.1.0.0/16``; empty means none."""
    networks = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"PORTAL_TRUSTED_PROXIES: {item!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/8)."
            ) from exc
    return tuple(networks)


def _address(text: str):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, proxies: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in proxies)


def client_address(request) -> str:
    """The client's IP address as text ('' when the request has none)."""
    if request is None:
        return ""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = getattr(settings, "PORTAL_TRUSTED_PROXIES", ())
    if not proxies or not _trusted(_address(remote), proxies):
        return remote
    hops = [hop for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            # A trusted proxy wrote something that is not an address: believe none of it.
            return remote
        if not _trusted(address, proxies):
            return str(address)
    return str(_address(hops[0])) if hops else remote
