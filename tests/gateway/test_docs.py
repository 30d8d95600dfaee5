import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db


def test_the_docs_page_and_schema_need_a_login(client):
    for path in ("/api/v1/docs", "/api/v1/openapi.json"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/accounts/login/")


def test_the_docs_page_loads_its_assets_from_our_static_files(member_client):
    client = member_client
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    page = response.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower() and "https://" not in page
    assert finders.find("ninja/swagger-ui-bundle.js") and finders.find("ninja/swagger-ui.css")


def test_the_schema_describes_the_native_endpoints(member_client):
    response = member_client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/route/{task_type}", "/api/v1/consensus", "/api/v1/parallel"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["BearerKey"]["scheme"] == "bearer"


def test_native_endpoints_refuse_requests_without_a_key(client):
    response = client.post(
        "/api/v1/route/code_review", data={"content": "x"}, content_type="application/json"
    )
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_native_endpoints_name_the_wrong_field(client, api_key):
    response = client.post(
        "/api/v1/parallel",
        data={"tasks": [{"task_type": "x", "content": 5}]},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "tasks[0].content"


def test_native_endpoints_refuse_malformed_json(client, api_key):
    response = client.post(
        "/api/v1/consensus",
        data=b"{oops",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
