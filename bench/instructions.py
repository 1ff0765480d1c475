"""Instructions per session create, counted by callgrind: repeatable where wall-clock is not.

    .venv/bin/python bench/instructions.py [--creates 300] [--concurrency 32] [--db sqlite|postgres]

Runs the app in-process (through its ASGI interface, lifespan included) on a fresh database,
registers 16 people, then sends `--creates` session creates, `--concurrency` at a time (1: each
create alone in its transaction; more: concurrent creates share transactions, see GroupCommit).
The whole run is counted twice under `valgrind --tool=callgrind`, once with no creates and once
with them; the difference divided by the number of creates is one create's cost, with the
set-up taken out.
The same code, inputs and machine give the same count to within ~0.1 %, whatever else the
machine is doing, so a change of a few per cent shows (wall-clock swings by ±20 % here).
"""

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEOPLE = 16
BODY = {
    "started_at": "2026-11-20T07:30:00+01:00",
    "ended_at": "2026-11-20T07:45:00+01:00",
    "tool": "foam_roller",
    "water_before_ml": 400,
    "water_after_ml": 350,
    "ratings": [
        {"region": "adductors", "side": "left", "metric": "pain", "before": 6, "after": 3},
        {"region": "adductors", "side": "left", "metric": "rom", "before": 35, "after": 42},
        {"region": "adductors", "side": "right", "metric": "pain", "before": 5, "after": 2},
    ],
}


async def _run(database_url: str, creates: int, concurrency: int) -> None:
    import httpx

    sys.path.insert(0, str(ROOT))
    from api.cli import tune_gc
    from api.config import Settings
    from api.main import create_app
    from tests.conftest import migrate

    migrate(database_url)
    settings = Settings(
        database_url=database_url,
        secret_key="bench-secret-key-that-is-long-enough-for-hs256",
        webhook_worker_enabled=False,
        mail_worker_enabled=False,
        login_limit_per_address="100000/minute",
        register_limit_per_address="100000/minute",
    )
    app = create_app(settings)
    tune_gc()  # as `releaselog serve` runs it
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://bench") as http,
    ):
        headers = []
        for number in range(PEOPLE):
            email = f"bench{number}-{uuid.uuid4().hex[:8]}@example.com"
            account = {"email": email, "password": "long enough secret", "display_name": "B"}
            assert (await http.post("/v1/auth/register", json=account)).status_code == 201
            token = await http.post(
                "/v1/auth/token", data={"username": email, "password": "long enough secret"}
            )
            headers.append({"Authorization": f"Bearer {token.json()['access_token']}"})
        pending = iter(range(creates))

        async def sender() -> None:
            for number in pending:
                response = await http.post(
                    "/v1/sessions", json=BODY, headers=headers[number % PEOPLE]
                )
                assert response.status_code == 201, response.text

        await asyncio.gather(*(sender() for _ in range(concurrency)))


def _database(kind: str) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    sys.path.insert(0, str(ROOT))
    from tests.conftest import create_postgres_database

    base = os.environ.get("BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    return create_postgres_database(base)[0]  # left behind: a scratch database per run


def _counted(kind: str, concurrency: int, creates: int) -> int:
    """Instructions of one whole in-process run under callgrind."""
    out = Path(tempfile.mkdtemp()) / "callgrind.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        __file__,
        "--inner",
        "--db-url",
        _database(kind),
        "--creates",
        str(creates),
        "--concurrency",
        str(concurrency),
    ]
    subprocess.run(command, check=True, capture_output=True)
    totals = re.search(r"^(?:totals|summary): (\d+)", out.read_text(), re.MULTILINE)
    assert totals, "callgrind wrote no totals"
    return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--creates", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        asyncio.run(_run(args.db_url, args.creates, args.concurrency))
        return
    with ThreadPoolExecutor(2) as runs:  # the two counts side by side
        base, full = runs.map(partial(_counted, args.db, args.concurrency), (0, args.creates))
    per_create = (full - base) / args.creates
    print(  # noqa: T201
        f"{args.db}: {per_create / 1e6:.3f} M instructions per create "
        f"({args.creates} creates, {args.concurrency} at a time)"
    )


if __name__ == "__main__":
    main()
