"""Published releases held in memory: what a release shows, loaded once per process.

A release never changes once written: revisions, release items and review decisions are only
ever appended, so its live content, loaded once, is right for ever. A held release answers the
reads of `LiveRepository` with the same results in the same order and no SQL statement.

What is held is plain data: one `HeldRevision` per revision (shared by every held release that
shows it), one small record per (entry, locale) served, and the release log as arrays.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from array import array
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby, islice
from operator import attrgetter
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service.content.models import Base, Revision
from service.content.repository import (
    REVISION_FIELDS,
    LiveEntry,
    LiveFilter,
    LiveRepository,
    LocalePreference,
    ReleaseContent,
    ServedEntry,
)

T = TypeVar("T")

# the lists a revision carries, in the order `LiveRepository.release_content` numbers them
ATTACHED = ("topics", "conditions", "categories", "disclaimers", "tags", "citations", "markets")
# the table of each list, as `LiveRepository.attached` names it
_ATTACHED_BY_TABLE = {
    "revision_topics": "topics",
    "revision_conditions": "conditions",
    "revision_categories": "categories",
    "revision_disclaimers": "disclaimers",
    "revision_tags": "tags",
    "revision_citations": "citations",
    "revision_markets": "markets",
}
Strings = tuple[str, ...]
NO_FILTER = LiveFilter()


@dataclass(frozen=True, slots=True, weakref_slot=True)
class HeldRevision:
    """What partners read of one revision, and the lists it carries, each in position order."""

    id: int
    entry_id: int
    locale: str
    number: int
    content_hash: str
    title: str | None
    summary: str | None
    body_markdown: str
    body_html: str
    body_text: str
    evidence: str | None
    disclaimer_kind: str | None
    position: int | None
    topics: Strings
    conditions: Strings
    categories: Strings
    disclaimers: Strings
    tags: Strings
    citations: Strings
    markets: Strings

    def as_revision(self) -> Revision:
        """A transient ORM revision with these fields, for callers typed on the model."""
        return Revision(**{name: getattr(self, name) for name in REVISION_FIELDS})


@dataclass(frozen=True, slots=True)
class Shown:
    """One (entry, locale) as of a release: the revision it shows."""

    served: ServedEntry
    revision: HeldRevision


@dataclass(frozen=True, slots=True)
class HeldEntry:
    entry_id: int
    key: str
    kind: str
    shown: tuple[Shown, ...]  # its live locales, by locale


class _Chain:
    """A locale preference as ranks: exact 0, bare language 1, same language 2, default 3."""

    __slots__ = ("default", "language", "prefix", "requested")

    def __init__(self, locales: LocalePreference) -> None:
        self.requested = locales.requested
        self.language = locales.language
        self.prefix = f"{locales.language}-"
        self.default = locales.default

    def rank(self, locale: str) -> int:
        """The locale's rank, or -1 when it is not on the chain."""
        if locale == self.requested:
            return 0
        if locale == self.language:
            return 1
        if locale.startswith(self.prefix):
            return 2
        if locale == self.default:
            return 3
        return -1


def _choose(
    entry: HeldEntry, chain: _Chain, market: str | None, any_markets: Strings | None
) -> Shown | None:
    """The locale an entry is served in: the best ranked (then first by tag) among those of
    the chain whose revision may be shown in the market, or in one of `any_markets`."""
    best: Shown | None = None
    best_rank = 4
    for shown in entry.shown:  # by locale, so the first of a rank wins
        rank = chain.rank(shown.served.entry.locale)
        if rank < 0 or rank >= best_rank:
            continue
        markets = shown.revision.markets
        if market is not None and market not in markets:
            continue
        if any_markets is not None and not any(code in markets for code in any_markets):
            continue
        best, best_rank = shown, rank
    return best


def _shares(values: Strings, wanted: Strings) -> bool:
    return any(value in values for value in wanted)


class ReleaseMemory:
    """The live content of one release, and the release log up to it."""

    def __init__(
        self,
        release_id: int,
        published_at: datetime,
        entries: list[HeldEntry],
        approvals: dict[int, tuple[datetime, ...]],
        log: tuple[array[int], array[int], list[str]],
    ) -> None:
        self.release_id = release_id
        self.published_at = published_at
        self.entries = sorted(entries, key=lambda entry: entry.key)
        self.by_key = {entry.key: entry for entry in self.entries}
        self.by_kind: dict[str, list[HeldEntry]] = {}
        for entry in self.entries:
            self.by_kind.setdefault(entry.kind, []).append(entry)
        self.by_revision = {
            shown.revision.id: shown for entry in self.entries for shown in entry.shown
        }
        # when each live revision was approved, up to the release's time, oldest first
        self.approvals = approvals
        # every release item up to this release, in release order: release, entry, locale
        self.log_releases, self.log_entries, self.log_locales = log
        self._chosen: OrderedDict[tuple[Any, ...], list[Shown]] = OrderedDict()
        self._counts: OrderedDict[tuple[Any, ...], int] = OrderedDict()
        self._indexes: OrderedDict[
            tuple[Any, ...], tuple[list[Shown], dict[tuple[str, str], list[int]]]
        ] = OrderedDict()

    def shown(self) -> Iterator[Shown]:
        for entry in self.entries:
            yield from entry.shown

    # --- what the reads ask ---------------------------------------------------------------------

    def answers(self, where: LiveFilter) -> bool:
        """Whether the held approvals decide `where`: those up to the release's time do."""
        window = where.approved_between
        return window is None or window[1] <= self.published_at

    def live_entries(
        self,
        locales: LocalePreference,
        kind: str,
        where: LiveFilter,
        *,
        after_key: str | None = None,
        limit: int | None = None,
    ) -> list[LiveEntry]:
        if limit is not None and limit <= 0:
            return []
        chosen = self._chosen_of(kind, locales, where)
        start = 0 if after_key is None else bisect_right(chosen, after_key, key=_key_of)
        found: list[LiveEntry] = []
        for shown in self._narrowed(kind, locales, where, chosen, start):
            if self._matches(shown, where):
                found.append(shown.served.entry)
                if limit is not None and len(found) >= limit:
                    break
        return found

    def count_live_entries(self, locales: LocalePreference, kind: str, where: LiveFilter) -> int:
        key = (kind, locales, where)
        count = self._counts.get(key)
        if count is None:
            chosen = self._chosen_of(kind, locales, where)
            narrowed = self._narrowed(kind, locales, where, chosen, 0)
            count = sum(1 for shown in narrowed if self._matches(shown, where))
            _remember(self._counts, key, count, 256)
        return count

    def served_entries(
        self, locales: LocalePreference, where: LiveFilter, touched: set[int] | None
    ) -> list[ServedEntry]:
        chain = _Chain(locales)
        served: list[ServedEntry] = []
        for entry in self._candidates(None, where):
            if touched is not None and entry.entry_id not in touched:
                continue
            shown = _choose(entry, chain, where.market, where.any_markets)
            if shown is not None and self._matches(shown, where):
                served.append(shown.served)
        return served

    def live_revision(
        self, revision_id: int, kind: str, markets: Strings | None
    ) -> LiveEntry | None:
        shown = self.by_revision.get(revision_id)
        if shown is None or shown.served.kind != kind:
            return None
        if markets is not None and not _shares(shown.revision.markets, markets):
            return None
        return shown.served.entry

    def last_touched(self, after: int, locales: LocalePreference) -> dict[int, int]:
        """Per entry, the last release after `after` that published or withdrew it in a locale
        of the chain."""
        chain = _Chain(locales)
        touched: dict[int, int] = {}
        start = bisect_right(self.log_releases, after)
        for index in range(start, len(self.log_releases)):
            if chain.rank(self.log_locales[index]) >= 0:
                touched[self.log_entries[index]] = self.log_releases[index]
        return touched

    def approved_at(self, revision_id: int, until: datetime) -> datetime | None:
        """When a live revision was last approved at or before `until` (at most the release's
        time, up to which the approvals are held)."""
        for at in reversed(self.approvals.get(revision_id, ())):
            if at <= until:
                return at
        return None

    # --- filters --------------------------------------------------------------------------------

    def _candidates(self, kind: str | None, where: LiveFilter) -> Sequence[HeldEntry]:
        entries = self.entries if kind is None else self.by_kind.get(kind, [])
        if where.keys is None:
            return entries
        named = (self.by_key.get(key) for key in sorted(set(where.keys)))
        return [entry for entry in named if entry and (kind is None or entry.kind == kind)]

    def _chosen_of(self, kind: str, locales: LocalePreference, where: LiveFilter) -> list[Shown]:
        """Per entry of a kind, the (entry, locale) served, by key: kept for the next read."""
        key = (kind, locales, where.market, where.any_markets)
        if where.keys is None:
            cached = self._chosen.get(key)
            if cached is not None:
                self._chosen.move_to_end(key)
                return cached
        chain = _Chain(locales)
        chosen = [
            shown
            for entry in self._candidates(kind, where)
            if (shown := _choose(entry, chain, where.market, where.any_markets)) is not None
        ]
        if where.keys is None:
            _remember(self._chosen, key, chosen, 32)
        return chosen

    def _narrowed(
        self,
        kind: str,
        locales: LocalePreference,
        where: LiveFilter,
        chosen: list[Shown],
        start: int,
    ) -> Iterable[Shown]:
        """The served (entry, locale)s from position `start` that can match `where`, by key:
        through an index of what the served revisions carry when `where` names topics or
        conditions, so that a product page costs the same whatever the release's size."""
        if where.keys is not None or where.any_citations or where.approved_between is not None:
            return islice(chosen, start, None)
        index = self._index_of((kind, locales, where.market, where.any_markets), chosen)
        if where.any_topics or where.any_conditions:
            positions: set[int] = set()
            for topic in where.any_topics:
                positions.update(index.get(("topic", topic), ()))
            for condition in where.any_conditions:
                positions.update(index.get(("condition", condition), ()))
        elif where.topics:
            positions = set(index.get(("topic", where.topics[0]), ()))
        elif where.conditions:
            positions = set(index.get(("condition", where.conditions[0]), ()))
        else:
            return islice(chosen, start, None)
        return (chosen[position] for position in sorted(positions) if position >= start)

    def _index_of(
        self, key: tuple[Any, ...], chosen: list[Shown]
    ) -> dict[tuple[str, str], list[int]]:
        """Positions in `chosen` by each topic and condition its revisions carry."""
        index = self._indexes.get(key)
        if index is not None and index[0] is chosen:
            return index[1]
        positions: dict[tuple[str, str], list[int]] = {}
        for position, shown in enumerate(chosen):
            for topic in shown.revision.topics:
                positions.setdefault(("topic", topic), []).append(position)
            for condition in shown.revision.conditions:
                positions.setdefault(("condition", condition), []).append(position)
        _remember(self._indexes, key, (chosen, positions), 32)
        return positions

    def _matches(self, shown: Shown, where: LiveFilter) -> bool:
        """The conditions of `where` on the revision served, as the SQL reads state them."""
        revision = shown.revision
        if any(topic not in revision.topics for topic in where.topics):
            return False
        if any(condition not in revision.conditions for condition in where.conditions):
            return False
        if where.tag is not None and where.tag not in revision.tags:
            return False
        if where.evidence is not None and revision.evidence != where.evidence:
            return False
        if where.keys is not None and shown.served.entry.key not in where.keys:
            return False
        categories = revision.categories
        if where.category is not None and categories and where.category not in categories:
            return False
        relevance = bool(where.any_topics or where.any_conditions)
        cited = bool(where.any_citations)
        window = where.approved_between
        if not (relevance or cited or window is not None):
            return True
        if relevance and (
            _shares(revision.topics, where.any_topics)
            or _shares(revision.conditions, where.any_conditions)
        ):
            return True
        if cited and _shares(revision.citations, where.any_citations):
            return True
        return window is not None and any(
            window[0] < at <= window[1] for at in self.approvals.get(revision.id, ())
        )


def _key_of(shown: Shown) -> str:
    return shown.served.entry.key


def _locale_of(shown: Shown) -> str:
    return shown.served.entry.locale


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    cache[key] = value
    while len(cache) > size:
        cache.popitem(last=False)


# --- building a held release from rows ------------------------------------------------------------


class _Shared:
    """One copy of each repeated string and list while a release is built."""

    def __init__(self) -> None:
        self._tuples: dict[Strings, Strings] = {}

    @staticmethod
    def text(value: str) -> str:
        return sys.intern(value)

    def strings(self, values: Iterable[str]) -> Strings:
        found = tuple(values)
        return self._tuples.setdefault(found, found)


def build_release(
    content: ReleaseContent,
    *,
    base: ReleaseMemory | None,
    pool: weakref.WeakValueDictionary[int, HeldRevision],
) -> ReleaseMemory:
    """A held release from its rows; with `base` (the release the rows start after), what the
    base holds is reused and only what came after it is added."""
    shared = _Shared()
    revisions = _revisions(content, pool, shared)
    kinds: dict[int, tuple[str, str]] = {}
    # (entry, locale) -> what it shows: the base's record, or (revision, release) when newer
    live: dict[tuple[int, str], Shown | tuple[int, int]] = {}
    if base is not None:
        for entry in base.entries:
            kinds[entry.entry_id] = (entry.key, entry.kind)
            for shown in entry.shown:
                live[(shown.served.entry.entry_id, shown.served.entry.locale)] = shown
    for entry_id, key, kind in content.entries:
        kinds[entry_id] = (key, shared.text(kind))
    log_releases = array("l", base.log_releases if base else ())
    log_entries = array("l", base.log_entries if base else ())
    log_locales = list(base.log_locales) if base else []
    for release_id, entry_id, locale, revision_id in content.items:
        locale = shared.text(locale)
        log_releases.append(release_id)
        log_entries.append(entry_id)
        log_locales.append(locale)
        if revision_id is None:
            live.pop((entry_id, locale), None)
        else:
            live[(entry_id, locale)] = (revision_id, release_id)
    by_entry: dict[int, list[Shown]] = {}
    for (entry_id, locale), found in live.items():
        if not isinstance(found, Shown):
            key, kind = kinds[entry_id]
            revision_id, release_id = found
            served = LiveEntry(entry_id, key, locale, revision_id, release_id)
            found = Shown(ServedEntry(served, kind), revisions[revision_id])
        by_entry.setdefault(entry_id, []).append(found)
    entries = [
        HeldEntry(
            entry_id=entry_id,
            key=kinds[entry_id][0],
            kind=kinds[entry_id][1],
            shown=tuple(shown) if len(shown) == 1 else tuple(sorted(shown, key=_locale_of)),
        )
        for entry_id, shown in by_entry.items()
    ]
    return ReleaseMemory(
        content.release_id,
        content.published_at,
        entries,
        _approvals(content, base, entries),
        (log_releases, log_entries, log_locales),
    )


def _revisions(
    content: ReleaseContent,
    pool: weakref.WeakValueDictionary[int, HeldRevision],
    shared: _Shared,
) -> dict[int, HeldRevision]:
    """The revisions of the rows, taken from the pool when another held release has them."""
    # per list, per revision: its values (the rows come by list, revision and position)
    attached: list[dict[int, Strings]] = [{} for _ in ATTACHED]
    for (index, revision_id), rows in groupby(content.attached, key=lambda row: row[:2]):
        attached[index][revision_id] = shared.strings(shared.text(row[2]) for row in rows)
    found: dict[int, HeldRevision] = {}
    for row in content.revisions:
        revision_id = row[0]
        held = pool.get(revision_id)
        if held is None:
            values: list[Any] = list(row)
            for index in _SHARED_FIELDS:
                if values[index] is not None:
                    values[index] = shared.text(values[index])
            values.extend(lists.get(revision_id, ()) for lists in attached)
            held = HeldRevision(*values)
            pool[revision_id] = held
        found[revision_id] = held
    return found


def _approvals(
    content: ReleaseContent, base: ReleaseMemory | None, entries: list[HeldEntry]
) -> dict[int, tuple[datetime, ...]]:
    """Per live revision, its approvals up to the release's time: the base's, then those read."""
    live = {shown.revision.id for entry in entries for shown in entry.shown}
    approvals: dict[int, set[datetime]] = {}
    if base is not None:
        for revision_id, times in base.approvals.items():
            if revision_id in live:
                approvals[revision_id] = set(times)
    for revision_id, at in content.approvals:
        if revision_id in live:
            approvals.setdefault(revision_id, set()).add(at)
    return {revision_id: tuple(sorted(times)) for revision_id, times in approvals.items()}


# --- the process-wide holder --------------------------------------------------------------------

# the fields of a revision that many revisions repeat
_SHARED_FIELDS = tuple(
    REVISION_FIELDS.index(name) for name in ("locale", "evidence", "disclaimer_kind")
)

Loader = Callable[[int, "ReleaseMemory | None"], Awaitable["ReleaseMemory | None"]]


class ReleaseHolder:
    """The last few releases read, held whole; concurrent first reads of one release share
    one load. Revisions are shared between held releases through a pool of weak references."""

    def __init__(self, keep: int = 4) -> None:
        self.keep = keep
        # where loads read, in a transaction and on a connection of their own: a load that
        # other requests wait for must never wait for the locks, or the pooled connections,
        # of the requests that wait for it (set by the application once it has an engine;
        # without it, loads use the reader's session)
        self.sessions: async_sessionmaker[AsyncSession] | None = None
        self.pool: weakref.WeakValueDictionary[int, HeldRevision] = weakref.WeakValueDictionary()
        self._held: OrderedDict[int, ReleaseMemory] = OrderedDict()
        self._loading: dict[int, asyncio.Future[None]] = {}

    def held(self) -> list[int]:
        return list(self._held)

    async def get(self, release_id: int, load: Loader) -> ReleaseMemory | None:
        """Release `release_id`, loaded by `load(release_id, base)` when not held; None when
        the release does not exist (which is never remembered: it may be published next)."""
        while (memory := self._held.get(release_id)) is None:
            loading = self._loading.get(release_id)
            if loading is None:
                return await self._load(release_id, load)
            # a waiter cancelled must not cancel the load others wait for
            await asyncio.shield(loading)
        self._held.move_to_end(release_id)
        return memory

    async def _load(self, release_id: int, load: Loader) -> ReleaseMemory | None:
        done = asyncio.get_running_loop().create_future()
        self._loading[release_id] = done
        try:
            memory = await load(release_id, self._base_for(release_id))
            if memory is not None:
                self._held[release_id] = memory
                while len(self._held) > self.keep:
                    self._held.popitem(last=False)
                # a held release lives long and holds no cycle: moved out of the collector's
                # generations, it is not scanned again at each full collection (and is freed
                # as usual, by its reference counts, once let go)
                gc.freeze()
            return memory
        finally:
            # waiters look again: they find the release, or (after a failure) load it themselves
            del self._loading[release_id]
            done.set_result(None)

    def _base_for(self, release_id: int) -> ReleaseMemory | None:
        """The newest held release before `release_id`: a load adds only what came after it."""
        earlier = [held for held in self._held if held < release_id]
        return self._held[max(earlier)] if earlier else None


# --- LiveRepository's reads, answered from held releases ----------------------------------------


class HeldLiveRepository(LiveRepository):
    """The reads of `LiveRepository`, answered from the holder's releases. SQL runs only to
    load a release the process does not hold yet, and for what no held release can answer."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        holder: ReleaseHolder,
        markets: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(session, markets=markets)
        self.holder = holder
        # the releases this reader used: they stay alive, and their revisions pooled, until it ends
        self._used: dict[int, ReleaseMemory] = {}

    async def held(self, release_id: int) -> ReleaseMemory | None:
        memory = self._used.get(release_id)
        if memory is None:
            memory = await self.holder.get(release_id, self._load)
            if memory is not None:
                self._used[release_id] = memory
        return memory

    async def _load(self, release_id: int, base: ReleaseMemory | None) -> ReleaseMemory | None:
        since = (base.release_id, base.published_at) if base is not None else None
        if self.holder.sessions is None:
            content = await self.release_content(release_id, since=since)
        else:
            async with self.holder.sessions() as own:
                content = await LiveRepository(own).release_content(release_id, since=since)
        if content is None:
            return None
        return build_release(content, base=base, pool=self.holder.pool)

    async def live_entries(
        self,
        release_id: int,
        locales: LocalePreference,
        kind: str,
        where: LiveFilter = NO_FILTER,
        *,
        after_key: str | None = None,
        limit: int | None = None,
    ) -> list[LiveEntry]:
        memory = await self.held(release_id)
        scoped = self._scoped(where)
        if memory is None or not memory.answers(scoped):
            return await super().live_entries(
                release_id, locales, kind, where, after_key=after_key, limit=limit
            )
        return memory.live_entries(locales, kind, scoped, after_key=after_key, limit=limit)

    async def count_live_entries(
        self, release_id: int, locales: LocalePreference, kind: str, where: LiveFilter
    ) -> int:
        memory = await self.held(release_id)
        scoped = self._scoped(where)
        if memory is None or not memory.answers(scoped):
            return await super().count_live_entries(release_id, locales, kind, where)
        return memory.count_live_entries(locales, kind, scoped)

    async def live_revision(self, release_id: int, revision_id: int, kind: str) -> LiveEntry | None:
        memory = await self.held(release_id)
        if memory is None:
            return await super().live_revision(release_id, revision_id, kind)
        return memory.live_revision(revision_id, kind, self.markets)

    async def served_entries(
        self,
        release_id: int,
        locales: LocalePreference,
        where: LiveFilter = NO_FILTER,
        *,
        touched: tuple[int, int] | None = None,
    ) -> list[ServedEntry]:
        memory = await self.held(release_id)
        scoped = self._scoped(where)
        # the release log up to the window's end says which entries it touched
        window = None if touched is None else await self.held(touched[1])
        if memory is None or not memory.answers(scoped) or (touched and window is None):
            return await super().served_entries(release_id, locales, where, touched=touched)
        entries = None
        if touched is not None and window is not None:
            entries = set(window.last_touched(touched[0], locales))
        return memory.served_entries(locales, scoped, entries)

    async def last_touched(
        self, after: int, until: int, locales: LocalePreference
    ) -> dict[int, int]:
        memory = await self.held(until)
        if memory is None:
            return await super().last_touched(after, until, locales)
        return memory.last_touched(after, locales)

    async def revisions(self, revision_ids: Sequence[int]) -> dict[int, Revision]:
        for revision_id in revision_ids:
            if revision_id not in self._revisions:
                held = self.holder.pool.get(revision_id)
                if held is not None:
                    self._revisions[revision_id] = held.as_revision()
        # what no held release has (none, as long as the ids came from held reads) is read
        return await super().revisions(revision_ids)

    def _from_held(
        self, revision_ids: Sequence[int], pick: Callable[[HeldRevision], T]
    ) -> tuple[dict[int, T], list[int]]:
        """`pick` of each revision a held release has, and the ids of those none has."""
        found: dict[int, T] = {}
        missing: list[int] = []
        for revision_id in revision_ids:
            held = self.holder.pool.get(revision_id)
            if held is None:
                missing.append(revision_id)
            else:
                found[revision_id] = pick(held)
        return found, missing

    async def revision_values(self, revision_ids: Sequence[int], name: str) -> dict[int, Any]:
        found, missing = self._from_held(revision_ids, attrgetter(name))
        if missing:
            found.update(await super().revision_values(missing, name))
        return found

    async def attached(
        self, model: type[Base], column: str, revision_ids: Sequence[int]
    ) -> dict[int, list[str]]:
        table: Any = model.__table__
        name = _ATTACHED_BY_TABLE[table.name]
        found, missing = self._from_held(revision_ids, lambda held: list(getattr(held, name)))
        if missing:
            found |= await super().attached(model, column, missing)
        return {revision_id: found[revision_id] for revision_id in revision_ids}

    async def approved_at(
        self, revision_ids: Sequence[int], *, until: datetime
    ) -> dict[int, datetime]:
        found: dict[int, datetime] = {}
        missing: list[int] = []
        for revision_id in dict.fromkeys(revision_ids):
            # a release that shows the revision holds its approvals up to the release's time
            memory = next(
                (
                    memory
                    for memory in self._used.values()
                    if memory.published_at >= until and revision_id in memory.by_revision
                ),
                None,
            )
            if memory is None:
                missing.append(revision_id)
            elif (at := memory.approved_at(revision_id, until)) is not None:
                found[revision_id] = at
        if missing:
            found |= await super().approved_at(missing, until=until)
        return found
