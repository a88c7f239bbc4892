"""Property-based test of the whole API against its own OpenAPI schema.

Schemathesis generates requests (valid and invalid) for every operation in
``/api/v1/schema/`` and sends them to the WSGI app as an admin. No response may be a
server error, and every documented response must match the schema.
"""

import pytest
import schemathesis
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from knox.models import AuthToken
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_log_call
from licensing.services.transfers import transfer_approve, transfer_confirm_removal, transfer_file
from licensing.tests.factories import CscContactFactory, KeyPackFactory, MachineFactory
from portal.wsgi import application

# Per operation and generation mode; about 30 operations x 2 modes.
MAX_EXAMPLES = 20
CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture
def world(admin_user, second_admin, server, key_pack):
    """A few rows of every kind, so small generated ids often hit real objects."""
    machines = [MachineFactory() for _ in range(6)]
    licenses = [license_issue_permanent(machine=m, key_pack=key_pack, actor=admin_user) for m in machines[:3]]
    license_issue_temporary(machine=machines[3], license_server=server,
                            product_version="windows_server_2003", actor=admin_user)
    requested = transfer_file(license=licenses[0], target_machine=machines[4], reason="r", actor=admin_user)
    ready = transfer_file(license=licenses[1], target_machine=machines[5], reason="r", actor=admin_user)
    transfer_approve(transfer=ready, actor=second_admin)
    transfer_confirm_removal(transfer=ready, actor=admin_user, method="registry_key_deleted")
    reissue_log_call(
        actor=admin_user, called_at=timezone.now(), license_server=server,
        product_version="windows_server_2003", license_program="select", quantity_requested=1,
        transfers=[ready], csc_location="North America", csc_phone_number="+1 888 571 2048",
    )
    KeyPackFactory(license_server=server, cal_type="per_user")
    CscContactFactory()
    return requested


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_api_matches_its_schema_and_never_fails(world, admin_user, capsys):
    headers = {"Authorization": f"Token {AuthToken.objects.create(user=admin_user)[1]}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", application, headers=headers)
    sent = 0
    failures = []

    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            def check(case):
                nonlocal sent
                # The API logout revokes the token it is sent with: give it one of its own.
                sending = headers if not case.operation.path.endswith("/auth/logout/") else {
                    "Authorization": f"Token {AuthToken.objects.create(user=admin_user)[1]}"}
                response = case.call(headers=sending)
                sent += 1
                case.validate_response(response, checks=CHECKS, headers=sending)

            try:
                check()
            except Unsatisfiable:
                # No parameters and no body: there is nothing invalid to send.
                assert mode == GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {exc}")

    with capsys.disabled():
        print(f"\nschemathesis: {sent} requests, {len(failures)} failing operations")
    assert not failures, "\n\n".join(failures)
