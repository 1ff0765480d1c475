"""Server-rendered pages for people without the app: choosing a new password from the
reset email's link. No JavaScript; the form posts (form-encoded) to the same address."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from api.deps import SessionDep
from api.errors import BadRequest
from api.services import passwords
from api.state import app_state

router = APIRouter(tags=["pages"])
templates = Jinja2Templates(directory=Path(__file__).parent.parent / "templates" / "pages")
# Nothing but the page's own inline style and a form posting to itself.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}
TITLE = "Choose a new password"
HTML_ERROR = {
    400: {
        "description": "The page, saying why not (an unknown, used or expired token; passwords "
        "that differ or are too short).",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
Token = Annotated[str, Query(max_length=200, description="The token from the reset email.")]


def _page(request: Request, status_code: int = 200, **values: object) -> HTMLResponse:
    context = {"title": TITLE, "error": None, "done": False, "show_form": False, "token": ""}
    context.update(values)
    return templates.TemplateResponse(
        request, "reset_password.html", context, status_code=status_code, headers=PAGE_HEADERS
    )


@router.get(
    "/reset-password",
    response_class=HTMLResponse,
    responses=HTML_ERROR,
    summary="The reset page: a new-password form (HTML, no credential)",
    description="Opened from the reset email. An unknown, used or expired token shows why, "
    "with status 400.",
)
def reset_page(request: Request, db: SessionDep, token: Token = "") -> HTMLResponse:
    if not passwords.reset_token_is_live(db, token):
        return _page(request, 400, error=passwords.INVALID_RESET_TOKEN)
    return _page(request, show_form=True, token=token)


@router.post(
    "/reset-password",
    response_class=HTMLResponse,
    responses=HTML_ERROR,
    summary="Submit the reset page's form (HTML, form-encoded)",
    description="Fields `token`, `new_password`, `confirm_password`. The answer is an HTML "
    "page saying it worked (200) or why not (400).",
)
def submit_reset_page(
    request: Request,
    db: SessionDep,
    token: Annotated[str, Form(max_length=200)] = "",
    new_password: Annotated[str, Form(max_length=1024)] = "",
    confirm_password: Annotated[str, Form(max_length=1024)] = "",
) -> HTMLResponse:
    if new_password != confirm_password:
        return _page(request, 400, error="The two passwords differ.", show_form=True, token=token)
    if len(new_password) < 10:
        error = "The new password needs at least 10 characters."
        return _page(request, 400, error=error, show_form=True, token=token)
    base_url = app_state(request.app).settings.public_base_url
    try:
        passwords.confirm_reset(db, token, new_password, base_url)
    except BadRequest as refused:
        return _page(request, 400, error=refused.detail)
    return _page(request, done=True)
