"""Login and registration throttling with the `limits` library; shared between processes via
Redis if set."""

import hashlib
import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.config import Settings
from api.errors import ServiceUnavailable, TooManyRequests

logger = logging.getLogger("releaselog.ratelimit")

_Check = tuple[RateLimitItem, tuple[str, ...]]


def account_key(email: str) -> str:
    """The per-account counter's key: a fixed-size digest of the normalised email, so that
    neither a long email nor the email itself is kept in the store (Redis)."""
    return hashlib.sha256(email.lower().encode("utf-8", "surrogatepass")).hexdigest()


class LoginLimiter:
    """Counts login attempts per account and per client address, and registrations per client
    address (a moving window each)."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(settings.rate_limit_storage_url)
        )
        self._per_account = parse(settings.login_limit_per_account)
        self._per_address = parse(settings.login_limit_per_address)
        self._registrations_per_address = parse(settings.register_limit_per_address)

    def reset(self) -> None:
        """Forget every counter (tests)."""
        self._limiter.storage.reset()

    def hit(self, email: str, address: str) -> None:
        """Record one login attempt; raise 429 with Retry-After once either limit is exceeded."""
        checks = (
            (self._per_account, ("login-account", account_key(email))),
            (self._per_address, ("login-address", address)),
        )
        self._hit(checks, "login", "Too many login attempts. Try again later.")

    def hit_reset(self, email: str, address: str) -> None:
        """Record one password-reset request: limited like login (per account, per address),
        counted apart from it."""
        checks = (
            (self._per_account, ("reset-account", account_key(email))),
            (self._per_address, ("reset-address", address)),
        )
        self._hit(checks, "password reset", "Too many reset requests. Try again later.")

    def hit_registration(self, address: str) -> None:
        """Record one registration; raise 429 with Retry-After once the limit is exceeded."""
        checks = ((self._registrations_per_address, ("register-address", address)),)
        message = "Too many registrations from this address. Try again later."
        self._hit(checks, "registration", message)

    def _hit(self, checks: tuple[_Check, ...], what: str, refusal: str) -> None:
        for limit, identifiers in checks:
            try:
                allowed = self._limiter.hit(limit, *identifiers)
            except Exception as error:  # the shared store (Redis) is unreachable
                # Fail closed: without its counters an attempt could not be throttled.
                logger.error("%s rate limiter store unavailable: %s", what, type(error).__name__)
                raise ServiceUnavailable(
                    f"{what.capitalize()} is temporarily unavailable. Try again shortly.",
                    headers={"Retry-After": "5"},
                ) from None
            if not allowed:
                reset_at = self._limiter.get_window_stats(limit, *identifiers).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(refusal, headers={"Retry-After": str(retry_after)})
