"""A real SMTP server on loopback for the mail tests (aiosmtpd), which can be down for a while,
refuse recipients, answer DATA with scripted replies, require STARTTLS, TLS or a login."""

import asyncio
import email
import email.policy
import logging
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.serverproc import free_port

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's: every command


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class SmtpSink:
    """An SMTP server on 127.0.0.1:`port`, started and stopped at will (the port stays the
    same, so that a worker configured with it finds the server back).

    `data_replies`: the replies to the next DATA commands, in order (then 250 for each);
    `refuse_recipients`: answer RCPT with 550; `during_data`: called while the server holds
    the client at DATA (before answering), e.g. to look at the database meanwhile."""

    port: int = field(default_factory=free_port)
    data_replies: list[str] = field(default_factory=list)
    refuse_recipients: bool = False
    delay_seconds: float = 0.0
    during_data: Callable[[Received], None] | None = None
    # TLS and login: see start()
    smtp_kwargs: dict[str, Any] = field(default_factory=dict)
    implicit_tls: ssl.SSLContext | None = None
    logins: list[tuple[bytes, bytes]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    _controller: Controller | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        sink = self

        class Handler:
            async def handle_RCPT(  # type: ignore[no-untyped-def]
                self, _server, _session, envelope, address, _options
            ) -> str:
                if sink.refuse_recipients:
                    # Real servers quote the address: it must never reach a log or the table.
                    return f"550 5.1.1 <{address}>: Recipient address rejected"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, _server, _session, envelope) -> str:  # type: ignore[no-untyped-def]
                got = Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
                if sink.delay_seconds:
                    await asyncio.sleep(sink.delay_seconds)
                if sink.during_data is not None:
                    sink.during_data(got)
                with sink._lock:
                    reply = sink.data_replies.pop(0) if sink.data_replies else "250 OK"
                    if reply.startswith("250"):
                        sink.received.append(got)
                return reply

        def authenticate(  # type: ignore[no-untyped-def]
            _server, _session, _envelope, _mechanism, auth_data
        ) -> AuthResult:
            assert isinstance(auth_data, LoginPassword)
            sink.logins.append((auth_data.login, auth_data.password))
            return AuthResult(success=True)

        kwargs = dict(self.smtp_kwargs)
        if kwargs.pop("login", False):
            kwargs["authenticator"] = authenticate
        self._controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            ssl_context=self.implicit_tls,
            **kwargs,
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def message_ids(self) -> list[str]:
        return [str(got.message["Message-ID"]) for got in self.received]


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 and localhost."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """Verifies like the default context does, trusting only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


def self_signed_certificate(directory: Path) -> Certificate | None:
    """Made with the openssl command (None without it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return Certificate(cert, key)
