"""Which entries a request's answer holds: the response cache names them in the response's
cache tags (Surrogate-Key, Cache-Tag), so a CDN can purge exactly the pages that show an entry.

The delivery layer opens a record around a request (`recording`); the reader notes each
entry it serves (`note_served`). Outside a record, noting does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_served: ContextVar[set[str] | None] = ContextVar("served_entries", default=None)


def note_served(keys: Iterable[str]) -> None:
    """Entry keys that an answer being computed shows."""
    record = _served.get()
    if record is not None:
        record.update(keys)


class _Forwarding(set[str]):
    """A record inside another: what it notes, the enclosing record notes too."""

    def __init__(self, outer: set[str] | None) -> None:
        super().__init__()
        self.outer = outer

    def update(self, *others: Iterable[str]) -> None:
        keys = set().union(*others)
        super().update(keys)
        if self.outer is not None:
            self.outer.update(keys)


@contextmanager
def noting() -> Iterator[set[str]]:
    """The keys of the entries served while the block runs, noted in the enclosing record as
    well (and in tasks the block starts, which note into both)."""
    record = _Forwarding(_served.get())
    token = _served.set(record)
    try:
        yield record
    finally:
        _served.reset(token)


@contextmanager
def recording() -> Iterator[set[str]]:
    """The keys of the entries served while the block runs (filled as they are served)."""
    record: set[str] = set()
    token = _served.set(record)
    try:
        yield record
    finally:
        _served.reset(token)
