"""The documentation pages, with nothing loaded from outside: Swagger UI at /docs, ReDoc at
/redoc, their scripts and styles served from the fastapi-offline package under /docs/assets.

Each page carries its own Content-Security-Policy naming exactly what it loads: its assets
and the document from this origin, the one inline script by its hash, inline styles (both
UIs style elements from script), data: images (Swagger UI's icons) and blob: workers (ReDoc's
search). No CDN, no fonts service, no validator badge.
"""

import base64
import hashlib
import re
from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS_PATH = "/docs/assets"
ASSETS_DIRECTORY = files("fastapi_offline") / "static"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _script_hash(script: str) -> str:
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def _policy(page: str) -> str:
    scripts = " ".join(["'self'", *map(_script_hash, _INLINE_SCRIPT.findall(page))])
    return (
        f"default-src 'none'; script-src {scripts}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; worker-src blob:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


def _page(html: HTMLResponse) -> HTMLResponse:
    page = bytes(html.body).decode()
    return HTMLResponse(page, headers={"Content-Security-Policy": _policy(page)})


def install_docs(app: FastAPI) -> None:
    """/docs and /redoc (create the app with `docs_url=None, redoc_url=None`)."""
    app.mount(ASSETS_PATH, StaticFiles(directory=str(ASSETS_DIRECTORY)), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_swagger_ui_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
                swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
                swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                oauth2_redirect_url=None,  # no OAuth2 flow: bearer tokens and API keys
                # Swagger UI would otherwise ask an outside validator about the document.
                swagger_ui_parameters={"validatorUrl": None},
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return _page(
            get_redoc_html(
                openapi_url=f"{root}{openapi_url}",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{root}{ASSETS_PATH}/redoc.standalone.js",
                redoc_favicon_url=f"{root}{ASSETS_PATH}/favicon.png",
                with_google_fonts=False,
            )
        )
