"""seed_demo: deterministic, realistic, and consistent in time. Every invariant is checked on
every object of the small demo, not on a sample: no CSC call before the transfers it covers
were filed and their removal confirmed, no event before the object it touches existed, key
packs installed before their CALs were issued, revocations after the CAL's issue and within
their quota at every moment, and rule 13 for every pack and CAL."""

from collections import defaultdict
from datetime import timedelta

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from core.audit import audit_verify_chain
from core.models import AuditEvent
from inventory.models import ClientMachine
from licensing.choices import version_rank
from licensing.models import (
    CalType,
    DriftItem,
    DriftKind,
    KeyPack,
    License,
    PerUserIssuance,
    ReissueRequest,
    Revocation,
    Snapshot,
    TransferRequest,
)
from licensing.rules import revoke_quota
from licensing.selectors import compliance_rows, forecast_rows

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


@pytest.fixture
def seeded(file_store, capsys):
    call_command("seed_demo", "--scale", "small", "--seed", "7")
    assert "Seeded small data" in capsys.readouterr().out
    return timezone.now()


def test_same_seed_same_data(file_store):
    first, again, other = seeded_snapshot(7), seeded_snapshot(7), seeded_snapshot(8)
    assert first == again
    assert first != other


def test_small_seed_is_realistic_and_valid(seeded):
    assert audit_verify_chain().ok
    assert not KeyPack.objects.with_counts().filter(available_count__lt=0).exists()
    kinds = dict(License.objects.values_list("kind").annotate(n=Count("pk")))
    assert kinds["permanent"] > 100 and kinds["temporary"] > 0
    assert ClientMachine.objects.filter(status="retired").exists()
    assert ClientMachine.objects.values("os_edition").distinct().count() >= 8
    assert set(TransferRequest.objects.values_list("status", flat=True)) >= {
        "requested", "approved", "removal_confirmed", "awaiting_reissue", "completed", "rejected", "cancelled"}
    assert set(ReissueRequest.objects.values_list("status", flat=True)) == {"open", "fulfilled", "denied"}
    assert KeyPack.objects.filter(origin="reissue").count() == 1
    # From the article's era to today's license servers, with per-device and per-user packs.
    versions = set(KeyPack.objects.values_list("license_server__windows_version", flat=True))
    assert versions >= {"windows_server_2003", "windows_server_2008_r2", "windows_server_2016",
                        "windows_server_2019", "windows_server_2022"}
    modern = KeyPack.objects.exclude(license_server__windows_version="windows_server_2003")
    for cal_type in (CalType.PER_DEVICE, CalType.PER_USER):
        assert modern.filter(cal_type=cal_type).values("license_server").distinct().count() == 4
    before = (snapshot(), AuditEvent.objects.count())
    with pytest.raises(CommandError):
        call_command("seed_demo", "--scale", "small")
    call_command("seed_demo", "--scale", "small", "--if-empty")
    assert (snapshot(), AuditEvent.objects.count()) == before


# -- the timeline ---------------------------------------------------------------------------

def created_moments() -> dict[tuple[str, str], object]:
    """When each object the audit trail may name came to be, by (object type, id)."""
    moments = {}
    sources = [
        ("licenseserver", "licensing.LicenseServer", "created_at"), ("keypack", "licensing.KeyPack", "created_at"),
        ("clientmachine", "inventory.ClientMachine", "created_at"), ("license", "licensing.License", "created_at"),
        ("transferrequest", "licensing.TransferRequest", "requested_at"),
        ("reissuerequest", "licensing.ReissueRequest", "logged_at"), ("driftitem", "licensing.DriftItem", "created_at"),
        ("peruserissuance", "licensing.PerUserIssuance", "first_snapshot__taken_at"),
    ]
    for object_type, label, field in sources:
        for pk, moment in apps.get_model(label).objects.values_list("pk", field):
            moments[(object_type, str(pk))] = moment
    for pk, joined in get_user_model().objects.values_list("pk", "date_joined"):
        moments[("user", str(pk))] = joined
    return moments


REF_TYPES = {"machine": "clientmachine", "key_pack": "keypack", "license": "license", "transfer": "transferrequest",
             "reissue_request": "reissuerequest", "license_server": "licenseserver"}
UNTIMED_TYPES = {"csccontact", "report"}  # no creation moment of their own


def test_no_event_is_dated_before_what_it_touches_and_the_trail_runs_in_time_order(seeded):
    moments = created_moments()
    previous = None
    late = []
    for event in AuditEvent.objects.order_by("sequence").iterator():
        assert event.occurred_at <= seeded, f"event #{event.sequence} is in the future"
        if previous is not None:
            assert event.occurred_at >= previous.occurred_at, (
                f"event #{event.sequence} ({event.action}, {event.occurred_at}) is dated before event "
                f"#{previous.sequence} ({previous.action}, {previous.occurred_at})")
        previous = event
        touched = [(event.object_type, event.object_id)] + [
            (REF_TYPES[kind], str(pk)) for kind, pks in event.data.get("refs", {}).items() for pk in pks]
        for key in touched:
            if key[0] in UNTIMED_TYPES:
                continue
            assert key in moments, f"event #{event.sequence} ({event.action}) touches {key}, which does not exist"
            if event.occurred_at < moments[key]:
                late.append(f"#{event.sequence} {event.action} at {event.occurred_at} touches {key}, "
                            f"created {moments[key]}")
    assert late == []
    assert AuditEvent.objects.count() > 800


def test_every_object_comes_after_what_it_depends_on(seeded):
    now = seeded
    for pack in KeyPack.objects.select_related("license_server"):
        assert pack.license_server.created_at <= pack.created_at <= now, pack
        assert pack.installed_on <= pack.created_at.date(), pack
    for machine in ClientMachine.objects.all():
        assert machine.created_at <= now and (machine.retired_at is None or machine.created_at < machine.retired_at)
    for lic in License.objects.select_related("machine", "key_pack", "license_server"):
        assert lic.license_server.created_at <= lic.issued_at <= now, lic
        assert lic.machine.created_at <= lic.issued_at, f"{lic} issued before {lic.machine} was added"
        assert lic.created_at <= now
        if lic.machine.retired_at is not None:  # rule 6, in time: nothing issued to a retired machine
            assert lic.issued_at < lic.machine.retired_at, f"{lic} issued to {lic.machine} after it was retired"
        if lic.key_pack is not None:
            assert lic.key_pack.created_at <= lic.issued_at, f"{lic} issued before {lic.key_pack} was installed"
            assert lic.key_pack.installed_on <= lic.issued_at.date()
        else:
            assert lic.expires_at == lic.issued_at + timedelta(days=90)
        if lic.ended_at is not None:
            assert lic.issued_at <= lic.ended_at <= now, lic
    for revocation in Revocation.objects.select_related("license"):
        assert revocation.license.issued_at <= revocation.revoked_at <= revocation.recorded_at <= now
        assert revocation.license.ended_at == revocation.revoked_at
    for snapshot_ in Snapshot.objects.select_related("license_server"):
        assert snapshot_.license_server.created_at <= snapshot_.taken_at <= now
    for issuance in PerUserIssuance.objects.select_related("key_pack", "first_snapshot"):
        assert issuance.key_pack.created_at <= issuance.issued_at <= issuance.first_snapshot.taken_at


def test_every_csc_call_comes_after_the_transfers_it_covers(seeded):
    """Filed, approved, removal confirmed, then the call (and only then its outcome)."""
    now = seeded
    for transfer in TransferRequest.objects.select_related("license", "target_machine", "resulting_license"):
        assert transfer.license.issued_at <= transfer.requested_at, f"{transfer} filed before its CAL was issued"
        assert transfer.target_machine.created_at <= transfer.requested_at, f"{transfer} filed before its target"
        steps = [s for s in (transfer.requested_at, transfer.approved_at, transfer.removal_confirmed_at,
                             transfer.completed_at) if s is not None]
        assert steps == sorted(steps) and steps[-1] <= now, f"{transfer}'s steps are out of order: {steps}"
        assert transfer.closed_at is None or transfer.requested_at <= transfer.closed_at <= now
        if transfer.resulting_license is not None:
            assert transfer.resulting_license.issued_at == transfer.completed_at
            assert transfer.license.ended_at == transfer.completed_at
    calls = ReissueRequest.objects.prefetch_related("transfers").select_related("key_pack").order_by("pk")
    for call in calls:
        for transfer in call.transfers.all():
            assert transfer.removal_confirmed_at is not None, f"{call} covers {transfer}, whose removal is unconfirmed"
            assert call.called_at >= transfer.requested_at, f"{call} is dated before {transfer} was filed"
            assert call.called_at >= transfer.removal_confirmed_at, f"{call} is dated before {transfer}'s removal"
        assert call.called_at <= call.logged_at <= now
        assert call.closed_at is None or call.logged_at <= call.closed_at <= now
        if hasattr(call, "key_pack"):
            assert call.logged_at <= call.key_pack.created_at and call.called_at.date() <= call.key_pack.installed_on
    assert calls.count() == 3


# -- the rules, at every moment ---------------------------------------------------------------

def test_every_pack_and_cal_is_of_its_servers_version_or_older(seeded):
    """Rule 13, on every row that names a product version on a server."""
    for model in (KeyPack, License, PerUserIssuance, ReissueRequest, Revocation):
        for product, server_version in model.objects.values_list("product_version",
                                                                 "license_server__windows_version"):
            assert version_rank(product) <= version_rank(server_version), (model.__name__, product, server_version)


def test_the_revocation_quota_is_never_exceeded(seeded):
    """Rule 12: at the moment of each revocation, the revoked CALs holding a place are within 20%
    of the per-device CALs of that version installed on that server at that moment."""
    revocations = defaultdict(list)
    for r in Revocation.objects.all():
        revocations[(r.license_server_id, r.product_version)].append((r.revoked_at, r.holds_quota_until))
    assert revocations
    for (server, product), spans in revocations.items():
        packs = list(KeyPack.objects.filter(license_server=server, product_version=product,
                                            cal_type=CalType.PER_DEVICE).values_list("created_at", "total_licenses"))
        for moment, _ in spans:
            installed = sum(total for created, total in packs if created <= moment)
            held = sum(1 for start, end in spans if start <= moment < end)
            assert held <= revoke_quota(installed), (server, product, moment, held, installed)


# -- what the demo shows -------------------------------------------------------------------

def test_the_demo_shows_revocations_per_user_over_allocation_and_a_coming_shortfall(seeded, capsys):
    now = seeded
    assert Revocation.objects.filter(holds_quota_until__gt=now).exists()
    assert Revocation.objects.filter(holds_quota_until__lte=now).exists()  # a place that has freed
    rows = compliance_rows(now=now)
    assert any(r.revoked and r.revoke_quota_left for r in rows)
    assert [r.product_version for r in rows if r.per_user_over_allocated] == ["windows_server_2022"]
    assert any(r.per_user_issued and not r.per_user_over_allocated for r in rows)
    soon = [f for f in forecast_rows(now=now)
            if f.shortfall_on is not None and f.shortfall_on <= timezone.localdate(now) + timedelta(days=30)]
    assert [(f.license_server_name, f.product_version) for f in soon] == [("TSLS-CLOUD-02", "windows_server_2019")]
    assert all(f.shortfall_on is None for f in forecast_rows(now=now) if f not in soon)
    # The snapshot agrees with the portal, but for the per-user CALs the server does not enforce.
    assert list(DriftItem.objects.values_list("kind", flat=True)) == [DriftKind.PER_USER_OVER_ALLOCATED]
    call_command("verify_audit")
    assert "Audit chain intact" in capsys.readouterr().out
