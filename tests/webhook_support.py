"""A real HTTP receiver on loopback for webhook tests, and grant helpers."""

import base64
import hashlib
import hmac
import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import Session

from api.state import app_state
from models.coaching import Grant


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers each POST with the next status of `statuses` (the last one repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    hold: threading.Event | None = None  # when set, each request waits for it (a slow receiver)
    port: int = 0  # 0: any free port; a given one brings a receiver back where it was
    received: list[Received] = field(default_factory=list)
    got_request: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body)
                )
                receiver.got_request.set()
                if receiver.hold is not None:
                    receiver.hold.wait(10)
                index = min(len(receiver.received), len(receiver.statuses)) - 1
                try:
                    self.send_response(receiver.statuses[index])
                    self.send_header("content-length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (timeout)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/releaselog"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()


def verify_signature(secret: str, received: Received) -> bool:
    """Standard Webhooks verification, written independently of the server's code."""
    key = base64.b64decode(secret.split("_", 1)[1])
    msg_id = received.headers["webhook-id"]
    timestamp = received.headers["webhook-timestamp"]
    signed = f"{msg_id}.{timestamp}.".encode() + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    signatures = received.headers["webhook-signature"].split()
    return any(
        version == "v1" and hmac.compare_digest(value, expected)
        for version, _, value in (s.partition(",") for s in signatures)
    )


def grant(app: FastAPI, coach_id: str, client_id: str) -> uuid.UUID:
    """A live grant (the invite/grant endpoints belong to another part of the API)."""
    row = Grant(coach_id=uuid.UUID(coach_id), client_id=uuid.UUID(client_id))
    with Session(app_state(app).engine, expire_on_commit=False) as db:
        db.add(row)
        db.commit()
    return row.id


def revoke(app: FastAPI, grant_id: uuid.UUID) -> None:
    with Session(app_state(app).engine) as db:
        db.execute(
            update(Grant)
            .where(Grant.id == grant_id)  # type: ignore[arg-type]
            .values(revoked_at=datetime.now(UTC))
        )
        db.commit()
