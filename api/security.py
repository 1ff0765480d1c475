"""Password hashing (Argon2 via pwdlib), access tokens (PyJWT, HS256 pinned), API key hashing."""

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

JWT_ALGORITHM = "HS256"
API_KEY_PREFIX = "rlk_"

_password_hash = PasswordHash((Argon2Hasher(),))
# Verified when the email is unknown, so that a login for a missing account costs the same.
_DUMMY_HASH = _password_hash.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _password_hash.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    if password_hash is None:
        _password_hash.verify(password, _DUMMY_HASH)
        return False
    return _password_hash.verify(password, password_hash)


def create_access_token(
    user_id: uuid.UUID, key: str, lifetime: timedelta, token_version: int = 0
) -> str:
    """`token_version`: the account's credential version (User.token_version) at issue."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "typ": "access",
        "ver": token_version,
    }
    return jwt.encode(claims, key, algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, key: str) -> tuple[uuid.UUID, int] | None:
    """(user id, credential version) of a valid token, or None (bad signature, expired, wrong
    algorithm...). A token from before versions existed counts as version 0."""
    verified = _verify_token(token, key)
    if verified is None:
        return None
    user_id, expires_at, version = verified
    return (user_id, version) if time.time() < expires_at else None


@lru_cache(maxsize=8192)
def _verify_token(token: str, key: str) -> tuple[uuid.UUID, float, int] | None:
    """Signature and claims checked once per token (and key); expiry is checked on every use."""
    try:
        claims = jwt.decode(
            token, key, algorithms=[JWT_ALGORITHM], options={"require": ["sub", "exp", "iat"]}
        )
        version = claims.get("ver", 0)
        if claims.get("typ") != "access" or type(version) is not int:
            return None
        return uuid.UUID(str(claims["sub"])), float(claims["exp"]), version
    except (jwt.PyJWTError, ValueError, TypeError):
        return None


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 for high-entropy secrets (API keys, invite codes): lookup by hash is safe."""
    return hashlib.sha256(secret.encode()).hexdigest()
