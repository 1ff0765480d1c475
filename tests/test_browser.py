"""The report page in a real browser: Debian's Chromium, driven by Playwright, against the app
as a real server process on this run's database (SQLite, or PostgreSQL when TEST_DATABASE_URL
says so).

For the own report, the coach's client report and a share link's page, at 360 and 1280 px:
no console or page error, no request but the page itself, no horizontal scrolling, every chart
drawn with a title, the notes shown as text (never as markup), and the page printed to an A4
PDF by the browser with no chart split across pages. Screenshots and PDFs go to
tests/artifacts/browser/<database>/ (ignored by git) for a person to look at.

Without Chromium the tests are skipped, except under CI=true, where they fail (.ci/run
installs it). Never `playwright install`: the browser is the system's, and there is no network.
"""

import io
import os
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from pypdf import PdfReader

from tests.serverproc import ROOT, ServerProcess, fresh_database, is_postgres

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "tests" / "artifacts" / "browser" / ("postgresql" if is_postgres() else "sqlite")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = (360, 1280)
CASES = ("own", "coach", "share")
DISPLAY_NAME = "Maya Okafor"
XSS_NOTE = '<script>window.__xss=1</script><b>bold?</b> & "quotes"'
WEEKS = 10
# A4 in CSS pixels (96 per inch) minus the template's `@page { margin: 14mm 13mm }`: the box
# each printed page has for content.
MM = 96 / 25.4
PRINT_WIDTH = round((210 - 2 * 13) * MM)
PRINT_HEIGHT = (297 - 2 * 14) * MM


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        reason = "chromium is not on PATH (Debian: apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the browser tests must run")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = _chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    directory = tmp_path_factory.mktemp("browser")
    database_url, drop = fresh_database(directory)
    process = ServerProcess(database_url, directory / "server.log")
    # Share links are `{PUBLIC_BASE_URL}/r/<token>`: this server.
    process.env["PUBLIC_BASE_URL"] = process.base_url
    process.start()
    yield process
    process.stop()
    drop()


class Account:
    def __init__(self, http: httpx.Client, name: str) -> None:
        email = f"{name.split()[0].lower()}-{uuid.uuid4().hex[:8]}@example.com"
        password = "correct horse battery staple"
        body = {"email": email, "password": password, "display_name": name}
        registered = http.post("/v1/auth/register", json=body)
        assert registered.status_code == 201, registered.text
        self.id = registered.json()["id"]
        token = http.post("/v1/auth/token", data={"username": email, "password": password})
        assert token.status_code == 200, token.text
        self.headers = {"Authorization": f"Bearer {token.json()['access_token']}"}


def _sessions(now: datetime) -> list[dict[str, Any]]:
    """About ten weeks of sessions, five days a week: pain, stiffness and range of motion on
    both adductors (the left one worse), three tools, two water levels and three lengths that
    make a difference, notes on some (one of them HTML), and one session that made it worse."""
    rng = random.Random(20)
    tools = ("foam_roller", "ball", "percussion")
    tool_effect = {"foam_roller": 1.5, "ball": 0.5, "percussion": 0.0}
    minutes = (8, 15, 25)
    sessions = []
    index = 0
    for days_ago in range(WEEKS * 7, 0, -1):
        if days_ago % 7 in (2, 5):
            continue
        started = (now - timedelta(days=days_ago)).replace(hour=7, minute=30, second=0)
        started += timedelta(minutes=rng.randint(0, 600))
        week = (WEEKS * 7 - days_ago) / 7
        tool = tools[index % 3]
        length = minutes[(index // 3) % 3]
        hydrated = index % 2 == 0
        bonus = tool_effect[tool] + (0.8 if hydrated else 0.0) + (0.6 if length >= 15 else 0.0)
        ratings = []
        for side, offset in (("left", 1.2), ("right", 0.0)):
            for metric, start, spread in (("pain", 6.0, 1.5), ("stiffness", 5.5, 1.2)):
                before = min(10.0, max(0.0, start + offset - 0.25 * week + rng.gauss(0, 0.6)))
                after = max(0.0, before - bonus - rng.gauss(1.0, spread / 2))
                ratings.append(
                    {"region": "adductors", "side": side, "metric": metric,
                     "before": round(before, 1), "after": round(after, 1)}
                )  # fmt: skip
            rom_before = 38 - 4 * offset + 1.2 * week + rng.gauss(0, 2)
            rom_after = rom_before + 3 * bonus + rng.gauss(2, 2)
            ratings.append(
                {"region": "adductors", "side": side, "metric": "rom",
                 "before": round(rom_before, 1), "after": round(rom_after, 1)}
            )  # fmt: skip
        notes = None
        if index % 4 == 1:
            notes = rng.choice(
                [
                    "Left side tender near the knee, eased after two minutes.",
                    "Short session before work.\nRight felt fine, left tight at first.",
                    "Tried slower passes; less bruising than last week.",
                ]
            )
        sessions.append(
            {
                "id": str(uuid.uuid4()),
                "started_at": started.isoformat(),
                "ended_at": (started + timedelta(minutes=length)).isoformat(),
                "tool": tool,
                "water_before_ml": 400 if hydrated else 150,
                "water_after_ml": 350 if hydrated else 100,
                "felt_unwell_after": not hydrated and index % 5 == 0,
                "notes": notes,
                "ratings": ratings,
            }
        )
        index += 1
    # Among the newest: the note that must show as text, a long unbroken one, and a session
    # that made the left pain worse (a safety item).
    sessions[-2]["notes"] = XSS_NOTE
    sessions[-6]["notes"] = "Checked the tracker at https://example.com/" + "x" * 90 + " again."
    worse = sessions[-9]
    worse["ratings"][0] = {**worse["ratings"][0], "before": 3, "after": 6}
    worse["notes"] = "Overdid it: sore afterwards."
    return sessions


@dataclass
class Seeded:
    person: Account
    coach: Account
    summary: dict[str, Any]
    insights: dict[str, Any]
    share_url: str

    def expected_charts(self) -> int:
        """A calendar, one chart per metric, left/right and what works per metric."""
        what_works = {(e["region"], e["side"], e["metric"]) for e in self.insights["what_works"]}
        asymmetry = {entry["metric"] for entry in self.insights["asymmetry"]}
        return 1 + len(self.summary["metrics"]) + len(asymmetry) + len(what_works)


@pytest.fixture(scope="module")
def seeded(server: ServerProcess) -> Seeded:
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        person = Account(http, DISPLAY_NAME)
        created = http.post(
            "/v1/sessions/batch",
            json={"sessions": _sessions(datetime.now(UTC))},
            headers=person.headers,
        )
        assert created.status_code == 200, created.text
        assert {item["status"] for item in created.json()["results"]} == {"created"}
        coach = Account(http, "Sam Coach")
        invite = http.post("/v1/invites", headers=coach.headers)
        assert invite.status_code == 201, invite.text
        grant = http.post(
            "/v1/grants", json={"code": invite.json()["code"]}, headers=person.headers
        )
        assert grant.status_code == 201, grant.text
        summary = http.get("/v1/summary", headers=person.headers).json()
        insights = http.get("/v1/insights", headers=person.headers).json()
        link = http.post("/v1/report-links", json={}, headers=person.headers)
    # The seed has what the page draws: several metrics on both sides, left/right, what works.
    assert len(summary["metrics"]) == 6, summary["metrics"]
    assert len(insights["asymmetry"]) == 3, insights["asymmetry"]
    assert len({entry["metric"] for entry in insights["what_works"]}) == 3
    assert insights["safety"]["items"], insights["safety"]
    assert link.status_code == 201, link.text
    share_url = link.json()["url"]
    assert share_url.startswith(f"{server.base_url}/r/"), share_url
    return Seeded(person, coach, summary, insights, share_url)


def _target(server: ServerProcess, seeded: Seeded, case: str) -> tuple[str, dict[str, str]]:
    """The page's URL and the headers the browser sends with it."""
    if case == "own":
        return f"{server.base_url}/v1/report.html", seeded.person.headers
    if case == "coach":
        return f"{server.base_url}/v1/clients/{seeded.person.id}/report.html", seeded.coach.headers
    # No credential at all: the token in the path is the only one.
    return f"{server.base_url}{urlsplit(seeded.share_url).path}", {}


@dataclass
class Visit:
    page: Any
    requests: list[str]
    errors: list[str]
    response: Any


@pytest.fixture
def visit(browser: Any, server: ServerProcess, seeded: Seeded) -> Iterator[Any]:
    contexts = []

    def open_page(case: str, width: int, height: int = 900) -> Visit:
        url, headers = _target(server, seeded, case)
        context = browser.new_context(
            viewport={"width": width, "height": height}, extra_http_headers=headers
        )
        contexts.append(context)
        page = context.new_page()
        requests: list[str] = []
        errors: list[str] = []
        page.on("request", lambda request: requests.append(f"{request.method} {request.url}"))
        page.on(
            "console",
            lambda message: (
                errors.append(f"console: {message.text}") if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        response = page.goto(url, wait_until="load")
        assert response is not None
        assert response.status == 200, response.text()[:500]
        assert requests == [f"GET {url}"], requests
        return Visit(page, requests, errors, response)

    yield open_page
    for context in contexts:
        context.close()


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / name


CHARTS = """() => Array.from(document.querySelectorAll('svg[role="img"]'), (svg) => {
  const box = svg.getBoundingClientRect();
  const title = svg.querySelector(':scope > title');
  const style = getComputedStyle(svg);
  return {title: title ? title.textContent.trim() : null, width: box.width,
          height: box.height, top: box.top + window.scrollY,
          visible: style.visibility !== 'hidden' && style.display !== 'none'};
})"""
# Anything in the document that could make the browser fetch something, even if blocked.
FETCHING = """() => [
  ...Array.from(document.querySelectorAll(
    '[src], [srcset], link[href], object[data], embed, iframe, base, meta[http-equiv]'),
    (node) => node.outerHTML.slice(0, 120)),
  ...Array.from(document.querySelectorAll('svg [href], svg [*|href]'),
    (node) => node.outerHTML.slice(0, 120)),
  ...Array.from(document.querySelectorAll('style, [style]'),
    (node) => (node.tagName === 'STYLE' ? node.textContent : node.getAttribute('style')))
    .filter((css) => /url\\(|@import/i.test(css)).map((css) => css.slice(0, 120)),
]"""
NOTES = """() => {
  const list = document.querySelector('ul.notes');
  return list && {text: list.textContent, scripts: document.querySelectorAll('script').length,
                  bold: list.querySelectorAll('b').length,
                  items: list.querySelectorAll('li').length,
                  xss: typeof window.__xss};
}"""


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", CASES)
def test_the_report_page_in_chromium(visit: Any, seeded: Seeded, case: str, width: int) -> None:
    seen = visit(case, width)
    page = seen.page
    headers = seen.response.headers
    assert headers["content-type"].startswith("text/html")
    assert headers["content-security-policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert page.evaluate(FETCHING) == []

    # Who, and the sections in the contract's order.
    assert page.locator("h1").inner_text() == DISPLAY_NAME
    headings = page.locator("h2").all_inner_texts()
    assert headings[:3] == ["Adherence", "Hydration", "Before and after, week by week"], headings
    assert headings[-1] == "Notes", headings

    # Fits the width: nothing scrolls sideways (the page, or any element, at 360 px).
    size = page.evaluate(
        "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert size[0] <= size[1], f"the page is {size[0]} px wide in a {size[1]} px viewport"
    too_wide = page.evaluate(
        """(limit) => Array.from(document.querySelectorAll('body *'))
             .filter((node) => !node.closest('.figures, svg'))
             .filter((node) => node.getBoundingClientRect().right > limit + 0.5)
             .map((node) => node.tagName + '.' + node.className)""",
        size[1],
    )
    assert too_wide == [], too_wide

    # Every chart: titled, visible, not squashed to nothing; at least the expected ones.
    charts = page.evaluate(CHARTS)
    assert len(charts) >= seeded.expected_charts(), charts
    for chart in charts:
        assert chart["title"], chart
        assert chart["visible"], chart
        assert chart["width"] > 100, chart
        assert chart["height"] > 40, chart
        assert chart["width"] <= width, chart
    titles = [chart["title"] for chart in charts]
    assert titles[0].startswith("Calendar"), titles
    assert any(": left minus right" in title for title in titles), titles
    for chart in page.locator('svg[role="img"]').all():
        assert chart.is_visible()

    # The notes: HTML shows as text, runs nowhere, leaves no element behind.
    notes = page.evaluate(NOTES)
    assert notes is not None, "no list of notes"
    assert XSS_NOTE in notes["text"], notes["text"]
    assert notes["scripts"] == 0
    assert notes["bold"] == 0
    assert notes["xss"] == "undefined"
    assert page.get_by_text(XSS_NOTE, exact=True).is_visible()

    page.screenshot(path=_artifact(f"{case}-{width}.png"), full_page=True)
    assert seen.errors == []
    assert seen.requests == [seen.requests[0]], seen.requests


def _pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages]


MARK_CHARTS = """() => Array.from(document.querySelectorAll('svg[role="img"]'), (svg, index) => {
  // A tiny mark at the top and at the bottom of the chart's drawing, inside its view box:
  // the layout does not change, and the printed text tells on which page each end landed.
  const box = svg.viewBox.baseVal;
  for (const [end, y] of [['top', box.y + 2], ['bottom', box.y + box.height - 0.5]]) {
    const mark = document.createElementNS('http://www.w3.org/2000/svg', 'text');
    mark.setAttribute('x', box.x + 1);
    mark.setAttribute('y', y);
    mark.setAttribute('font-size', '2');
    mark.setAttribute('fill', '#fff');
    mark.textContent = `zzchart${index}${end}zz`;
    svg.appendChild(mark);
  }
  return index;
}).length"""


@pytest.mark.parametrize("case", CASES)
def test_the_report_prints_on_a4_from_chromium(visit: Any, seeded: Seeded, case: str) -> None:
    seen = visit(case, 1280)
    page = seen.page
    page.emulate_media(media="print")
    clean = page.pdf(format="A4", print_background=True)
    _artifact(f"{case}.pdf").write_bytes(clean)
    printed = len(PdfReader(io.BytesIO(clean)).pages)
    assert printed >= 2, "the report prints on at least two A4 pages"

    # No chart taller than a printed page: laid out at the printed page's width, in print media.
    page.set_viewport_size({"width": PRINT_WIDTH, "height": 900})
    charts = page.evaluate(CHARTS)
    assert len(charts) >= seeded.expected_charts()
    for chart in charts:
        assert 0 < chart["height"] <= PRINT_HEIGHT, chart

    # The same print with an invisible mark at both ends of each chart (reading a PDF's text is
    # the slow part, so only this one is read).
    count = page.evaluate(MARK_CHARTS)
    pages = _pdf_pages(page.pdf(format="A4", print_background=True))
    assert len(pages) == printed, "the marks changed the layout"
    assert DISPLAY_NAME in pages[0]
    text = "\n".join(pages)
    for heading in ("Adherence", "Before and after, week by week", "Left and right", "Notes"):
        assert heading in text, heading
    # The note prints as the person typed it (pypdf may join or split lines differently).
    squeezed = [re.sub(r"\s+", "", page_text) for page_text in pages]
    assert "<script>window.__xss=1</script>" in "".join(squeezed)

    # No chart split across pages: both ends of every chart print on the same page.
    for index in range(count):
        ends = [
            [number for number, text in enumerate(squeezed) if f"zzchart{index}{end}zz" in text]
            for end in ("top", "bottom")
        ]
        assert len(ends[0]) == 1, (charts[index]["title"], ends)
        assert ends[0] == ends[1], (charts[index]["title"], "split across pages", ends)
    assert seen.errors == []
    assert seen.requests == [seen.requests[0]], seen.requests
