"""The report's cost, as ratios within one run (issue 20, item 6).

    .venv/bin/python bench/report.py [--db sqlite|postgres|both] [--rounds 100] [--pdf-rounds 10]

Starts the service as bench/run.py does (one uvicorn worker pinned to CPU 0, a fresh
database), loads a client with one year of daily sessions (bench/insights.py's history, every
tenth with a note), and times sequential requests over one keep-alive connection, interleaved
round by round: GET /v1/summary and GET /v1/report.html with the default period (the last 90
days) and over the whole year. Service time = the median wall time of a request. The figures:
report.html / summary for each period (issue: at most 4), and the PDF's median wall time for
each period (issue: under 2 s on these machines), with the bare /healthz as a same-run
reference. Never run by CI; never asserts speed.
"""

import argparse
import io
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pypdf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.insights import history
from bench.run import SERVED_APP, analyze, fresh_database, load, migrated_env, register, server


def noted_history(days: int, now: datetime) -> list[dict]:
    sessions = history(days, now)
    for day, session in enumerate(sessions):
        if day % 10 == 0:
            session["notes"] = f"Day {day}: tight on the left, better after the ball."
    return sessions


def timed(http: httpx.Client, path: str, params: dict, headers: dict) -> float:
    started = time.perf_counter()
    response = http.get(path, params=params, headers=headers)
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return elapsed


def measure(kind: str, url: str, rounds: int, pdf_rounds: int) -> None:
    env = migrated_env(url)
    with server(SERVED_APP, env) as (base, _pid):
        now = datetime.now(UTC)
        with httpx.Client(base_url=base, timeout=120) as http:
            token = register(http, "one-year")
            load(http, token, noted_history(365, now))
        analyze(url)
        to = now.replace(microsecond=0)
        year = {"from": (to - timedelta(days=366)).isoformat(), "to": to.isoformat()}
        headers = {"Authorization": f"Bearer {token}"}
        periods = {"90 days (default)": {}, "1 year": year}
        scenarios = {"healthz (reference)": ("/healthz", {})}
        for label, params in periods.items():
            scenarios[f"summary, {label}"] = ("/v1/summary", params)
            scenarios[f"report.html, {label}"] = ("/v1/report.html", params)
        times: dict[str, list[float]] = {name: [] for name in scenarios}
        pdf_times: dict[str, list[float]] = {label: [] for label in periods}
        pages: dict[str, int] = {}
        with httpx.Client(base_url=base, timeout=120) as http:
            for round_number in range(rounds + 10):
                for name, (path, params) in scenarios.items():
                    elapsed = timed(http, path, params, headers)
                    if round_number >= 10:  # the first rounds warm caches and statements
                        times[name].append(elapsed)
            timed(http, "/v1/report.pdf", {}, headers)  # warm: fonts, WeasyPrint's caches
            for _ in range(pdf_rounds):
                for label, params in periods.items():
                    pdf_times[label].append(timed(http, "/v1/report.pdf", params, headers))
            for label, params in periods.items():
                pdf = http.get("/v1/report.pdf", params=params, headers=headers).content
                pages[label] = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"### {kind}: {rounds} rounds, {pdf_rounds} PDFs per period")  # noqa: T201
    for name, value in medians.items():
        print(f"- {name}: median {value:.2f} ms")  # noqa: T201
    for label in pdf_times:
        ratio = medians[f"report.html, {label}"] / medians[f"summary, {label}"]
        pdf = statistics.median(pdf_times[label])
        print(f"- {label}: report.html / summary {ratio:.2f}x (at most 4)")  # noqa: T201
        print(  # noqa: T201
            f"- {label}: report.pdf median {pdf:.2f} s (under 2 s), {pages[label]} pages, "
            f"{pdf * 1000 / medians['healthz (reference)']:.0f}x healthz"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--pdf-rounds", type=int, default=10)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        with fresh_database(kind) as url:
            measure(kind, url, args.rounds, args.pdf_rounds)


if __name__ == "__main__":
    main()
