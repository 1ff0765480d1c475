"""Reports: the summary and the insights of a period as a page with charts, and as a PDF."""

import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.analytics.periods import SummaryQuery
from api.analytics.report import report_figures
from api.deps import BriefSessionDep, TimePeriodDep, reader_with
from api.gate import LoopSemaphore
from api.openapi import problem_responses
from api.reports import render
from api.services.access import Caller, readable_client
from models.timestamps import RANGE

router = APIRouter(tags=["reports"])

ReportFormat = Literal["html", "pdf"]
# SecurityHeadersMiddleware gives every answer, errors included, `Cache-Control: no-store`,
# `Referrer-Policy: no-referrer` and `X-Robots-Tag: noindex`; the HTML adds the page's CSP.
HTML_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}
HTML_REPORT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report page (HTML, no script, no external resource).",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
PDF_REPORT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report as an A4 PDF with selectable text.",
        "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
    }
}
REPORT_ERRORS = problem_responses(401, 403, 404, 422)
REPORT_DESCRIPTION = f"""
The summary and the insights of the period (`from`, `to`, `tz` as for `/v1/summary`, weekly
buckets), with charts: who, the period and when the report was made; adherence with a
calendar; hydration; a weekly before/after chart per metric; carry-over, left/right and what
works; the safety items; the notes of the 20 newest sessions of the period that have one.
Its numbers are those of `/v1/summary` and `/v1/insights` for the same parameters (rates as
percentages with one decimal); each weekly table lists the weeks with a rating. Every answer,
errors included, carries `Cache-Control: no-store`, `Referrer-Policy: no-referrer` and
`X-Robots-Tag: noindex`. Errors are problem+json. `from` and `to` are instants from {RANGE}
(422 outside); a period is at most 10 years.
"""
HTML_NOTE = (
    "\n\nThe page has no JavaScript and loads nothing: "
    "`Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; img-src data:`."
)
PDF_NOTE = "\n\nThe same content as the page, rendered on the server (WeasyPrint)."
COACH_NOTE = (
    "\n\nNeeds `summaries:read` and `clients:read`, like the coach's summary. Without a live "
    "grant from this client (also for one's own id): 404."
)

ReportReader = Annotated[Caller, Depends(reader_with("summaries:read", brief=True))]


# PDFs rendered at once by a process: each holds a core, and the GIL, for a second or more.
# Beyond that they wait on the event loop (holding no worker thread), so a burst of PDFs
# cannot take every thread or starve the other requests.
PDF_RENDERS_AT_ONCE = 2
_pdf_renders = LoopSemaphore(PDF_RENDERS_AT_ONCE)


async def _pdf_body(html: str) -> AsyncIterator[bytes]:
    async with _pdf_renders.get():
        yield await run_in_threadpool(render.render_pdf, html)


def report_response(
    db: Session, person_id: uuid.UUID, query: SummaryQuery, format: ReportFormat
) -> Response:
    """The report of one person's period as HTML or PDF. The figures are read in the route's
    turn at the database; the PDF is rendered after the route returned (the turn is free by
    then, with a BriefSessionDep), while the response is sent."""
    html = render.render_html(report_figures(db, person_id, query))
    if format == "pdf":
        headers = {"Content-Disposition": 'inline; filename="report.pdf"'}
        return StreamingResponse(_pdf_body(html), media_type="application/pdf", headers=headers)
    return HTMLResponse(html, headers=HTML_HEADERS)


@router.get(
    "/v1/report.html",
    response_class=Response,
    responses={**HTML_REPORT, **REPORT_ERRORS},
    summary="The caller's report as a page with charts",
    description=REPORT_DESCRIPTION + HTML_NOTE,
)
def own_report_html(caller: ReportReader, db: BriefSessionDep, query: TimePeriodDep) -> Response:
    return report_response(db, caller.user_id, query, "html")


@router.get(
    "/v1/report.pdf",
    response_class=Response,
    responses={**PDF_REPORT, **REPORT_ERRORS},
    summary="The caller's report as a PDF",
    description=REPORT_DESCRIPTION + PDF_NOTE,
)
def own_report_pdf(caller: ReportReader, db: BriefSessionDep, query: TimePeriodDep) -> Response:
    return report_response(db, caller.user_id, query, "pdf")


@router.get(
    "/v1/clients/{client_id}/report.html",
    response_class=Response,
    responses={**HTML_REPORT, **REPORT_ERRORS},
    summary="A client's report as a page with charts (coach, read-only)",
    description=REPORT_DESCRIPTION + HTML_NOTE + COACH_NOTE,
)
def client_report_html(
    client_id: uuid.UUID, caller: ReportReader, db: BriefSessionDep, query: TimePeriodDep
) -> Response:
    person_id = readable_client(db, caller, client_id, "summaries:read")
    return report_response(db, person_id, query, "html")


@router.get(
    "/v1/clients/{client_id}/report.pdf",
    response_class=Response,
    responses={**PDF_REPORT, **REPORT_ERRORS},
    summary="A client's report as a PDF (coach, read-only)",
    description=REPORT_DESCRIPTION + PDF_NOTE + COACH_NOTE,
)
def client_report_pdf(
    client_id: uuid.UUID, caller: ReportReader, db: BriefSessionDep, query: TimePeriodDep
) -> Response:
    person_id = readable_client(db, caller, client_id, "summaries:read")
    return report_response(db, person_id, query, "pdf")
