import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count

from core.audit import audit_verify_chain
from core.models import AuditEvent
from inventory.models import ClientMachine
from licensing.models import KeyPack, License, TransferRequest

pytestmark = pytest.mark.django_db


def snapshot():
    return (
        list(ClientMachine.objects.order_by("pk").values_list("hostname", "os_edition", "status")),
        list(License.objects.order_by("pk").values_list("machine__hostname", "product_version", "kind", "status")),
    )


class Rollback(Exception):
    pass


def seeded_snapshot(seed: int):
    """Seed inside a savepoint, read the result, and roll it back."""
    try:
        with transaction.atomic():
            call_command("seed_demo", "--scale", "small", "--seed", str(seed))
            result = snapshot()
            raise Rollback
    except Rollback:
        return result


def test_same_seed_same_data():
    first, again, other = seeded_snapshot(7), seeded_snapshot(7), seeded_snapshot(8)
    assert first == again
    assert first != other


def test_small_seed_is_realistic_and_valid(capsys):
    call_command("seed_demo", "--scale", "small", "--seed", "7")
    assert "Seeded small data" in capsys.readouterr().out
    assert audit_verify_chain().ok
    assert not KeyPack.objects.with_counts().filter(available_count__lt=0).exists()
    kinds = dict(License.objects.values_list("kind").annotate(n=Count("pk")))
    assert kinds["permanent"] > 100 and kinds["temporary"] > 0
    assert ClientMachine.objects.filter(status="retired").exists()
    assert ClientMachine.objects.values("os_edition").distinct().count() >= 8
    assert set(TransferRequest.objects.values_list("status", flat=True)) >= {
        "requested", "approved", "removal_confirmed", "awaiting_reissue", "completed"}
    assert KeyPack.objects.filter(origin="reissue").count() == 1
    before = (snapshot(), AuditEvent.objects.count())
    with pytest.raises(CommandError):
        call_command("seed_demo", "--scale", "small")
    call_command("seed_demo", "--scale", "small", "--if-empty")
    assert (snapshot(), AuditEvent.objects.count()) == before
