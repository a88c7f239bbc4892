"""The login form: says why a sign-in was refused (a lockout, the directory, a collector)."""

import logging

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from core import roles
from core.directory import sign_in_refusal
from core.middleware import COLLECTOR_MESSAGE
from core.signin import is_locked_out, locked_out_message

logger = logging.getLogger("core.signin")


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

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if roles.role_of(user) == roles.COLLECTOR:
            logger.warning("Page sign-in refused: %s is a collector account.", user.get_username())
            raise ValidationError(COLLECTOR_MESSAGE, code="collector")
