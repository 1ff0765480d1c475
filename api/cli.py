"""`releaselog migrate | serve | purge-tombstones | demo`."""

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.applications import Starlette

ROOT = Path(__file__).resolve().parent.parent


def migrate(configure_logger: bool = True) -> None:
    from alembic.config import Config

    from alembic import command

    # ALEMBIC_CONFIG (alembic's own variable) points at alembic.ini when the package is
    # installed as a wheel (the Docker image), away from the source tree.
    config = Config(os.environ.get("ALEMBIC_CONFIG", str(ROOT / "alembic.ini")))
    # When serving, the app's JSON logging (api/logs.py) is the only handler.
    config.attributes["configure_logger"] = configure_logger
    command.upgrade(config, "head")


def serve(host: str, port: int, workers: int) -> None:
    import uvicorn

    migrate(configure_logger=False)
    # The app writes its own JSON access line (api/middleware.py); with log_config=None,
    # uvicorn's own messages go through the same JSON handler (api/logs.py).
    uvicorn.run(
        "api.cli:served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        access_log=False,
        log_config=None,
    )


def tune_gc() -> None:
    """The garbage collector tuned for a long-lived server, once its code is loaded
    (bench/RESULTS.md has what each setting saves)."""
    import gc

    # Everything loaded by now (modules, the app, compiled schemas) lives for the whole
    # process: out of the collector's sight, collections walk only what requests allocate.
    gc.freeze()
    # Young collections walk every object still alive (the state of the requests in
    # flight): after 10,000 net allocations rather than 700, they do so far less often.
    gc.set_threshold(10_000, 10, 10)


def served_app() -> "Starlette":
    """The app as `serve` runs it, in each worker process: with the collector tuned."""
    from api.main import app

    tune_gc()
    return app


def purge_tombstones() -> None:
    from datetime import timedelta

    from api.config import get_settings
    from api.db import create_db_engine, session_scope
    from api.services.sync import purge_tombstones as purge
    from models.base import utc_now

    settings = get_settings()
    for db in session_scope(create_db_engine(settings)):
        count = purge(db, utc_now(), timedelta(days=settings.tombstone_retention_days))
        print(f"purged {count} tombstones")  # noqa: T201


def demo() -> int:
    """Migrate, then load the demo accounts and sessions (api/services/demo.py); the exit
    status: 1 when accounts of the demo emails exist that the demo did not make."""
    from api.config import get_settings
    from api.db import create_db_engine
    from api.services.demo import (
        CLIENTS,
        COACH,
        DEMO_PASSWORD,
        DemoRefused,
        fill_demo,
    )

    migrate()
    engine = create_db_engine(get_settings())
    try:
        summary = fill_demo(engine)
    except DemoRefused as refused:
        print(f"releaselog demo: {refused}", file=sys.stderr)  # noqa: T201
        return 1
    finally:
        engine.dispose()
    if summary.changed:
        sessions = ", ".join(f"{email} {n}" for email, n in summary.sessions_created.items())
        lines = [
            f"Demo loaded: {len(summary.accounts_created)} accounts, "
            f"{len(summary.grants_created)} grants, "
            f"{sum(summary.sessions_created.values())} sessions ({sessions or 'none'}).",
        ]
    else:
        lines = ["The demo is already loaded: nothing changed."]
    emails = ", ".join(person.email for person in CLIENTS)
    lines += [
        f"Password {DEMO_PASSWORD} for the coach ({COACH.email}) and the clients ({emails}).",
        "Serve (releaselog serve) and log in with POST /v1/auth/token: the coach's roster is",
        "GET /v1/clients; a client's report is /v1/report.html, the coach's view of it",
        "/v1/clients/{client_id}/report.html. Client ids: "
        + ", ".join(f"{email} {client_id}" for email, client_id in summary.client_ids.items())
        + ".",
    ]
    print("\n".join(lines))  # noqa: T201
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="releaselog")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the database to the current schema")
    serve_parser = commands.add_parser("serve", help="migrate, then serve with uvicorn")
    serve_parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    serve_parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    serve_parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "1")))
    commands.add_parser("purge-tombstones", help="delete tombstones past their retention")
    commands.add_parser("demo", help="migrate, then load a demo coach and three clients")
    args = parser.parse_args()
    if args.command == "migrate":
        migrate()
    elif args.command == "serve":
        serve(args.host, args.port, args.workers)
    elif args.command == "demo":
        sys.exit(demo())
    else:
        purge_tombstones()


if __name__ == "__main__":
    main()
