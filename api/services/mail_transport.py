"""Talking to the mail server: SMTP_URL, the message (plain text and HTML), one send.

The standard library's smtplib, called from the mail worker's threads: a send blocks only the
worker thread that makes it, never a request, and never inside a database transaction.
Nothing here logs or raises with an address, a subject, a body or the SMTP password in it,
except `log_instead_of_sending`, the development mode without SMTP_URL.
"""

import logging
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from ipaddress import ip_address
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from api.config import Settings

logger = logging.getLogger("releaselog.mail")

DEFAULT_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
Security = Literal["none", "starttls", "tls"]
_DEFAULT_PORTS: dict[Security, int] = {"none": 25, "starttls": 587, "tls": 465}
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


class MailConfigError(ValueError):
    """SMTP_URL or MAIL_FROM cannot be used. The message never quotes SMTP_URL (a password)."""


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def parse_smtp_url(url: str) -> SmtpServer | None:
    """SMTP_URL as a server; None when unset (development: emails go to the log).

    `smtp://[user:password@]host[:port]` (port 25), with `?starttls=true` STARTTLS before
    anything else is said (port 587), `smtps://` TLS from the first byte (port 465). The user
    and password are percent-decoded, so any character can be written (`@` as `%40`)."""
    if not url.strip():
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise MailConfigError("SMTP_URL is not a valid URL (is the port a number?)") from None
    if parts.scheme not in ("smtp", "smtps"):
        raise MailConfigError("SMTP_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise MailConfigError("SMTP_URL has no host")
    if parts.path not in ("", "/") or parts.fragment:
        raise MailConfigError("SMTP_URL must have no path or fragment")
    starttls = False
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name != "starttls" or value.lower() not in (*_TRUE, *_FALSE):
            raise MailConfigError("SMTP_URL's only query parameter is starttls=true|false")
        starttls = value.lower() in _TRUE
    if parts.scheme == "smtps" and starttls:
        raise MailConfigError("SMTP_URL: smtps:// is TLS already; starttls=true is for smtp://")
    security: Security = "tls" if parts.scheme == "smtps" else "starttls" if starttls else "none"
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and username is None:
        raise MailConfigError("SMTP_URL has a password but no user")
    return SmtpServer(
        host=parts.hostname,
        port=port or _DEFAULT_PORTS[security],
        security=security,
        username=username,
        password=password,
    )


def sender_address(mail_from: str) -> str:
    """The bare address of MAIL_FROM (`Name <address>` or `address`): the envelope sender."""
    if "\r" in mail_from or "\n" in mail_from:
        raise MailConfigError("MAIL_FROM must be one line")
    _name, address = parseaddr(mail_from)
    if "@" not in address:
        raise MailConfigError("MAIL_FROM must be an address: 'Name <sender@example.org>'")
    return address


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_mail_settings(settings: Settings) -> None:
    """At start-up: refuse an unusable SMTP_URL or MAIL_FROM, and say loudly when emails are
    about to go to the log (or somewhere odd) instead of to people."""
    server = parse_smtp_url(settings.smtp_url)
    sender_address(settings.mail_from)
    if server is None:
        logger.warning(
            "SMTP_URL is not set: every email (password reset links, notices) is written to "
            "this log, with its recipient and body, instead of being sent. Development only: "
            "NEVER run like this in production, where it puts personal data and reset tokens "
            "in the logs."
        )
        return
    if server.security == "none" and server.username and not _is_loopback(server.host):
        logger.warning(
            "SMTP_URL sends the SMTP password unencrypted to a remote server: use "
            "smtps:// or ?starttls=true."
        )
    if settings.public_base_url == DEFAULT_PUBLIC_BASE_URL:
        logger.warning(
            "PUBLIC_BASE_URL is the default %s: links in emails will point there.",
            DEFAULT_PUBLIC_BASE_URL,
        )


@dataclass(frozen=True)
class Email:
    """One email as the worker sends it. `id` is the outbox row's id."""

    id: str
    recipient: str
    subject: str
    text_body: str
    html_body: str
    created_at: datetime


def build_message(email: Email, mail_from: str) -> EmailMessage:
    """multipart/alternative: the plain text first, the HTML second (preferred by readers
    that show HTML). The Message-ID is the outbox row's, so that in the rare case an email is
    sent twice (a worker lost its lease mid-send) mail clients can tell it is one message."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = email.recipient
    message["Subject"] = email.subject
    message["Date"] = format_datetime(email.created_at)
    domain = sender_address(mail_from).rpartition("@")[2]
    message["Message-ID"] = f"<{email.id}@{domain}>"
    # RFC 3834: no vacation auto-replies to a machine's email.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(email.text_body)
    message.add_alternative(email.html_body, subtype="html")
    return message


@lru_cache(maxsize=1)
def _local_hostname() -> str:
    # The EHLO name. smtplib would look it up again for every connection.
    return socket.getfqdn()


def send(
    server: SmtpServer,
    email: Email,
    mail_from: str,
    timeout: float,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Send one email; returns once the server has accepted it, raises otherwise
    (smtplib.SMTPException, or OSError: refused, timed out, TLS failure).

    TLS verifies the server's certificate and host name (the system's CAs unless
    `ssl_context` says otherwise)."""
    message = build_message(email, mail_from)
    context = ssl_context or ssl.create_default_context()
    smtp: smtplib.SMTP
    if server.security == "tls":
        smtp = smtplib.SMTP_SSL(
            server.host,
            server.port,
            local_hostname=_local_hostname(),
            timeout=timeout,
            context=context,
        )
    else:
        smtp = smtplib.SMTP(
            server.host, server.port, local_hostname=_local_hostname(), timeout=timeout
        )
    try:
        smtp.ehlo()
        if server.security == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if server.username is not None:
            smtp.login(server.username, server.password or "")
        smtp.send_message(message, from_addr=sender_address(mail_from), to_addrs=[email.recipient])
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass  # accepted is sent: a failed goodbye must not make it a retry (a duplicate)
    finally:
        smtp.close()


def describe_failure(error: BaseException) -> tuple[str, bool]:
    """(what went wrong, is it permanent) for an exception from `send`. The description is
    the exception's class and the SMTP reply code only: the reply text, and some exceptions'
    messages, can quote the address. Permanent: the server refused this recipient or this
    message (5xx); retrying cannot help. Anything else (down, 4xx, TLS, login, MAIL_FROM
    refused) may be fixed by time or by the operator, so it is retried."""
    name = type(error).__name__
    cause = error.__cause__ or error.__context__
    if isinstance(cause, OSError) and not isinstance(cause, smtplib.SMTPException):
        name = f"{name} ({type(cause).__name__})"  # e.g. SMTPServerDisconnected (TimeoutError)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _reply in error.recipients.values()]
        code = codes[0] if codes else 0
        return f"{name} {code}", bool(codes) and all(500 <= c < 600 for c in codes)
    if isinstance(error, smtplib.SMTPResponseException):
        code = error.smtp_code
        permanent = isinstance(error, smtplib.SMTPDataError) and 500 <= code < 600
        return f"{name} {code}", permanent
    return name, False


def log_instead_of_sending(email: Email, mail_from: str) -> None:
    """SMTP_URL unset (development): the email goes to the log, the one place where a log
    line carries an address and a body. check_mail_settings warns about it at start-up."""
    logger.warning(
        "email %s NOT SENT (SMTP_URL is unset; development only)\nFrom: %s\nTo: %s\n"
        "Subject: %s\n\n%s",
        email.id,
        mail_from,
        email.recipient,
        email.subject,
        email.text_body,
    )
