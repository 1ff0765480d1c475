"""The report page and its PDF (GET /v1/report.html, .../report.pdf and the coach's): what a
reader sees, checked against the JSON of /v1/summary and /v1/insights for the same period."""

import io
import uuid
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pypdf
import pytest

from tests.factories import api_key, link
from tests.summary_data import log_session, rating, summary

PERIOD = {"from": "2026-10-01T00:00:00Z", "to": "2026-10-31T22:00:00Z", "tz": "Europe/Berlin"}
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
NOTE = '<script>window.__xss=1</script><b>bold?</b> & "quotes"'


class Page(HTMLParser):
    """What a reader finds on the page: the stat lists, the tables, the notes and the charts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.stats: list[list[tuple[str, str]]] = []
        self.tables: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.charts: list[dict[str, str]] = []
        self.chart_titles: list[str] = []
        self.tags: list[str] = []
        self._text: list[str] | None = None
        self._where: list[str] = []
        self._in_stats = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {key: value or "" for key, value in attrs}
        self.tags.append(tag)
        if tag == "ul" and attributes.get("class") == "stats":
            self.stats.append([])
            self._in_stats = True
        elif tag == "table":
            self.tables.append({"caption": "", "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag == "svg" and attributes.get("role") == "img":
            self.charts.append(attributes)
        elif tag == "title" and not self.charts:
            return  # the document's title, not a chart's
        if tag in ("b", "span") and not self._in_stats:
            return  # markup inside a cell: its text belongs to the cell
        if tag in ("b", "span", "td", "th", "caption", "title") or (
            tag == "p" and attributes.get("class") == "note"
        ):
            self._text, self._where = [], [*self._where, tag]

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul":
            self._in_stats = False
        if not self._where or self._where[-1] != tag or self._text is None:
            return
        text = "".join(self._text).strip()
        self._where.pop()
        self._text = None
        if tag == "b" and self.stats and (not self.stats[-1] or self.stats[-1][-1][1]):
            self.stats[-1].append((text, ""))
        elif tag == "span" and self.stats and self.stats[-1] and not self.stats[-1][-1][1]:
            self.stats[-1][-1] = (self.stats[-1][-1][0], text)
        elif tag in ("td", "th"):
            self.tables[-1]["rows"][-1].append(text)
        elif tag == "caption":
            self.tables[-1]["caption"] = text
        elif tag == "p":
            self.notes.append(text)
        elif tag == "title":
            self.chart_titles.append(text)

    def table(self, header: str) -> list[list[str]]:
        """The body rows of the table whose first header cell or caption is `header`."""
        for table in self.tables:
            if table["caption"] == header or table["rows"][0][0] == header:
                return table["rows"][1:]
        raise AssertionError(f"no table {header!r}")

    def tables_headed(self, header: str) -> list[list[list[str]]]:
        return [table["rows"][1:] for table in self.tables if table["rows"][0][0] == header]


def number(value: Any) -> str:
    return "\u2013" if value is None else str(value)


def percent(rate: float | None) -> str:
    return "\u2013" if rate is None else f"{rate * 100:.1f} %"


def seed(client, person) -> None:
    """Four weeks of October: left/right pain and rom, two tools, water, notes."""
    for day in range(1, 29):
        tool = "foam_roller" if day % 2 else "ball"
        relief = 3 if tool == "foam_roller" else 1
        log_session(
            client,
            person,
            f"2026-10-{day:02d}T07:30:00Z",
            rating("pain", 6 + day % 3, 6 + day % 3 - relief, side="left"),
            rating("pain", 4 + day % 2, 3 + day % 2, side="right"),
            rating("rom", 30 + day % 4, 36 + day % 5, side="left"),
            rating("rom", 40 + day % 3, 44 + day % 3, side="right"),
            tool=tool,
            ended_at=f"2026-10-{day:02d}T07:{45 if day % 3 else 55}:00Z",
            water_before_ml=400 if day % 4 else 100,
            water_after_ml=350,
            felt_unwell_after=day % 5 == 0,
            notes=NOTE if day == 27 else (f"day {day}" if day % 3 == 0 else None),
        )
    # A session that made it worse, and one outside the period.
    log_session(client, person, "2026-10-29T18:00:00Z", rating("pain", 2, 6, side="left"))
    log_session(client, person, "2026-11-02T07:30:00Z", rating("pain", 5, 1), notes="later")


def report(client, person, path="/v1/report.html", **params):
    response = client.get(path, params={**PERIOD, **params}, headers=person.headers)
    assert response.status_code == 200, response.text
    return response


def test_the_page_shows_the_figures_of_the_summary_and_the_insights(client, make_person):
    ana = make_person("Ana <i>Sousa</i>", timezone="Europe/Berlin")
    seed(client, ana)
    page = Page(report(client, ana).text)
    summarised = summary(client, ana, **PERIOD)
    found = summary(client, ana, "/v1/insights", **PERIOD)

    adherence, hydration = summarised["adherence"], summarised["hydration"]
    assert page.stats[0] == [
        (number(adherence["sessions"]), "sessions"),
        (number(adherence["sessions_per_week"]), "sessions per week"),
        (number(adherence["current_streak_days"]), "current streak (days)"),
        (number(adherence["longest_streak_days"]), "longest streak (days)"),
        (number(adherence["active_days"]), "days with a session"),
        (number(adherence["complete_sessions"]), "complete sessions"),
    ]
    assert adherence["sessions"] == 29
    assert page.stats[1] == [
        (number(hydration["sessions_with_water"]), "sessions with water logged"),
        (number(hydration["hydrated_sessions"]), "hydrated (both ≥ 300 ml)"),
        (percent(hydration["hydrated_rate"]), "hydrated rate"),
        (percent(hydration["unwell_rate_hydrated"]), "felt unwell, hydrated"),
        (percent(hydration["unwell_rate_not_hydrated"]), "felt unwell, not hydrated"),
    ]
    # The calendar's table: October in Berlin, 29 days with a session (the 29th too).
    assert page.table("Days with a session, by month") == [["October 2026", "31", "29"]]

    assert len(summarised["metrics"]) == 4
    for index, metric in enumerate(summarised["metrics"]):
        improvement = metric["improvement_pct"]
        assert page.stats[2 + index] == [
            (number(metric["pairs"]), "pairs"),
            (number(metric["mean_before"]), "mean before"),
            (number(metric["mean_after"]), "mean after"),
            (number(metric["mean_improvement"]), "mean improvement"),
            (number(improvement) + (" %" if improvement is not None else ""), "improvement"),
            (percent(metric["responder_rate"]), "responders"),
            (metric["baseline"]["trend"] or "\u2013", f"trend ({metric['better']} is better)"),
        ]
        weekly = [table for table in page.tables if " per week" in table["caption"]]
        rows = weekly[index]["rows"][1:]
        assert [row[1:] for row in rows] == [
            [str(point["sessions"]), number(point["mean_before"]), number(point["mean_after"])]
            for point in metric["series"]
            if point["sessions"]  # a week without a rating has no figures to list
        ]

    carry_over = page.table("Metric")
    assert [row[1:] for row in carry_over] == [
        [
            str(entry["intervals"]),
            number(entry["mean_relief"]),
            number(entry["mean_rebound"]),
            number(entry["retention_pct"]) + (" %" if entry["retention_pct"] is not None else ""),
            number(entry["median_gap_days"]),
        ]
        for entry in found["carry_over"]
    ]
    asymmetry = [row for table in page.tables_headed("Region") for row in table]
    assert [row[1:] for row in asymmetry] == [
        [
            str(entry["sessions"]),
            number(entry["mean_diff_before"]),
            number(entry["mean_diff_after"]),
            number(entry["slope_per_week"]),
            entry["worse_side"] or "\u2013",
        ]
        for entry in found["asymmetry"]
    ]
    what_works = [row for table in page.tables_headed("Level") for row in table]
    assert found["what_works"], "the data should give what-works entries"
    assert [row[1:] for row in what_works] == [
        [
            f"{number(entry['mean_improvement'])} ({entry['n']})",
            f"{number(entry['rest_mean_improvement'])} ({entry['rest_n']})",
            f"{number(entry['difference'])} ({number(entry['ci95_low'])} to "
            f"{number(entry['ci95_high'])})",
            entry["verdict"],
        ]
        for entry in found["what_works"]
    ]
    safety = page.table("Session")
    assert found["safety"]["flagged_sessions"] == 1
    worse = found["safety"]["items"]
    assert len(worse) == 1
    assert safety == [
        [
            "29 October 2026, 19:00",
            f"Pain · Adductors, left: {number(worse[0]['before'])} → {number(worse[0]['after'])} "
            f"({number(worse[0]['worsening'])})",
        ]
    ]
    # Charts: a calendar, one per metric, left/right per metric, what works per rated metric.
    what_works_metrics = {(e["region"], e["side"], e["metric"]) for e in found["what_works"]}
    asymmetry_metrics = {entry["metric"] for entry in found["asymmetry"]}
    assert len(asymmetry_metrics) == 2
    assert len(page.charts) == 1 + 4 + len(asymmetry_metrics) + len(what_works_metrics)
    assert len(page.chart_titles) == len(page.charts)
    assert all(chart["aria-labelledby"] for chart in page.charts)


def test_notes_and_names_are_text_never_markup(client, make_person):
    ana = make_person("Ana <i>Sousa</i>", timezone="Europe/Berlin")
    seed(client, ana)
    html = report(client, ana).text
    page = Page(html)
    # The 20 newest notes of the period, newest first; the one after the period is left out.
    assert page.notes[0] == NOTE
    assert page.notes[1:] == [f"day {day}" for day in (24, 21, 18, 15, 12, 9, 6, 3)]
    assert "later" not in page.notes
    assert "script" not in page.tags
    assert "i" not in page.tags
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;b&gt;bold?&lt;/b&gt;" in html
    assert "Ana &lt;i&gt;Sousa&lt;/i&gt;" in html


def test_only_the_twenty_newest_notes(client, alice):
    for day in range(1, 26):
        log_session(client, alice, f"2026-10-{day:02d}T10:00:00Z", notes=f"note {day}")
    page = Page(report(client, alice).text)
    assert page.notes == [f"note {day}" for day in range(25, 5, -1)]


def test_an_empty_period_says_so_without_charts(client, alice):
    log_session(client, alice, "2026-12-02T10:00:00Z")
    response = report(client, alice)
    page = Page(response.text)
    assert "No sessions in this period" in response.text
    assert page.charts == []
    assert page.tables == []
    assert "Alice" in response.text


def test_headers_of_every_report_answer(client, alice):
    log_session(client, alice, "2026-10-02T10:00:00Z")
    html = report(client, alice)
    assert html.headers["content-type"] == "text/html; charset=utf-8"
    assert html.headers["content-security-policy"] == CSP
    pdf = report(client, alice, "/v1/report.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert "content-security-policy" not in pdf.headers
    for response in (html, pdf):
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-robots-tag"] == "noindex"


def test_the_pdf_has_the_same_content_as_selectable_text(client, make_person):
    ana = make_person("Ana Sousa", timezone="Europe/Berlin")
    seed(client, ana)
    response = report(client, ana, "/v1/report.pdf")
    assert response.content.startswith(b"%PDF-")
    document = pypdf.PdfReader(io.BytesIO(response.content))
    assert len(document.pages) >= 2
    text = " ".join(page.extract_text() for page in document.pages)
    summarised = summary(client, ana, **PERIOD)
    for expected in (
        "Ana Sousa",
        "Adherence",
        "Hydration",
        "How long the relief lasts",
        "Left and right",
        "What seems to help",
        "Sessions that made it worse",
        "Notes",
        str(summarised["metrics"][0]["mean_before"]),
        '<script>window.__xss=1</script><b>bold?</b> & "quotes"',
    ):
        assert expected in text, expected
    assert document.pages[0].mediabox.width == pytest.approx(595.28, abs=1)  # A4
    # The empty period renders too.
    empty = report(
        client,
        ana,
        "/v1/report.pdf",
        **{"from": "2020-01-01T00:00:00Z", "to": "2020-02-01T00:00:00Z"},
    )
    assert (
        "No sessions in this period"
        in pypdf.PdfReader(io.BytesIO(empty.content)).pages[0].extract_text()
    )


def test_coach_access_follows_the_grant(client, alice, bob):
    log_session(client, alice, "2026-10-02T10:00:00Z", notes="alice's note")
    for suffix in ("report.html", "report.pdf"):
        path = f"/v1/clients/{alice.id}/{suffix}"
        # No grant, an unknown person, one's own id: 404, problem+json.
        for who, where in (
            (bob, path),
            (bob, f"/v1/clients/{uuid.uuid4()}/{suffix}"),
            (alice, path),
        ):
            refused = client.get(where, params=PERIOD, headers=who.headers)
            assert refused.status_code == 404
            assert refused.headers["content-type"] == "application/problem+json"
    grant = link(client, bob, alice)
    coach_view = report(client, bob, f"/v1/clients/{alice.id}/report.html")
    assert "alice&#39;s note" in coach_view.text
    assert "Alice" in coach_view.text
    assert report(client, bob, f"/v1/clients/{alice.id}/report.pdf").content.startswith(b"%PDF")
    # The grant is one way.
    reverse = client.get(f"/v1/clients/{bob.id}/report.html", params=PERIOD, headers=alice.headers)
    assert reverse.status_code == 404
    assert client.delete(f"/v1/grants/{grant['id']}", headers=alice.headers).status_code == 204
    for suffix in ("report.html", "report.pdf"):
        path = f"/v1/clients/{alice.id}/{suffix}"
        assert client.get(path, params=PERIOD, headers=bob.headers).status_code == 404


def test_api_key_scopes(client, alice, bob):
    log_session(client, alice, "2026-10-02T10:00:00Z")
    link(client, bob, alice)
    for suffix in ("report.html", "report.pdf"):
        headers, _ = api_key(client, alice, "sessions:read")
        assert client.get(f"/v1/{suffix}", params=PERIOD, headers=headers).status_code == 403
        headers, _ = api_key(client, alice, "summaries:read")
        assert client.get(f"/v1/{suffix}", params=PERIOD, headers=headers).status_code == 200
        path = f"/v1/clients/{alice.id}/{suffix}"
        # The coach's report needs what the coach's summary needs.
        for scopes in (("summaries:read",), ("clients:read",), ("summaries:read", "clients:read")):
            headers, _ = api_key(client, bob, *scopes)
            expected = client.get(f"/v1/clients/{alice.id}/summary", params=PERIOD, headers=headers)
            answered = client.get(path, params=PERIOD, headers=headers)
            assert answered.status_code == expected.status_code
        assert answered.status_code == 200
        assert client.get(f"/v1/{suffix}", params=PERIOD).status_code == 401


def test_errors_of_a_report_carry_the_report_headers(client, alice):
    for response in (
        client.get("/v1/report.html"),
        client.get(f"/v1/clients/{uuid.uuid4()}/report.pdf", headers=alice.headers),
        client.get("/v1/report.html", params={"tz": "Nowhere/Else"}, headers=alice.headers),
    ):
        assert response.status_code in (401, 404, 422)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-robots-tag"] == "noindex"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-11-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"},
        {"from": "2010-01-01T00:00:00Z", "to": "2026-10-01T00:00:00Z"},
        {"tz": "Mars/Olympus"},
        {"from": "yesterday"},
        {"to": "2026-10-01T00:00:00"},
    ],
)
def test_a_bad_period_is_a_problem_not_a_page(client, alice, params):
    for path in ("/v1/report.html", "/v1/report.pdf"):
        response = client.get(path, params={**PERIOD, **params}, headers=alice.headers)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"


def test_the_default_period_is_the_summary_default(client, alice):
    now = datetime.now(UTC)
    for days_ago in (120, 10):
        log_session(client, alice, (now - timedelta(days=days_ago)).isoformat())
    page = Page(client.get("/v1/report.html", headers=alice.headers).text)
    adherence = summary(client, alice)["adherence"]
    assert adherence["sessions"] == 1  # the last 90 days
    assert page.stats[0][0] == ("1", "sessions")


def test_openapi_documents_the_reports(client):
    schema = client.get("/openapi.json").json()
    for path, media_type in (
        ("/v1/report.html", "text/html"),
        ("/v1/report.pdf", "application/pdf"),
        ("/v1/clients/{client_id}/report.html", "text/html"),
        ("/v1/clients/{client_id}/report.pdf", "application/pdf"),
    ):
        operation = schema["paths"][path]["get"]
        assert list(operation["responses"]["200"]["content"]) == [media_type]
        assert {"401", "403", "404", "422"} <= set(operation["responses"])
        assert {parameter["name"] for parameter in operation["parameters"]} >= {"from", "to", "tz"}
        assert "region" not in {parameter["name"] for parameter in operation["parameters"]}


def test_the_pdf_renderer_fetches_nothing():
    """Should markup with a URL ever reach the renderer, the server fetches nothing."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from api.reports.render import render_pdf

    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        pdf = render_pdf(
            f'<link rel="stylesheet" href="{base}/a.css"><p>text</p><img src="{base}/b.png">'
            f'<svg><image href="{base}/c.png" width="5" height="5"/></svg>'
        )
    finally:
        server.shutdown()
    assert pdf.startswith(b"%PDF-")
    assert asked == []


def test_at_most_two_pdfs_render_at_once(client, alice, monkeypatch):
    """A burst of PDFs waits on the event loop: two render at a time, the rest follow."""
    import threading
    import time

    from api.reports import render

    log_session(client, alice, "2026-10-02T10:00:00Z")
    running, most = 0, 0
    lock = threading.Lock()

    def slow_render(_html: str) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.2)
        with lock:
            running -= 1
        return b"%PDF-1.7 stand-in"

    monkeypatch.setattr(render, "render_pdf", slow_render)
    answers: list[int] = []

    def fetch() -> None:
        response = client.get("/v1/report.pdf", params=PERIOD, headers=alice.headers)
        answers.append(response.status_code)

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 6
    assert most == 2
