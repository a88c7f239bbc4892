import re

import pytest

from portal.tests.api_mixins import api_client

CONTRACT_PATHS = {
    "/api/v1/auth/token/": {"post"},
    "/api/v1/license-servers/": {"get", "post"},
    "/api/v1/license-servers/{id}/": {"get", "patch"},
    "/api/v1/key-packs/": {"get", "post"},
    "/api/v1/key-packs/{id}/": {"get", "patch"},
    "/api/v1/machines/": {"get", "post"},
    "/api/v1/machines/{id}/": {"get", "patch"},
    "/api/v1/licenses/": {"get", "post"},
    "/api/v1/licenses/{id}/": {"get"},
    "/api/v1/transfers/": {"get", "post"},
    "/api/v1/transfers/{id}/": {"get"},
    "/api/v1/transfers/{id}/approve/": {"post"},
    "/api/v1/transfers/{id}/reject/": {"post"},
    "/api/v1/transfers/{id}/confirm-removal/": {"post"},
    "/api/v1/transfers/{id}/cancel/": {"post"},
    "/api/v1/reissue-requests/": {"get", "post"},
    "/api/v1/reissue-requests/{id}/": {"get"},
    "/api/v1/reissue-requests/{id}/install/": {"post"},
    "/api/v1/reissue-requests/{id}/deny/": {"post"},
    "/api/v1/reissue-requests/{id}/cancel/": {"post"},
    "/api/v1/csc-contacts/": {"get", "post"},
    "/api/v1/csc-contacts/{id}/": {"get", "patch"},
    "/api/v1/audit-events/": {"get"},
    "/api/v1/audit-events/{id}/": {"get"},
    "/api/v1/audit-events/verify/": {"get"},
    "/api/v1/compliance/": {"get"},
}


@pytest.fixture
def schema(admin_user):
    response = api_client(admin_user).get("/api/v1/schema/", {"format": "json"})
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_schema_lists_every_contract_operation(schema):
    assert schema["openapi"].startswith("3.")
    for path, methods in CONTRACT_PATHS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path
        assert not {"delete", "put"} & set(schema["paths"][path]), path


@pytest.mark.django_db
def test_schema_documents_errors(schema):
    paths = schema["paths"]
    for path, methods in CONTRACT_PATHS.items():
        for method in methods:
            responses = paths[path][method]["responses"]
            if path != "/api/v1/auth/token/":
                assert {"401", "403"} <= set(responses), (path, method)
            if method in ("post", "patch"):
                assert "400" in responses, (path, method)
            if "{id}" in path:
                assert "404" in responses, (path, method)
    conflict = paths["/api/v1/transfers/{id}/approve/"]["post"]["responses"]["409"]
    assert conflict["content"]["application/json"]["schema"]["$ref"].endswith("/Conflict")
    assert "four_eyes" in conflict["description"]
    codes = schema["components"]["schemas"]["CodeEnum"]["enum"]
    assert {"below_issued", "quantity_too_small", "no_licenses_available"} <= set(codes)
    assert "409" in paths["/api/v1/key-packs/{id}/"]["patch"]["responses"]


@pytest.mark.django_db
def test_schema_field_shapes(schema):
    components = schema["components"]["schemas"]
    license = components["License"]
    assert license["properties"]["transferable"]["readOnly"] is True
    assert license["properties"]["issued_at"]["format"] == "date-time"
    reissue = components["ReissueRequest"]["properties"]
    assert reissue["key_pack"]["nullable"] is True
    assert reissue["transfers"]["items"]["type"] == "integer"
    assert "csc_contact" in components["ReissueLogCallRequest"]["properties"]
    assert "origin" not in components["KeyPackRequest"]["properties"]
    assert "license_server" not in components["PatchedKeyPackUpdateRequest"]["properties"]
    assert set(components["TransferFileRequest"]["required"]) == {"license", "target_machine", "reason"}


@pytest.mark.django_db
def test_schema_needs_login():
    assert api_client().get("/api/v1/schema/").status_code == 401


@pytest.mark.django_db
def test_docs_are_served_locally(client, auditor):
    assert client.get("/api/v1/docs/").status_code == 302
    client.force_login(auditor)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html and "drf_spectacular_sidecar" in html
    assert "cdn" not in html.lower() and "unpkg" not in html.lower()
    # The start-up script is a file of its own (no inline script, for the Content-Security-Policy).
    assert "<script>" not in html and "<style>" not in html
    script = client.get("/api/v1/docs/?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema/" in script.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
