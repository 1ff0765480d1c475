"""Settings from the environment (pydantic-settings), read once per process."""

import logging
import secrets
from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

logger = logging.getLogger("releaselog")

DEFAULT_DATABASE_URL = "sqlite:///./releaselog.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # Empty means "development": a random per-process key is used and a warning is logged.
    secret_key: str = ""
    access_token_expire_minutes: int = Field(default=60, ge=1)
    cors_origins: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)
    db_statement_timeout_ms: int = Field(default=15_000, ge=0)
    # PostgreSQL: give up connecting after this long (libpq's minimum is 2), so /readyz
    # answers 503 instead of hanging when the server does not answer at all.
    db_connect_timeout_seconds: int = Field(default=5, ge=2)
    # The longest a request waits for its turn at the database (api/gate.py) before it is
    # answered 503 with Retry-After.
    db_turn_timeout_seconds: float = Field(default=10.0, gt=0)
    # Sessions read per batch (one short transaction each) by the CSV and FHIR exports: a
    # download's memory is bounded by it, whatever the history.
    export_batch_sessions: int = Field(default=100, ge=1, le=1000)
    sqlite_busy_timeout_ms: int = Field(default=15_000, ge=0)
    sqlite_synchronous: Literal["NORMAL", "FULL", "EXTRA"] = "NORMAL"
    # WAL pages written before a commit copies them back into the database file (SQLite's
    # default is 1000). Less often means fewer copies of pages that change again and fewer
    # syncs; the WAL file grows to this many pages (4 KiB each) before it is reused.
    sqlite_wal_autocheckpoint: int = Field(default=4000, ge=1)
    login_limit_per_account: str = "10/minute"
    login_limit_per_address: str = "100/minute"
    # Registrations per client address (a moving window, counted where the login limits are:
    # RATE_LIMIT_STORAGE_URL); over it, 429 with Retry-After. Each one costs an Argon2 hash.
    register_limit_per_address: str = "100/minute"
    rate_limit_storage_url: str = "memory://"
    tombstone_retention_days: int = Field(default=180, ge=1)
    webhook_allow_private_targets: bool = False
    webhook_retry_base_seconds: float = Field(default=30.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_worker_enabled: bool = True
    # Retries stop (status failed) once a delivery is this old; the last attempt is at the end.
    webhook_retry_window_seconds: float = Field(default=86_400.0, gt=0)
    webhook_worker_poll_seconds: float = Field(default=2.0, gt=0)
    webhook_worker_concurrency: int = Field(default=8, ge=1)
    # Email (api/services/mail_*.py). `smtp://user:password@host:port`, `?starttls=true`, or
    # `smtps://` for implicit TLS. Empty means "development": every email is written to the
    # log instead of being sent, and a loud warning is logged at start-up.
    smtp_url: str = ""
    # The From header; its address is also the envelope sender.
    mail_from: str = "releaselog <no-reply@localhost>"
    # Where links in emails (and report links) point: scheme, host, optional port and path
    # prefix, without a trailing slash.
    public_base_url: str = "http://127.0.0.1:8000"
    # Run the mail worker in this process; every process may (claims never overlap).
    mail_worker_enabled: bool = True
    # The first retry's delay; each next one doubles (with jitter), as for webhooks.
    mail_retry_base_seconds: float = Field(default=30.0, gt=0)
    # Retries stop (status failed) once an email is this old; the last attempt is at the end.
    mail_retry_window_seconds: float = Field(default=86_400.0, gt=0)
    # Timeout of each step of a conversation with the SMTP server (connect, each command).
    mail_timeout_seconds: float = Field(default=10.0, gt=0)
    # How often an idle mail worker looks for due emails; how many it sends at once (one
    # SMTP connection each).
    mail_worker_poll_seconds: float = Field(default=2.0, gt=0)
    mail_worker_concurrency: int = Field(default=4, ge=1)
    log_level: str = "INFO"

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().startswith("["):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("public_base_url")
    @classmethod
    def _check_public_base_url(cls, value: str) -> str:
        # Links are built as f"{public_base_url}/path": one slash, whatever was configured.
        value = value.strip().rstrip("/")
        if not value.startswith(("http://", "https://")):
            raise ValueError("PUBLIC_BASE_URL must start with http:// or https://")
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


_DEV_SECRET = secrets.token_urlsafe(32)


@lru_cache
def get_settings() -> Settings:
    return Settings()


def signing_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    return _DEV_SECRET


def warn_if_insecure(settings: Settings) -> None:
    if not settings.secret_key:
        logger.warning(
            "SECRET_KEY is not set: using a random development key. Tokens will not survive "
            "a restart and differ between processes. NEVER run like this in production."
        )
    elif len(settings.secret_key) < 32:
        logger.warning("SECRET_KEY is shorter than 32 characters: this is insecure.")
