"""Password reset tokens: single use, 30 minutes, stored only as a hash."""

import uuid
from datetime import datetime

from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from models.base import UTCDateTime, new_id, utc_now


class PasswordResetToken(SQLModel, table=True):
    """One live token per account at most: a newer request deletes the older ones, and using
    a token deletes it. The token itself (at least 128 random bits) is only ever in the email;
    this row keeps its SHA-256."""

    __tablename__ = "password_reset_token"

    id: uuid.UUID = SQLField(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = SQLField(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    token_hash: str = SQLField(max_length=64, unique=True)
    created_at: datetime = SQLField(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = SQLField(sa_type=UTCDateTime)
