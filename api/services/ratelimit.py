"""Login throttling with the `limits` library; shared between processes via Redis if set."""

import logging
import math
import time

from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from api.config import Settings
from api.errors import ServiceUnavailable, TooManyRequests

logger = logging.getLogger("releaselog.ratelimit")


class LoginLimiter:
    """Counts login attempts per account and per client address (a moving window)."""

    def __init__(self, settings: Settings) -> None:
        self._limiter = MovingWindowRateLimiter(
            storage_from_string(settings.rate_limit_storage_url)
        )
        self._per_account = parse(settings.login_limit_per_account)
        self._per_address = parse(settings.login_limit_per_address)

    def reset(self) -> None:
        """Forget every counter (tests)."""
        self._limiter.storage.reset()

    def hit(self, email: str, address: str) -> None:
        """Record one attempt; raise 429 with Retry-After once either limit is exceeded."""
        checks = (
            (self._per_account, ("login-account", email.lower())),
            (self._per_address, ("login-address", address)),
        )
        for limit, identifiers in checks:
            try:
                allowed = self._limiter.hit(limit, *identifiers)
            except Exception as error:  # the shared store (Redis) is unreachable
                # Fail closed: without its counters a login could not be throttled.
                logger.error("login rate limiter store unavailable: %s", type(error).__name__)
                raise ServiceUnavailable(
                    "Login is temporarily unavailable. Try again shortly.",
                    headers={"Retry-After": "5"},
                ) from None
            if not allowed:
                reset_at = self._limiter.get_window_stats(limit, *identifiers).reset_time
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(
                    "Too many login attempts. Try again later.",
                    headers={"Retry-After": str(retry_after)},
                )
