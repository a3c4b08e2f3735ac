"""Per-key rate limits, in cost units over a sliding window (the `limits` package): in process,
or in Redis shared by every instance when CONTENT_API_REDIS_URL is set.

An executed operation costs more than an answer from the cache, which costs more than a 304,
so a partner that revalidates is limited last. Answers carry the IETF RateLimit-Policy and
RateLimit fields; a refusal is 429 with Retry-After.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter as SharedLimiter
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter as LocalLimiter

logger = logging.getLogger("service.delivery.ratelimit")

EXECUTED, CACHED, REVALIDATED = 10, 2, 1
POLICY = "partner"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset: int  # seconds until the window has room again
    window: int  # seconds

    def headers(self) -> list[tuple[bytes, bytes]]:
        fields = [
            (b"ratelimit-policy", f'"{POLICY}";q={self.limit};w={self.window}'.encode()),
            (b"ratelimit", f'"{POLICY}";r={self.remaining};t={self.reset}'.encode()),
        ]
        if not self.allowed:
            fields.append((b"retry-after", str(max(self.reset, 1)).encode()))
        return fields


class RateLimits:
    def __init__(self, rate: str, redis_url: str | None = None) -> None:
        self.item: RateLimitItem = parse(rate)
        self.window = int(self.item.get_expiry())
        self._local = LocalLimiter(MemoryStorage())
        self._storage = (
            RedisStorage(f"async+{redis_url}", implementation="redispy")
            if redis_url is not None
            else None
        )
        self._shared = SharedLimiter(self._storage) if self._storage is not None else None

    async def close(self) -> None:
        """Close the Redis connections, in the event loop that opened them."""
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        if client is not None:
            await client.aclose()

    @property
    def local_only(self) -> bool:
        return self._shared is None

    def spend_local(self, identity: str, cost: int) -> Decision:
        """As `spend`, for limits kept in this process: no I/O, no await."""
        allowed = self._local.hit(self.item, identity, cost=cost)
        stats = self._local.get_window_stats(self.item, identity)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, self.item.amount, stats.remaining, reset, self.window)

    async def spend(self, identity: str, cost: int) -> Decision:
        """Take `cost` units from `identity`'s window, when it has them."""
        if self._shared is None:
            return self.spend_local(identity, cost)
        try:
            allowed = await self._shared.hit(self.item, identity, cost=cost)
            stats = await self._shared.get_window_stats(self.item, identity)
        except Exception as exc:  # a limiter that fails never refuses a partner
            logger.warning("rate limits not checked: %s", exc)
            return Decision(True, self.item.amount, self.item.amount, 0, self.window)
        reset = max(0, math.ceil(stats.reset_time - time.time()))
        return Decision(allowed, self.item.amount, stats.remaining, reset, self.window)
