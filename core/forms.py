"""The login form: says why the directory refused a sign-in (core.directory)."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from core.directory import sign_in_refusal


class PortalAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your user name and password did not match. Please try again.",
    }

    def get_invalid_login_error(self):
        refusal = sign_in_refusal(self.request)
        if refusal is not None:
            return ValidationError(refusal.message, code=refusal.code)
        return super().get_invalid_login_error()
