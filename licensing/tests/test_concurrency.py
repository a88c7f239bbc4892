"""Real concurrent requests on PostgreSQL: row locks and partial unique indexes hold the rules."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from core.audit import audit_verify_chain
from core.errors import DomainError
from core.models import AuditEvent
from licensing.models import License, LicenseStatus, TransferRequest, TransferStatus
from licensing.services import transfers as tsvc
from licensing.services.licenses import license_issue_permanent, license_issue_temporary
from licensing.services.reissue import reissue_install, reissue_log_call
from licensing.tasks import expire_due_temporary_licenses
from licensing.tests.factories import KeyPackFactory, MachineFactory, UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
THREADS = 24


@pytest.fixture(autouse=True)
def _needs_postgres():
    if connection.vendor != "postgresql":
        pytest.skip("row locks and concurrent transactions need PostgreSQL (SQLite serialises writers)")


class Refused(Exception):
    """A refusal other than a DomainError that a racing callable reports by its code."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def race(callables):
    """Run the callables at the same moment in their own threads (own connections).
    Returns Counter of outcomes: "ok" or the DomainError code."""
    barrier = threading.Barrier(len(callables))
    outcomes = []
    lock = threading.Lock()

    def run(fn):
        try:
            barrier.wait()
            fn()
            result = "ok"
        except (DomainError, Refused) as exc:
            result = str(exc.code)
        except Exception as exc:  # an unexpected error must fail the test, by name
            result = f"error: {type(exc).__name__}: {exc}"
        finally:
            connections.close_all()
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=run, args=(fn,)) for fn in callables]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return Counter(outcomes)


def test_threads_race_for_the_last_seats(admin_user):
    pack = KeyPackFactory(total_licenses=10)
    for _ in range(5):
        license_issue_permanent(machine=MachineFactory(), key_pack=pack, actor=admin_user)
    machines = [MachineFactory() for _ in range(THREADS)]
    outcome = race([
        (lambda m=m: license_issue_permanent(machine=m, key_pack=pack, actor=admin_user)) for m in machines
    ])
    assert outcome == Counter({"ok": 5, "no_licenses_available": THREADS - 5})
    assert License.objects.filter(key_pack=pack).count() == 10
    assert audit_verify_chain().ok


def test_threads_issue_one_machine_from_many_packs(admin_user):
    machine = MachineFactory()
    packs = [KeyPackFactory() for _ in range(THREADS)]
    outcome = race([
        (lambda p=p: license_issue_permanent(machine=machine, key_pack=p, actor=admin_user)) for p in packs
    ])
    assert outcome == Counter({"ok": 1, "machine_already_licensed": THREADS - 1})
    assert License.objects.filter(machine=machine, status=LicenseStatus.ACTIVE).count() == 1


def test_threads_issue_temporary_once(admin_user, server):
    machine = MachineFactory()
    outcome = race([
        (lambda: license_issue_temporary(machine=machine, license_server=server,
                                         product_version="windows_server_2003", actor=admin_user))
        for _ in range(THREADS)
    ])
    assert outcome == Counter({"ok": 1, "temporary_already_used": THREADS - 1})


def test_threads_file_transfers_of_one_license(admin_user, key_pack):
    license = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
    targets = [MachineFactory() for _ in range(THREADS)]
    outcome = race([
        (lambda t=t: tsvc.transfer_file(license=license, target_machine=t, reason="r", actor=admin_user))
        for t in targets
    ])
    assert outcome == Counter({"ok": 1, "transfer_pending": THREADS - 1})
    assert TransferRequest.objects.filter(license=license).count() == 1


def test_threads_approve_one_request(admin_user, key_pack):
    license = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
    transfer = tsvc.transfer_file(license=license, target_machine=MachineFactory(), reason="r", actor=admin_user)
    approvers = [UserFactory(username=f"approver{i}", role="admin") for i in range(THREADS)]
    outcome = race([
        (lambda a=a: tsvc.transfer_approve(transfer=transfer, actor=a)) for a in approvers
    ])
    assert outcome == Counter({"ok": 1, "invalid_state": THREADS - 1})
    assert AuditEvent.objects.filter(action="transfer.approved").count() == 1
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.APPROVED


def test_two_installs_of_one_call(admin_user, second_admin, key_pack):
    license = license_issue_permanent(machine=MachineFactory(), key_pack=key_pack, actor=admin_user)
    transfer = tsvc.transfer_file(license=license, target_machine=MachineFactory(), reason="r", actor=admin_user)
    tsvc.transfer_approve(transfer=transfer, actor=second_admin)
    tsvc.transfer_confirm_removal(transfer=transfer, actor=second_admin, method="registry_key_deleted")
    call = reissue_log_call(
        actor=admin_user, called_at=timezone.now(), license_server=key_pack.license_server,
        product_version=key_pack.product_version, license_program="select", quantity_requested=1,
        transfers=[transfer], csc_location="EMEA", csc_phone_number="+353 1 706 5353",
    )
    outcome = race([
        (lambda i=i: reissue_install(reissue_request=call, actor=admin_user, key_pack_id=7000 + i,
                                     total_licenses=1))
        for i in range(4)
    ])
    assert outcome == Counter({"ok": 1, "invalid_state": 3})
    assert License.objects.filter(transferred_from=license).count() == 1


def test_concurrent_expiry_runs_write_one_event_each(admin_user, server):
    temporaries = [
        license_issue_temporary(machine=MachineFactory(), license_server=server,
                                product_version="windows_server_2003", actor=admin_user)
        for _ in range(10)
    ]
    later = timezone.now() + timedelta(days=91)
    race([(lambda: expire_due_temporary_licenses(now=later)) for _ in range(4)])
    assert License.objects.filter(pk__in=[t.pk for t in temporaries], status="expired").count() == 10
    assert AuditEvent.objects.filter(action="license.expired").count() == 10
    assert audit_verify_chain().ok
