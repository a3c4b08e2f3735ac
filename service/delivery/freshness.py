"""Which release is the latest, and whether any key was revoked or trusted document removed,
as this instance last saw.

One cheap statement (`max(id)` of releases, the latest revocation times, the latest removal of
a document) is polled every CONTENT_API_FRESHNESS_INTERVAL seconds, so a publish, a revocation
or a removal on any instance is seen on every other within that; this process's own are seen
at once (service/generations.py). While the database does not answer, the last answer holds:
cached answers of the release already known keep flowing (stale-if-error), and nothing newer
can be mixed in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import generations
from service.access.keycache import KeyCache
from service.access.models import ApiKey, Staff
from service.content.models import Release
from service.delivery.document_repository import REMOVAL_MARK

if TYPE_CHECKING:
    from service.delivery.documents import DocumentStore

logger = logging.getLogger("service.delivery.freshness")


class Freshness:
    def __init__(
        self, keys: KeyCache, *, interval: float, documents: DocumentStore | None = None
    ) -> None:
        self.keys = keys
        self.documents = documents
        self.interval = interval
        self.latest: int | None = None  # None until the database answered once
        self._checked = float("-inf")
        self._generation = -1
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._polling = False

    @property
    def generation(self) -> int:
        """The count of this process's publishes that `latest` takes into account."""
        return self._generation

    async def latest_release(self, sessions: async_sessionmaker[AsyncSession]) -> int | None:
        """The latest release id. A known answer is given at once, and checked again in the
        background when it is older than the interval; a request waits for the database only
        when nothing is known yet or this process has just published. None when the database
        never answered."""
        if self.latest is not None and generations.RELEASES.value == self._generation:
            stale = time.monotonic() - self._checked > self.interval
            if stale and not self._polling and not self._lock.locked():
                task = asyncio.create_task(self._checked_once(sessions))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
            return self.latest
        await self._checked_once(sessions)
        return self.latest

    async def _checked_once(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        # one check at a time; those that waited for it take its answer
        generation = generations.RELEASES.value
        async with self._lock:
            if self._generation == generation and time.monotonic() - self._checked <= self.interval:
                return
            await self.check(sessions)

    async def check(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        generation = generations.RELEASES.value
        try:
            async with sessions() as session:
                row = (await session.execute(_MARKS)).one()
        except (DBAPIError, PoolTimeout, OSError, TimeoutError) as exc:
            # keep the last answer: stale, but never wrong about what it says it is
            logger.warning("freshness check failed: %s", type(exc).__name__)
            # not asked again before the interval, whoever asks: requests keep being answered
            # from what is known instead of each waiting for the database's timeout
            self._generation = generation
            self._checked = time.monotonic()
            return
        latest, *revocations, removals = row
        self.latest = int(latest or 0)
        self._generation = generation
        self._checked = time.monotonic()
        self.keys.revocations_seen(tuple(_comparable(mark) for mark in revocations))
        if self.documents is not None:
            self.documents.removals_seen(removals)

    async def run(self, sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event) -> None:
        """Poll until `stop` is set."""
        self._polling = True
        try:
            while not stop.is_set():
                async with self._lock:
                    await self.check(sessions)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.interval)
        finally:
            self._polling = False


_MARKS = select(
    select(func.max(Release.id)).scalar_subquery(),
    select(func.max(ApiKey.revoked_at)).scalar_subquery(),
    select(func.count(ApiKey.revoked_at)).scalar_subquery(),
    select(func.max(Staff.revoked_at)).scalar_subquery(),
    select(func.count(Staff.revoked_at)).scalar_subquery(),
    REMOVAL_MARK,
)


def _comparable(mark: Any) -> Any:
    return mark.isoformat() if hasattr(mark, "isoformat") else mark
