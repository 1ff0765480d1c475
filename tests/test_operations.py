"""Catalog, health, and the problem+json answers of the framework itself."""

import typing

from models import catalog


def test_catalog_lists_the_contract(client):
    response = client.get("/v1/catalog")
    assert response.status_code == 200
    body = response.json()
    slugs = {region["slug"] for region in body["regions"]}
    assert {"adductors", "hamstrings", "it_band", "plantar_fascia", "neck"} <= slugs
    assert len(slugs) == 17
    assert body["sides"] == ["left", "right", "both"]
    metrics = {metric["slug"]: metric for metric in body["metrics"]}
    assert metrics["pain"] == {
        "slug": "pain",
        "name": "Pain",
        "unit": "0-10 numeric rating scale",
        "min": 0,
        "max": 10,
        "better": "lower",
        "mcid_abs": 2,
        "mcid_pct": 30,
    }
    assert metrics["rom"]["max"] == 180
    assert metrics["rom"]["better"] == "higher"
    assert metrics["mobility"]["mcid_pct"] is None
    assert body["tools"] == list(catalog.TOOLS)


def test_validation_types_follow_the_catalog():
    assert set(typing.get_args(catalog.RegionSlug)) == catalog.REGION_SLUGS
    assert typing.get_args(catalog.MetricSlug) == tuple(catalog.METRICS_BY_SLUG)
    assert typing.get_args(catalog.SideSlug) == catalog.SIDES
    assert typing.get_args(catalog.ToolSlug) == catalog.TOOLS


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_unknown_route_and_wrong_method_are_problems(client):
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["status"] == 404
    wrong = client.put("/v1/catalog")
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"


def test_docs_and_openapi(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "Problem" in schema["components"]["schemas"]
    create = schema["paths"]["/v1/sessions"]["post"]["responses"]
    for status in ("200", "201", "401", "409", "413", "422"):
        assert status in create
    assert list(create["422"]["content"]) == ["application/problem+json"]
    # The writes read their credentials without FastAPI's security dependencies: their
    # security requirement is still published, like every other authenticated route's.
    either = [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    paths = schema["paths"]
    for path, method in [
        ("/v1/sessions", "post"),
        ("/v1/sessions/batch", "post"),
        ("/v1/sessions/{session_id}", "patch"),
        ("/v1/sessions/{session_id}", "delete"),
        ("/v1/sessions", "get"),
    ]:
        assert paths[path][method]["security"] == either, (method, path)


def test_unhandled_error_is_a_bare_500(client, monkeypatch):
    from api.services import sessions

    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internals: SELECT * FROM user_account")

    monkeypatch.setattr(sessions, "list_sessions", explode)
    token = client.post(
        "/v1/auth/register",
        json={"email": "e@example.com", "password": "long enough secret", "display_name": "E"},
    )
    assert token.status_code == 201
    access = client.post(
        "/v1/auth/token", data={"username": "e@example.com", "password": "long enough secret"}
    ).json()["access_token"]
    response = client.get("/v1/sessions", headers={"Authorization": f"Bearer {access}"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "SELECT" not in response.text
    assert "secret" not in response.text
