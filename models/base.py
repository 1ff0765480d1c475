"""Shared metadata conventions and column helpers."""

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import DateTime, TypeDecorator
from sqlmodel import SQLModel
from uuid_utils.compat import uuid7

SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def ordered_id() -> uuid.UUID:
    """A time-ordered UUID (version 7, RFC 9562) for the rows written in bulk (sessions,
    webhook deliveries). Rows created together get neighbouring ids, so a primary-key index
    takes them on a few pages instead of one page each (a random UUID lands anywhere): far
    fewer pages for each commit to write. Its first 48 bits are the creation time in
    milliseconds, which these rows publish anyway (`created_at`)."""
    return uuid7()


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        value = value.astimezone(UTC)
        if getattr(dialect, "name", "") == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, _dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class ResponseModel(BaseModel):
    """A response body. Every field is in every body, defaults included, so the published
    schema requires each one (in serialization mode a default does not make a field optional,
    and generated clients need no `?` checks). A field that a body may leave out says so with
    `omitted_when_none()`."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


def _is_none(value: object) -> bool:
    return value is None


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omitted_when_none(**kwargs: Any) -> Any:
    """A response field that is left out of the body, never null, when it has no value.

    Annotate it `T | SkipJsonSchema[None]`: the schema then lists it as optional, of type T,
    without null and without the meaningless `default: null`."""
    return Field(default=None, exclude_if=_is_none, json_schema_extra=_without_default, **kwargs)
