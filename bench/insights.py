"""The insights' cost, as ratios within one run (issue 19, item 6).

    .venv/bin/python bench/insights.py [--db sqlite|postgres|both] [--rounds 200]

Starts the service as bench/run.py does (one uvicorn worker pinned to CPU 0, a fresh
database), loads a client with 1 year and one with 10 years of daily sessions (left and right
ratings, tools, water, durations: every insight has work to do), and times sequential requests
over one keep-alive connection, interleaved round by round so that a noisy neighbour hits every
scenario alike: GET /v1/insights and GET /v1/summary over the same 90-day window. Service
time = the median wall time of a request (one at a time on localhost, so no queueing). The
ratios are the figures: insights 10-year / 1-year (issue: at most 1.25) and insights / summary
for the 10-year client (at most 3). Never run by CI; never asserts speed.
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import SERVED_APP, analyze, fresh_database, load, migrated_env, register, server

TOOLS = ["foam_roller", "ball", "peanut_ball", "hands"]


def history(days: int, now: datetime) -> list[dict]:
    """One session a day: pain and rom on both sides, stiffness; tools, water, durations."""
    sessions = []
    for day in range(days):
        started = now - timedelta(days=days - day, hours=day % 5)
        drift = day / max(days, 1)
        side = [
            {
                "region": "adductors",
                "side": side,
                "metric": "pain",
                "before": round(7 - 2 * drift + offset, 1),
                "after": round(4 - drift + offset + (day % 7 == 0) * 4, 1),
            }
            for side, offset in (("left", 0.5), ("right", 0.0))
        ]
        sessions.append(
            {
                "started_at": started.isoformat(),
                "ended_at": (started + timedelta(minutes=5 + day % 25)).isoformat(),
                "tool": TOOLS[day % len(TOOLS)],
                "water_before_ml": 250 + (day % 3) * 50,
                "water_after_ml": 250 + (day % 4) * 50,
                "ratings": [
                    *side,
                    {
                        "region": "adductors",
                        "side": "left",
                        "metric": "rom",
                        "before": round(30 + 10 * drift, 1),
                        "after": round(36 + 10 * drift, 1),
                    },
                    {
                        "region": "adductors",
                        "side": "right",
                        "metric": "rom",
                        "before": round(32 + 10 * drift, 1),
                        "after": None if day % 9 == 0 else round(37 + 10 * drift, 1),
                    },
                    {"region": "calves", "metric": "stiffness", "before": 5, "after": 4},
                ],
            }
        )
    return sessions


def measure(kind: str, url: str, rounds: int) -> dict[str, float]:
    env = migrated_env(url)
    with server(SERVED_APP, env) as (base, _pid):
        now = datetime.now(UTC)
        with httpx.Client(base_url=base, timeout=120) as http:
            one_year = register(http, "one-year")
            load(http, one_year, history(365, now))
            ten_years = register(http, "ten-years")
            load(http, ten_years, history(3650, now))
        analyze(url)
        to = now.replace(microsecond=0)
        window = {"from": (to - timedelta(days=90)).isoformat(), "to": to.isoformat()}
        scenarios = {
            "insights, 1-year client": ("/v1/insights", one_year),
            "insights, 10-year client": ("/v1/insights", ten_years),
            "summary, 1-year client": ("/v1/summary", one_year),
            "summary, 10-year client": ("/v1/summary", ten_years),
        }
        times: dict[str, list[float]] = {name: [] for name in scenarios}
        with httpx.Client(base_url=base, timeout=60) as http:
            for round_number in range(rounds + 20):
                for name, (path, token) in scenarios.items():
                    headers = {"Authorization": f"Bearer {token}"}
                    started = time.perf_counter()
                    response = http.get(path, params=window, headers=headers)
                    elapsed = time.perf_counter() - started
                    response.raise_for_status()
                    if round_number >= 20:  # the first rounds warm caches and statements
                        times[name].append(elapsed)
            http_body = http.get(
                "/v1/insights", params=window, headers={"Authorization": f"Bearer {ten_years}"}
            ).json()
        body = {
            "carry_over": len(http_body["carry_over"]),
            "asymmetry": len(http_body["asymmetry"]),
            "what_works": len(http_body["what_works"]),
            "flagged": http_body["safety"]["flagged_sessions"],
        }
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(f"### {kind}: {rounds} rounds, 10-year body {body}")  # noqa: T201
    for name, value in medians.items():
        print(f"- {name}: median {value:.2f} ms")  # noqa: T201
    ten_over_one = medians["insights, 10-year client"] / medians["insights, 1-year client"]
    over_summary = medians["insights, 10-year client"] / medians["summary, 10-year client"]
    print(f"- insights 10-year / 1-year: {ten_over_one:.2f}x (at most 1.25)")  # noqa: T201
    print(f"- insights / summary, 10-year client: {over_summary:.2f}x (at most 3)")  # noqa: T201
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        with fresh_database(kind) as url:
            measure(kind, url, args.rounds)


if __name__ == "__main__":
    main()
