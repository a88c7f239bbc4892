"""API tokens: django-rest-knox's ``Authorization: Token <token>``, with two changes.

- A header that is not UTF-8 is a bad token (401), never a server error.
- Presenting a token reads that token only. knox also deletes the user's other expired
  tokens on every request, which reads all of them each time; here the hourly
  ``purge_expired_tokens`` task deletes expired tokens instead.
"""

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from rest_framework import exceptions


class PortalTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, token):
        try:
            token.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid token.") from exc
        return super().authenticate_credentials(token)

    def _cleanup_token(self, auth_token) -> bool:
        """True (and the token deleted) when ``auth_token`` has expired."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            auth_token.delete()
            return True
        return False


class PortalTokenScheme(OpenApiAuthenticationExtension):
    """The schema's ``tokenAuth``: the ``Authorization: Token <token>`` header."""

    target_class = PortalTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(
            header_name="Authorization", token_prefix=self.target.authenticate_header(None),
        )
