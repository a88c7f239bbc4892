"""The login form: says why a sign-in was refused (a lockout, the directory)."""

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from core.directory import sign_in_refusal
from core.signin import is_locked_out, locked_out_message


class PortalAuthenticationForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "Your user name and password did not match. Please try again.",
    }

    def get_invalid_login_error(self):
        if is_locked_out(self.request):
            return ValidationError(locked_out_message(), code="locked_out")
        refusal = sign_in_refusal(self.request)
        if refusal is not None:
            return ValidationError(refusal.message, code=refusal.code)
        return super().get_invalid_login_error()
