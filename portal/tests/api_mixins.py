"""Reusable API test mixins: a resource's test class sets its names and data, and the
mixins check list, get, create, edit, the roles, and that nothing is deleted.

A test class sets ``basename`` (the router's, e.g. ``api-machine``) and ``fields``
(CONTRACT.md's field names), and provides the fixtures it needs:
``instance`` (an existing row), ``create_data`` and ``update_data`` (request bodies).
"""

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient

from core.models import AuditEvent


def api_client(user=None) -> APIClient:
    """A client that sends ``Authorization: Token ...`` (a new token) for ``user`` (none when ``user`` is None)."""
    client = APIClient()
    if user is not None:
        _, token = AuthToken.objects.create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def list_url(basename: str) -> str:
    return reverse(f"{basename}-list")


def detail_url(basename: str, pk) -> str:
    return reverse(f"{basename}-detail", args=[pk])


def audit_count() -> int:
    return AuditEvent.objects.count()


class APITestBase:
    basename: str
    fields: set[str]

    @pytest.fixture
    def admin_api(self, admin_user):
        return api_client(admin_user)

    @pytest.fixture
    def auditor_api(self, auditor):
        return api_client(auditor)

    @pytest.fixture
    def requester_api(self, requester):
        return api_client(requester)

    def list_url(self):
        return reverse(f"{self.basename}-list")

    def detail_url(self, pk):
        return reverse(f"{self.basename}-detail", args=[pk])


class ListMixin(APITestBase):
    def test_list_for_every_role(self, instance, admin_user, auditor, requester):
        for user in (admin_user, auditor, requester):
            response = api_client(user).get(self.list_url())
            assert response.status_code == 200, response.content
            body = response.json()
            assert set(body) >= {"results", "next"}
            assert instance.pk in [row["id"] for row in body["results"]]
            assert set(body["results"][0]) == self.fields

    def test_list_page_size(self, instance, admin_api):
        response = admin_api.get(self.list_url(), {"page_size": 1})
        assert response.status_code == 200
        assert len(response.json()["results"]) == 1

    def test_list_unauthenticated_is_401(self, instance):
        response = api_client().get(self.list_url())
        assert response.status_code == 401
        assert "detail" in response.json()
        assert response.headers["WWW-Authenticate"].startswith("Token")

    def test_bad_token_is_401(self, instance):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
        assert client.get(self.list_url()).status_code == 401


class GetMixin(APITestBase):
    def test_get(self, instance, auditor_api):
        response = auditor_api.get(self.detail_url(instance.pk))
        assert response.status_code == 200, response.content
        assert response.json()["id"] == instance.pk
        assert set(response.json()) == self.fields

    def test_get_unknown_is_404(self, instance, admin_api):
        response = admin_api.get(self.detail_url(10**12))
        assert response.status_code == 404
        assert "detail" in response.json()

    def test_get_unauthenticated_is_401(self, instance):
        assert api_client().get(self.detail_url(instance.pk)).status_code == 401


class CreateMixin(APITestBase):
    def check_created(self, row: dict, data: dict) -> None:
        """Each field sent is read back (override where the API turns it into something else)."""
        for key, value in data.items():
            if key in self.fields:
                assert row[key] == value, key

    def test_create(self, create_data, admin_api):
        before = audit_count()
        response = admin_api.post(self.list_url(), create_data, format="json")
        assert response.status_code == 201, response.content
        row = response.json()
        assert set(row) == self.fields
        self.check_created(row, create_data)
        assert audit_count() == before + 1
        assert admin_api.get(self.detail_url(row["id"])).json() == row

    def test_create_empty_body_is_400(self, create_data, admin_api):
        before = audit_count()
        response = admin_api.post(self.list_url(), {}, format="json")
        assert response.status_code == 400
        assert isinstance(response.json(), dict)
        assert audit_count() == before

    def test_create_by_auditor_is_403(self, create_data, auditor_api):
        before = audit_count()
        response = auditor_api.post(self.list_url(), create_data, format="json")
        assert response.status_code == 403
        assert "detail" in response.json()
        assert audit_count() == before

    def test_create_unauthenticated_is_401(self, create_data):
        assert api_client().post(self.list_url(), create_data, format="json").status_code == 401


class RequesterCannotCreateMixin(APITestBase):
    def test_create_by_requester_is_403(self, create_data, requester_api):
        before = audit_count()
        response = requester_api.post(self.list_url(), create_data, format="json")
        assert response.status_code == 403
        assert audit_count() == before


class UpdateMixin(APITestBase):
    def test_update(self, instance, update_data, admin_api):
        before = audit_count()
        response = admin_api.patch(self.detail_url(instance.pk), update_data, format="json")
        assert response.status_code == 200, response.content
        row = response.json()
        for key, value in update_data.items():
            assert row[key] == value, key
        assert audit_count() == before + 1

    def test_update_by_auditor_and_requester_is_403(self, instance, update_data, auditor, requester):
        before = audit_count()
        for user in (auditor, requester):
            response = api_client(user).patch(self.detail_url(instance.pk), update_data, format="json")
            assert response.status_code == 403
        assert audit_count() == before

    def test_put_is_405(self, instance, update_data, admin_api):
        response = admin_api.put(self.detail_url(instance.pk), update_data, format="json")
        assert response.status_code == 405


class NoUpdateMixin(APITestBase):
    def test_patch_and_put_are_405(self, instance, admin_api):
        assert admin_api.patch(self.detail_url(instance.pk), {}, format="json").status_code == 405
        assert admin_api.put(self.detail_url(instance.pk), {}, format="json").status_code == 405


class NoDeleteMixin(APITestBase):
    def test_delete_is_405(self, instance, admin_api):
        before = audit_count()
        response = admin_api.delete(self.detail_url(instance.pk))
        assert response.status_code == 405
        assert "detail" in response.json()
        assert type(instance).objects.filter(pk=instance.pk).exists()
        assert audit_count() == before

    def test_delete_by_auditor_is_403(self, instance, auditor_api):
        assert auditor_api.delete(self.detail_url(instance.pk)).status_code == 403


class APIReadTests(ListMixin, GetMixin, NoDeleteMixin):
    """Every resource: list, get, 401, and no DELETE."""


class APICrudTests(APIReadTests, CreateMixin, RequesterCannotCreateMixin, UpdateMixin):
    """GET, POST and PATCH resources whose writes are for admins only."""
