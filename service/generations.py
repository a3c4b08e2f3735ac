"""Process-wide counters that say "something changed; look again": bumped after a commit that
publishes a release, revokes a key or removes a document, read on every request by what caches
those answers.

Other processes and instances learn of the same changes by polling the database
(service/delivery/freshness.py); these counters only make this process's own changes
visible at once, without waiting for the next poll.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession


class Generation:
    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    @property
    def value(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1

    def after_commit(self, session: AsyncSession) -> None:
        """Bump once the session's transaction commits (never for a rollback or a preview)."""

        def bump(_session: Any) -> None:
            self.bump()

        event.listen(session.sync_session, "after_commit", bump, once=True)


RELEASES = Generation()
KEYS = Generation()
DOCUMENTS = Generation()
