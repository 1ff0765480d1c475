"""Report links: the person shares a report (a fixed period, live data) with someone who has
no account; `/r/{token}` opens it with no other credential."""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status
from fastapi import Path as PathParameter
from fastapi.responses import HTMLResponse

from api.deps import AccountOwner, BriefSessionDep, Cursor, Limit, SessionDep, SettingsDep
from api.errors import PROBLEM_MEDIA_TYPE, NotFound
from api.openapi import problem_responses
from api.reports import render
from api.routes.reports import (
    HTML_HEADERS,
    HTML_NOTE,
    HTML_REPORT,
    PDF_NOTE,
    PDF_REPORT,
    ReportFormat,
    report_response,
)
from api.services import report_links
from models.report_link import ReportLinkCreate, ReportLinkCreated, ReportLinkList

router = APIRouter(tags=["reports"])

AUTH_ERRORS = problem_responses(401, 403)
CREATED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "The link; its `url` is shown only in this answer.",
        "headers": {
            "Location": {
                "description": "`/v1/report-links/{report_link_id}` (DELETE revokes the link).",
                "schema": {"type": "string"},
            }
        },
    }
}
LINK_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {
        "description": "An unknown, revoked or expired link: a page saying so when the request "
        "accepts `text/html`, problem details otherwise.",
        "content": {
            "text/html": {"schema": {"type": "string"}},
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}},
        },
    }
}
LinkToken = Annotated[
    str,
    PathParameter(
        description="The token of the link's url. Anything that is not a live link's token "
        "(at most 100 characters of A-Z, a-z, 0-9, `-` and `_`): 404."
    ),
]
SHARED_DESCRIPTION = """
The report of a link made with `POST /v1/report-links`: the period fixed when the link was
made, the person's data as it is now. No other credential. An unknown, revoked or expired
link (or anything that is not a link's token) answers 404: an HTML page when the request's
`Accept` names `text/html`, problem+json otherwise. Answers carry `Cache-Control: no-store`,
`Referrer-Policy: no-referrer` and `X-Robots-Tag: noindex`.
"""


@router.post(
    "/v1/report-links",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportLinkCreated,
    responses={**CREATED, **AUTH_ERRORS, **problem_responses(400, 413, 422)},
    summary="Share a report by a link (the url is shown only once)",
    description="The person's own access token (an API key: 403). `from`, `to`, `tz` as for "
    "`/v1/summary` and resolved now (`to` defaults to this moment, `from` to `to` - 90 days, "
    "`tz` to the account's; the same 422s); the data stays live. The link works "
    "`expires_in_days` days (1..90, default 14). The `url` is `{PUBLIC_BASE_URL}/r/<token>` "
    "(256 random bits, stored only as a hash): shown in this answer only. No body is the "
    "same as `{}`: every default.",
)
def create_report_link(
    caller: AccountOwner,
    db: SessionDep,
    settings: SettingsDep,
    response: Response,
    data: Annotated[ReportLinkCreate | None, Body()] = None,
) -> ReportLinkCreated:
    body = data or ReportLinkCreate()
    created = report_links.create_link(db, caller.user_id, body, settings.public_base_url)
    response.headers["Location"] = f"/v1/report-links/{created.id}"
    return created


@router.get(
    "/v1/report-links",
    response_model=ReportLinkList,
    responses={**AUTH_ERRORS, **problem_responses(400, 422)},
    summary="List the caller's live report links, newest first (never their urls)",
)
def list_report_links(
    caller: AccountOwner, db: SessionDep, limit: Limit = 50, cursor: Cursor = None
) -> ReportLinkList:
    return report_links.list_links(db, caller.user_id, limit, cursor)


@router.delete(
    "/v1/report-links/{report_link_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**AUTH_ERRORS, **problem_responses(404, 422)},
    summary="Revoke a report link; it answers 404 at once",
)
def revoke_report_link(report_link_id: uuid.UUID, caller: AccountOwner, db: SessionDep) -> Response:
    report_links.revoke_link(db, caller.user_id, report_link_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _accepts_html(request: Request) -> bool:
    """Whether `Accept` names text/html (with a non-zero q): a browser, not an API client."""
    for media_range in request.headers.get("accept", "").split(","):
        media_type, *parameters = (part.strip() for part in media_range.split(";"))
        if media_type.lower() != "text/html":
            continue
        quality = next((p[2:] for p in parameters if p.lower().startswith("q=")), "1")
        try:
            if float(quality) > 0:
                return True
        except ValueError:
            return True
    return False


def _shared_report(
    request: Request, db: BriefSessionDep, token: str, format: ReportFormat
) -> Response:
    try:
        link = report_links.resolve_link(db, token)
    except NotFound as unknown:
        if _accepts_html(request):
            page = render.render_link_not_found(unknown.detail)
            return HTMLResponse(page, status.HTTP_404_NOT_FOUND, headers=HTML_HEADERS)
        raise NotFound(unknown.detail) from None
    return report_response(db, link.user_id, report_links.link_query(link), format)


@router.get(
    "/r/{token}",
    response_class=HTMLResponse,
    responses={**HTML_REPORT, **LINK_NOT_FOUND},
    summary="A shared report as a page with charts (no credential)",
    description=SHARED_DESCRIPTION + HTML_NOTE,
)
def shared_report_html(request: Request, db: BriefSessionDep, token: LinkToken) -> Response:
    return _shared_report(request, db, token, "html")


@router.get(
    "/r/{token}/report.pdf",
    response_class=Response,
    responses={**PDF_REPORT, **LINK_NOT_FOUND},
    summary="A shared report as a PDF (no credential)",
    description=SHARED_DESCRIPTION + PDF_NOTE,
)
def shared_report_pdf(request: Request, db: BriefSessionDep, token: LinkToken) -> Response:
    return _shared_report(request, db, token, "pdf")
