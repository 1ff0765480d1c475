"""/docs and /redoc work offline: every script, style and icon comes from this server."""

import base64
import hashlib
import re

import pytest

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}
_REFERENCE = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']*)["']""")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_page_loads_only_what_this_server_serves(client, page):
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    assert "://" not in html  # no CDN, no fonts service, no validator
    references = _REFERENCE.findall(html)
    assert any(reference.endswith(".js") for reference in references), references
    for reference in references:
        assert reference.startswith("/"), reference
        assert not reference.startswith("//"), reference
        asset = client.get(reference)
        assert asset.status_code == 200, reference
        suffix = reference[reference.rindex(".") :]
        assert asset.headers["content-type"].startswith(ASSET_TYPES[suffix]), reference


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_page_allows_exactly_its_own_inline_script(client, page):
    response = client.get(page)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == "'none'"
    script_sources = policy["script-src"].split()
    expected = [
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(response.text)
    ]
    assert script_sources == ["'self'", *expected]
    assert policy["connect-src"] == "'self'"  # the document, and "Try it out"


def test_the_swagger_ui_page_reads_this_servers_document(client):
    html = client.get("/docs").text
    assert "url: '/openapi.json'" in html
    assert '"validatorUrl": null' in html
    document = client.get("/openapi.json")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")


def test_a_missing_docs_asset_is_a_problem(client):
    response = client.get("/docs/assets/missing.js")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
