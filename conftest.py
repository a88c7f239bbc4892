import pytest
from django.apps import apps
from django.core.cache import caches
from django.db import connection

from core.roles import ADMIN, AUDITOR, REQUESTER, sync_role_groups
from licensing.tests.factories import (
    KeyPackFactory,
    LicenseServerFactory,
    MachineFactory,
    UserFactory,
)
from portal.settings import file_storages


def pytest_collection_modifyitems(config, items):
    # Browser tests are the slowest; run them last so a domain failure shows first.
    items.sort(key=lambda item: "browser" in item.keywords)


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The API throttles count requests in the cache: each test starts with none counted."""
    for cache in caches.all():
        cache.clear()


@pytest.fixture(autouse=True)
def _role_groups(request):
    """Transactional tests flush the groups the migration made; make them again."""
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker is not None and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        sync_role_groups(apps)
        yield
        _allow_audit_flush()
        return
    yield


def _allow_audit_flush():
    """Django flushes tables with TRUNCATE after a transactional test; the append-only
    trigger refuses that, so it is switched off for the flush only (and on again
    before the next test, by ``_audit_append_only``)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE licensing_auditevent DISABLE TRIGGER audit_event_no_truncate")
            cursor.execute("ALTER TABLE licensing_auditevent DISABLE TRIGGER audit_event_no_update_delete")


@pytest.fixture(autouse=True)
def _audit_append_only(request, django_db_blocker):
    if connection.vendor == "postgresql":
        with django_db_blocker.unblock(), connection.cursor() as cursor:
            cursor.execute("ALTER TABLE licensing_auditevent ENABLE TRIGGER audit_event_no_truncate")
            cursor.execute("ALTER TABLE licensing_auditevent ENABLE TRIGGER audit_event_no_update_delete")
    yield


@pytest.fixture
def admin_user(db):
    return UserFactory(username="alice", role=ADMIN)


@pytest.fixture
def second_admin(db):
    return UserFactory(username="bob", role=ADMIN)


@pytest.fixture
def requester(db):
    return UserFactory(username="rita", role=REQUESTER)


@pytest.fixture
def auditor(db):
    return UserFactory(username="audrey", role=AUDITOR)


@pytest.fixture
def server(db):
    return LicenseServerFactory(name="TSLS-HQ")


@pytest.fixture
def key_pack(server):
    return KeyPackFactory(license_server=server, key_pack_id=4711, total_licenses=5)


@pytest.fixture
def machine(db):
    return MachineFactory(hostname="ws-xphome-01")


@pytest.fixture
def file_store(settings, tmp_path):
    """The exports and imports storages in folders of this test's own; returns their parent."""
    settings.STORAGES = {
        **settings.STORAGES,
        **file_storages("local", export_root=tmp_path / "exports", import_root=tmp_path / "imports"),
    }
    return tmp_path
