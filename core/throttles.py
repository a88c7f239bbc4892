"""DRF throttles keyed by the client's address behind the trusted proxies (core.network).

The rates are in settings (``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``): ``anon`` for
requests without credentials, ``sign_in`` for the token endpoint. Counts live in Django's
cache, so they are per process unless a shared cache is configured.
"""

from rest_framework.throttling import AnonRateThrottle, ScopedRateThrottle

from core.network import client_address


class AnonymousRateThrottle(AnonRateThrottle):
    def get_ident(self, request):
        return client_address(request) or super().get_ident(request)


class SignInRateThrottle(ScopedRateThrottle):
    """The token endpoint (``throttle_scope = "sign_in"``), per address."""

    def get_ident(self, request):
        return client_address(request) or super().get_ident(request)
