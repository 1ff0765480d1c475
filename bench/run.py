"""releaselog benchmarks: one command, one run, every figure as a ratio to a reference.

    .venv/bin/python bench/run.py [--db sqlite|postgres|both] [--duration 10]

Starts the service (one uvicorn worker pinned to CPU 0) on a fresh database, preloads
realistic data (a client with 1 year and one with 10 years of history, a coach with 200
clients), and drives it with wrk (one thread, 32 connections, pinned to CPU 1). The reference
is a bare Starlette hello endpoint served by the same uvicorn in the same run: absolute
numbers on shared machines are noise, ratios are not. Results go to stdout and, with
--write, to bench/RESULTS.md. Benchmarks are never run by CI and never assert speed.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
POSTGRES_URL = os.environ.get(
    "BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SERVER_CPU, LOAD_CPU = "0", "1"
# The app as `releaselog serve` runs it (its garbage collector tuned).
SERVED_APP = "api.cli:served_app"


@dataclass
class Figure:
    name: str
    rate: float  # requests (or sessions) per second
    p99_ms: float | None
    errors: int
    unit: str = "req/s"
    requests: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: str, command: list[str]) -> list[str]:
    return (["taskset", "-c", cpu] if shutil.which("taskset") else []) + command


@contextmanager
def server(app: str, env: dict[str, str]):
    port = free_port()
    command = pinned(
        SERVER_CPU,
        [
            PYTHON,
            "-m",
            "uvicorn",
            app,
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            *(["--factory"] if app == SERVED_APP else []),
        ],
    )
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if (
                    httpx.get(base + ("/hello" if "hello" in app else "/healthz")).status_code
                    == 200
                ):
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        else:
            raise RuntimeError(f"{app} did not start")
        yield base, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def wrk(url: str, script: str | None, duration: int, env: dict[str, str]) -> Figure:
    command = ["wrk", "-t1", "-c32", f"-d{duration}s", "--latency"]
    if script:
        command += ["-s", str(BENCH / script)]
    output = subprocess.run(
        pinned(LOAD_CPU, [*command, url]),
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", output)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    p99_ms = float(p99.group(1)) * scale[p99.group(2)] if p99 else None
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    done = re.search(r"(\d+) requests in", output)
    return Figure("", rate, p99_ms, errors, requests=int(done.group(1)) if done else 0)


def rss_kb(pid: int) -> int:
    """Resident memory of the server (its uvicorn process)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- data ---------------------------------------------------------------------------------


def register(http: httpx.Client, name: str, timezone: str = "Europe/Berlin") -> str:
    email = f"{name}-{uuid.uuid4().hex[:8]}@bench.example"
    password = "benchmark password"
    http.post(
        "/v1/auth/register",
        json={"email": email, "password": password, "display_name": name, "timezone": timezone},
    )
    token = http.post("/v1/auth/token", data={"username": email, "password": password})
    return token.json()["access_token"]


def history(days: int, now: datetime) -> list[dict]:
    """One session a day, three ratings with a slow improving drift."""
    sessions = []
    for day in range(days):
        started = now - timedelta(days=days - day, hours=day % 5)
        drift = day / max(days, 1)
        sessions.append(
            {
                "started_at": started.isoformat(),
                "water_before_ml": 300 + (day % 3) * 100,
                "water_after_ml": 250 + (day % 4) * 100,
                "felt_unwell_after": day % 11 == 0,
                "ratings": [
                    {
                        "region": "adductors",
                        "side": "left",
                        "metric": "pain",
                        "before": round(7 - 2 * drift, 1),
                        "after": round(4 - drift, 1),
                    },
                    {
                        "region": "adductors",
                        "side": "left",
                        "metric": "rom",
                        "before": round(30 + 10 * drift, 1),
                        "after": round(36 + 10 * drift, 1),
                    },
                    {"region": "calves", "metric": "stiffness", "before": 5, "after": 4},
                ],
            }
        )
    return sessions


def load(http: httpx.Client, token: str, sessions: list[dict]) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    for start in range(0, len(sessions), 500):
        response = http.post(
            "/v1/sessions/batch",
            json={"sessions": sessions[start : start + 500]},
            headers=headers,
            timeout=120,
        )
        response.raise_for_status()


def preload(base: str) -> dict[str, str]:
    now = datetime.now(UTC)
    with httpx.Client(base_url=base, timeout=60) as http:
        one_year = register(http, "one-year")
        load(http, one_year, history(365, now))
        ten_years = register(http, "ten-years")
        load(http, ten_years, history(3650, now))
        coach = register(http, "coach")
        coach_headers = {"Authorization": f"Bearer {coach}"}
        for index in range(200):
            client = register(http, f"client{index}")
            load(http, client, history(40, now))
            code = http.post("/v1/invites", headers=coach_headers).json()["code"]
            granted = http.post(
                "/v1/grants", json={"code": code}, headers={"Authorization": f"Bearer {client}"}
            )
            granted.raise_for_status()
        writers = ",".join(register(http, f"writer{index}") for index in range(16))
    return {"one_year": one_year, "ten_years": ten_years, "coach": coach, "writers": writers}


# --- scenarios ----------------------------------------------------------------------------


def migrated_env(database_url: str) -> dict[str, str]:
    """The served app's environment for a benchmark (limits out of the way), with the
    database migrated."""
    env = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "bench-secret-" + "x" * 32,
        "LOG_LEVEL": "WARNING",
        "LOGIN_LIMIT_PER_ADDRESS": "100000/minute",
        "LOGIN_LIMIT_PER_ACCOUNT": "100000/minute",
        "REGISTER_LIMIT_PER_ADDRESS": "100000/minute",
    }
    subprocess.run(
        [PYTHON, "-m", "api.cli", "migrate"],
        cwd=ROOT,
        check=True,
        env={**os.environ, **env},
        capture_output=True,
    )
    return env


def run_suite(database_url: str, duration: int) -> tuple[list[Figure], dict[str, int]]:
    env = migrated_env(database_url)
    figures: list[Figure] = []
    memory: dict[str, int] = {}

    with server("bench.hello_app:app", env) as (base, _pid):
        reference = wrk(base + "/hello", None, duration, {})
        reference.name = "reference: bare Starlette hello"
        figures.append(reference)

    with server(SERVED_APP, env) as (base, pid):
        tokens = preload(base)
        analyze(database_url)
        to = datetime.now(UTC).replace(microsecond=0)
        window = f"from={(to - timedelta(days=90)).isoformat()}&to={to.isoformat()}"
        window = window.replace("+00:00", "Z")
        scenarios = [
            ("hello (FastAPI /healthz)", None, "/healthz", {}),
            (
                "POST /v1/sessions (3 ratings)",
                "post_session.lua",
                "/",
                {"BENCH_TOKEN": tokens["writers"]},
            ),
            (
                "POST /v1/sessions/batch (100/request)",
                "post_batch.lua",
                "/",
                {"BENCH_TOKEN": tokens["writers"].split(",")[0], "BENCH_BATCH": "100"},
            ),
            (
                "GET /v1/summary 90 days, 1-year client",
                "get.lua",
                "/",
                {"BENCH_TOKEN": tokens["one_year"], "BENCH_PATH": f"/v1/summary?{window}"},
            ),
            (
                "GET /v1/summary 90 days, 10-year client",
                "get.lua",
                "/",
                {"BENCH_TOKEN": tokens["ten_years"], "BENCH_PATH": f"/v1/summary?{window}"},
            ),
            (
                "GET /v1/clients (200 clients)",
                "get.lua",
                "/",
                {"BENCH_TOKEN": tokens["coach"], "BENCH_PATH": "/v1/clients"},
            ),
            (
                "GET /v1/sessions/changes (100/page)",
                "get.lua",
                "/",
                {"BENCH_TOKEN": tokens["one_year"], "BENCH_PATH": "/v1/sessions/changes?limit=100"},
            ),
        ]
        memory["rss_start_kb"] = rss_kb(pid)
        for name, script, path, wrk_env in scenarios:
            figure = wrk(base + path, script, duration, wrk_env)
            figure.name = name
            if "batch" in name:
                figure.rate *= int(wrk_env["BENCH_BATCH"])
                figure.unit = "sessions/s"
            figures.append(figure)
        memory["rss_after_load_kb"] = rss_kb(pid)
        memory.update(memory_over_requests(base, pid, tokens["one_year"]))
        memory["rss_before_export_kb"] = rss_kb(pid)
        memory["rss_peak_export_kb"] = export_peak_rss(base, pid, tokens["ten_years"])
    return figures, memory


def memory_over_requests(base: str, pid: int, token: str, total: int = 100_000) -> dict[str, int]:
    """Serve `total` authenticated list requests; RSS after a warm-up and at the end."""
    env = {"BENCH_TOKEN": token, "BENCH_PATH": "/v1/sessions?limit=20"}
    served = wrk(base + "/", "get.lua", 5, env).requests
    warm = rss_kb(pid)
    while served < total:
        served += wrk(base + "/", "get.lua", 5, env).requests
    return {"rss_warm_kb": warm, "rss_end_kb": rss_kb(pid), "requests": served}


def analyze(database_url: str) -> None:
    """Give the query planner statistics for the preloaded data, as autovacuum would."""
    if database_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(database_url.replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute("ANALYZE")


def export_peak_rss(base: str, pid: int, token: str) -> int:
    """Stream the 10-year client's CSV export slowly, sampling the server's memory."""
    peak = rss_kb(pid)
    with httpx.stream(
        "GET", base + "/v1/export.csv", timeout=120, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        for _chunk in response.iter_bytes(65536):
            peak = max(peak, rss_kb(pid))
    return peak


@contextmanager
def fresh_database(kind: str):
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/bench.db"
        return
    import psycopg

    name = f"releaselog_bench_{uuid.uuid4().hex[:8]}"
    admin_url = POSTGRES_URL.replace("+psycopg", "")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def report(kind: str, figures: list[Figure], memory: dict[str, int]) -> str:
    reference = figures[0].rate
    lines = [
        f"### {kind}",
        "",
        "| scenario | rate | ratio to reference | p99 | errors |",
        "|---|---:|---:|---:|---:|",
    ]
    for figure in figures:
        p99 = f"{figure.p99_ms:.1f} ms" if figure.p99_ms is not None else "-"
        lines.append(
            f"| {figure.name} | {figure.rate:,.0f} {figure.unit} | "
            f"{figure.rate / reference:.3f} | {p99} | {figure.errors} |"
        )
    by_name = {figure.name: figure for figure in figures}
    one = by_name["GET /v1/summary 90 days, 1-year client"].rate
    ten = by_name["GET /v1/summary 90 days, 10-year client"].rate
    lines += [
        "",
        f"- summary cost, 10-year / 1-year client: {one / ten:.2f}x",
        f"- server RSS: {memory['rss_start_kb'] / 1024:.0f} MiB before the load, "
        f"{memory['rss_after_load_kb'] / 1024:.0f} MiB after it",
        f"- over {memory['requests']:,} list requests: {memory['rss_warm_kb'] / 1024:.0f} MiB "
        f"after the first 5 s, {memory['rss_end_kb'] / 1024:.0f} MiB at the end",
        f"- streaming the 10-year CSV: {memory['rss_before_export_kb'] / 1024:.0f} MiB before, "
        f"peak {memory['rss_peak_export_kb'] / 1024:.0f} MiB during",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--duration", type=int, default=10, help="seconds per scenario")
    parser.add_argument("--write", action="store_true", help="write bench/RESULTS.md")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    sections = []
    for kind in kinds:
        with fresh_database(kind) as url:
            figures, memory = run_suite(url, args.duration)
        section = report(kind, figures, memory)
        print(section, flush=True)  # noqa: T201
        sections.append(section)
    if args.write:
        header = (
            f"# Benchmark results\n\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on "
            f"{platform.node()} ({os.cpu_count()} cores, {platform.machine()}), "
            f"Python {platform.python_version()}; one uvicorn worker on CPU {SERVER_CPU}, "
            f"wrk -t1 -c32 -d{args.duration}s on CPU {LOAD_CPU}.\n\n"
        )
        (BENCH / "RESULTS.md").write_text(header + "\n".join(sections))


if __name__ == "__main__":
    main()
