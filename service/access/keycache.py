"""Keys this process has checked, so that a request with a known key costs no statement.

A key is checked against the database the first time it is seen and again at least once a
minute (which also keeps its `last_used_at` current); a revocation anywhere clears every
entry: this process's own at once (generations.KEYS), another instance's within one poll of
the freshness check (service/delivery/freshness.py). Keys that fail are never kept, so each
failure is checked, and answered, afresh.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from service import generations
from service.access.principal import Principal
from service.access.service import caller_for

# how long a key checked once is believed without asking again
RECHECK_SECONDS = 60.0


class KeyCache:
    def __init__(self, *, size: int = 10_000, recheck: float = RECHECK_SECONDS) -> None:
        self.size = size
        self.recheck = recheck
        self._held: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()
        self._generation = generations.KEYS.value
        self._revocations: object = None
        # counts the clears: what was answered for a key held before one no longer holds
        self.epoch = 0

    @staticmethod
    def _fingerprint(authorization: str) -> bytes:
        # the header is never kept as it came: only its digest
        return hashlib.sha256(authorization.encode("utf-8", "surrogatepass")).digest()

    def clear(self) -> None:
        self._held.clear()
        self.epoch += 1

    def revocations_seen(self, mark: object) -> None:
        """The database's revocation mark as polled: a change clears every key held."""
        if mark != self._revocations:
            if self._revocations is not None:
                self.clear()
            self._revocations = mark

    def current_epoch(self) -> int:
        """The count of clears, this process's own revocations taken into account."""
        if generations.KEYS.value != self._generation:
            self._generation = generations.KEYS.value
            self.clear()
        return self.epoch

    def held(self, authorization: str) -> Principal | None:
        """The principal of a key checked recently, without I/O; None when it must be checked."""
        self.current_epoch()
        fingerprint = self._fingerprint(authorization)
        found = self._held.get(fingerprint)
        if found is None:
            return None
        principal, until = found
        if time.monotonic() >= until:
            del self._held[fingerprint]
            return None
        return principal

    def keep(self, authorization: str, principal: Principal) -> None:
        until = time.monotonic() + self.recheck
        if principal.expires_at is not None:
            remaining = (principal.expires_at - datetime.now(UTC)).total_seconds()
            until = min(until, time.monotonic() + max(remaining, 0.0))
        fingerprint = self._fingerprint(authorization)
        self._held[fingerprint] = (principal, until)
        self._held.move_to_end(fingerprint)
        while len(self._held) > self.size:
            self._held.popitem(last=False)

    async def caller(
        self, session: AsyncSession, authorization: str | None, *, production: bool
    ) -> Principal | None:
        """As `caller_for`, from what is held when the key was checked recently."""
        if authorization is not None:
            principal = self.held(authorization)
            if principal is not None:
                return principal
        principal = await caller_for(session, authorization, production=production)
        if principal is not None and authorization is not None:
            self.keep(authorization, principal)
        return principal
