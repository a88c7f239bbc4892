"""Collector accounts: ``add_user --role collector --license-server``, ``collector_token``, and a
collector refused everywhere except the imports of its own license server."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from knox.models import AuthToken
from rest_framework.test import APIClient

from core.models import AuditEvent
from core.roles import COLLECTOR, role_of
from licensing.models import CollectorBinding, ImportJob, Snapshot
from licensing.tests.factories import LicenseServerFactory

pytestmark = pytest.mark.django_db
FILES = Path(__file__).parent / "import_files"


def add_collector(name="tsls-hq-collector", server="TSLS-HQ"):
    call_command("add_user", name, "--role", "collector", "--license-server", server)
    return get_user_model().objects.get(username=name)


def new_token(name="tsls-hq-collector", *args, capsys) -> str:
    capsys.readouterr()
    call_command("collector_token", name, *args)
    return capsys.readouterr().out.strip()


def token_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def upload():
    return [SimpleUploadedFile(n, (FILES / n).read_bytes(), content_type="text/csv")
            for n in ("keypacks_ps51.csv", "issued_ps51.csv")]


def test_add_user_binds_a_collector_to_its_server(server, capsys):
    user = add_collector(server="tsls-hq")  # the server's name, in any case
    assert role_of(user) == COLLECTOR and not user.has_usable_password() and not user.is_staff
    assert user.collector_binding.license_server == server
    assert "Created tsls-hq-collector (collector, sends for TSLS-HQ)." in capsys.readouterr().out
    event = AuditEvent.objects.get(action="user.created")
    assert event.data == {"role": "collector", "password_changed": False, "license_server": "TSLS-HQ"}


@pytest.mark.parametrize("args, says", [
    (["--role", "collector"], "needs its license server"),
    (["--role", "collector", "--license-server", "TSLS-NOWHERE"], "no license server named 'TSLS-NOWHERE'"),
    (["--role", "collector", "--license-server", "TSLS-HQ", "--password", "a-long-pass-1"], "has no password"),
    (["--role", "auditor", "--password", "a-long-pass-1", "--license-server", "TSLS-HQ"],
     "Only a collector account is bound"),
])
def test_add_user_refuses_a_collector_without_its_server_and_changes_nothing(server, args, says):
    with pytest.raises(CommandError, match=says) as refused:
        call_command("add_user", "tsls-hq-collector", *args)
    assert "nothing was changed" in str(refused.value)
    assert not get_user_model().objects.filter(username="tsls-hq-collector").exists()
    assert not CollectorBinding.objects.exists() and not AuditEvent.objects.exists()


def test_collector_token_prints_a_token_and_revokes_the_earlier_ones(server, capsys):
    add_collector()
    first = new_token(capsys=capsys)
    second = new_token("tsls-hq-collector", "--days", "30", capsys=capsys)
    assert first != second
    assert token_client(first).get("/api/v1/imports/").status_code == 401
    assert token_client(second).get("/api/v1/imports/").status_code == 200
    (kept,) = AuthToken.objects.filter(user__username="tsls-hq-collector")
    assert timedelta(days=29, hours=23) < kept.expiry - timezone.now() <= timedelta(days=30)
    issued = AuditEvent.objects.filter(action="auth.token_issued").order_by("sequence")
    assert [(e.actor, e.data["license_server"]) for e in issued] == [("system", "TSLS-HQ")] * 2
    assert AuditEvent.objects.get(action="auth.tokens_revoked").data == {"reason": "collector_token", "count": 1}
    assert all(token not in str(e.data) + e.summary for e in AuditEvent.objects.all() for token in (first, second))


def test_add_user_again_keeps_the_token_and_rebinding_revokes_it(server, capsys):
    add_collector()
    token = new_token(capsys=capsys)
    add_collector()  # nothing new: the token stays good
    assert token_client(token).get("/api/v1/imports/").status_code == 200
    LicenseServerFactory(name="TSLS-BRANCH")
    user = add_collector(server="TSLS-BRANCH")
    assert user.collector_binding.license_server.name == "TSLS-BRANCH"
    assert token_client(token).get("/api/v1/imports/").status_code == 401
    rebound = AuditEvent.objects.get(action="collector.rebound")
    assert rebound.data | {"refs": None} == {"from": "TSLS-HQ", "to": "TSLS-BRANCH", "tokens_revoked": 1, "refs": None}


def test_a_collector_made_a_person_loses_its_binding(server):
    add_collector()
    call_command("add_user", "tsls-hq-collector", "--role", "auditor", "--password", "a-long-pass-1")
    assert not CollectorBinding.objects.exists()
    assert role_of(get_user_model().objects.get(username="tsls-hq-collector")) == "auditor"


@pytest.mark.parametrize("name, args, says", [
    ("nobody", [], "no user named 'nobody'"),
    ("alice", [], "not a collector account"),
    ("tsls-hq-collector", ["--days", "0"], "from 1 to 1095 days"),
])
def test_collector_token_refuses_and_issues_nothing(server, admin_user, name, args, says):
    add_collector()
    with pytest.raises(CommandError, match=says):
        call_command("collector_token", name, *args)
    assert not AuthToken.objects.exists()


def api_operations():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, operations in schema["paths"].items():
        for method in operations:
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method


def test_a_collector_is_refused_everywhere_but_its_own_servers_imports(server, file_store, capsys,
                                                                       django_capture_on_commit_callbacks):
    other = LicenseServerFactory(name="TSLS-BRANCH")
    add_collector()
    client = token_client(new_token(capsys=capsys))
    allowed = {("/api/v1/imports/", "get"), ("/api/v1/imports/", "post"), ("/api/v1/imports/{id}/", "get"),
               ("/api/v1/auth/logout/", "post"), ("/api/v1/auth/token/", "post")}
    refused = []
    for path, method in api_operations():
        if (path, method) in allowed:
            continue
        url = path.replace("{id}", "1").replace("{name}", "audit-trail").replace("{fmt}", "csv")
        response = getattr(client, method)(url, {}, format="json")
        if response.status_code != 403:
            refused.append((method, url, response.status_code))
    assert refused == []
    assert len(list(api_operations())) - len(allowed) >= 30  # the whole API was tried
    for page in ("/", "/licenses/", "/imports/", "/api/v1/schema/", "/api/v1/docs/"):
        assert client.get(page).status_code in (302, 403)  # a token is no way into the pages

    response = client.post("/api/v1/imports/", {"license_server": other.pk, "files": upload()}, format="multipart")
    assert response.status_code == 403 and "its own license server" in response.json()["detail"]
    assert not ImportJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/imports/", {"license_server": server.pk, "files": upload()},
                               format="multipart")
    assert response.status_code == 202
    job = client.get(response["Location"]).json()
    assert job["status"] == "done" and job["requested_by"] == "tsls-hq-collector"
    assert Snapshot.objects.get().sent_by.username == "tsls-hq-collector"


def test_a_collector_sees_only_the_jobs_it_pushed(server, admin_user, file_store, capsys):
    from licensing.services.imports import import_start

    theirs = import_start(license_server=server, files=[(f.name, f) for f in upload()], actor=admin_user,
                          enqueue=False)
    add_collector()
    client = token_client(new_token(capsys=capsys))
    assert client.get("/api/v1/imports/").json()["results"] == []
    assert client.get(f"/api/v1/imports/{theirs.pk}/").status_code == 404


def test_the_token_endpoint_gives_a_collector_nothing(server):
    add_collector()
    response = APIClient().post("/api/v1/auth/token/", {"username": "tsls-hq-collector", "password": ""},
                                format="json")
    assert response.status_code in (400, 401, 403)
    assert not AuthToken.objects.exists()


def test_the_import_service_itself_refuses_people_without_the_role_and_other_collectors(server, file_store,
                                                                                      request):
    from django.core.exceptions import PermissionDenied

    from licensing.services.imports import import_start

    other = LicenseServerFactory(name="TSLS-BRANCH")
    collector = add_collector()
    for actor, target in [(request.getfixturevalue("requester"), server),
                          (request.getfixturevalue("auditor"), server), (collector, other)]:
        with pytest.raises(PermissionDenied):
            import_start(license_server=target, files=[(f.name, f) for f in upload()], actor=actor, enqueue=False)
    assert not ImportJob.objects.exists()
    assert import_start(license_server=server, files=[(f.name, f) for f in upload()], actor=collector,
                        enqueue=False).requested_by == collector
