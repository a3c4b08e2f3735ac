"""Every SQL statement of the content domain, named for what it returns."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Integer,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from service import generations
from service.content.errors import BadInput
from service.content.models import (
    Base,
    ContentLock,
    Decision,
    Entry,
    Market,
    Release,
    ReleaseItem,
    ReviewDecision,
    Revision,
    RevisionCategory,
    RevisionCitation,
    RevisionCondition,
    RevisionDisclaimer,
    RevisionMarket,
    RevisionTag,
    RevisionTopic,
)
from service.content.schemas import market_hint

EntryLocale = tuple[int, str]


@dataclass(frozen=True)
class LatestRevision:
    revision_id: int
    number: int
    content_hash: str


class ContentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_for_writing(self) -> None:
        """Queue behind any other writer until this transaction ends.

        An UPDATE is the one statement that takes a write lock on both databases: a row lock
        on PostgreSQL, the database write lock on SQLite (which then waits busy_timeout).
        It must be the transaction's first statement, so no snapshot older than the lock is read.
        """
        await self.session.execute(
            update(ContentLock)
            .where(ContentLock.name == "content")
            .values(generation=ContentLock.generation + 1)
        )

    # --- catalogs ---------------------------------------------------------------------------

    async def catalog_rows(self, model: type[Base], key_column: str) -> dict[str, Any]:
        rows = (await self.session.scalars(select(model))).all()
        return {str(getattr(row, key_column)): row for row in rows}

    async def catalog_snapshot(self, models: dict[str, tuple[type[Base], str]]) -> dict[str, Any]:
        """Every catalog as plain data, sorted by key: what a release keeps for ever."""
        snapshot: dict[str, Any] = {}
        for name, (model, key_column) in models.items():
            rows = (await self.session.scalars(select(model).order_by(key_column))).all()
            columns = [column.key for column in model.__table__.columns]
            snapshot[name] = [{column: getattr(row, column) for column in columns} for row in rows]
        return snapshot

    async def require_markets(self, codes: Sequence[str]) -> list[str]:
        """The codes, each a market of the catalog, without repeats; else one error naming
        every unknown one (with its ISO spelling when it is an old one) and the known ones."""
        known = set((await self.session.scalars(select(Market.code))).all())
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise BadInput(
                "unknown market"
                + ("s " if len(unknown) > 1 else " ")
                + ", ".join(market_hint(code) for code in unknown)
                + f"; known markets: {', '.join(sorted(known)) or 'none'}"
            )
        return list(dict.fromkeys(codes))

    async def insert_rows(self, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(model), list(rows))

    # --- entries and revisions --------------------------------------------------------------

    async def entries_by_key(self) -> dict[str, tuple[int, str]]:
        result = await self.session.execute(select(Entry.key, Entry.id, Entry.kind))
        return {key: (entry_id, kind) for key, entry_id, kind in result}

    async def insert_entries(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        if not rows:
            return {}
        result = await self.session.execute(
            insert(Entry).returning(Entry.key, Entry.id, sort_by_parameter_order=True), list(rows)
        )
        return {str(key): int(entry_id) for key, entry_id in result}

    async def latest_revisions(self) -> dict[EntryLocale, LatestRevision]:
        newest = (
            select(Revision.entry_id, Revision.locale, func.max(Revision.number).label("number"))
            .group_by(Revision.entry_id, Revision.locale)
            .subquery()
        )
        result = await self.session.execute(
            select(
                Revision.entry_id,
                Revision.locale,
                Revision.id,
                Revision.number,
                Revision.content_hash,
            ).join(
                newest,
                (Revision.entry_id == newest.c.entry_id)
                & (Revision.locale == newest.c.locale)
                & (Revision.number == newest.c.number),
            )
        )
        return {
            (entry_id, locale): LatestRevision(revision_id, number, content_hash)
            for entry_id, locale, revision_id, number, content_hash in result
        }

    async def insert_revisions(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        if not rows:
            return []
        result = await self.session.execute(
            insert(Revision).returning(Revision.id, sort_by_parameter_order=True), list(rows)
        )
        return list(result.scalars())

    async def insert_decisions(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self.insert_rows(ReviewDecision, rows)

    async def undecided_latest_revisions(self) -> list[int]:
        """The newest revision of each (entry, locale) when no decision has been recorded on it."""
        latest = await self.latest_revisions()
        ids = [revision.revision_id for revision in latest.values()]
        if not ids:
            return []
        decided = set(
            await self.session.scalars(
                select(ReviewDecision.revision_id).where(ReviewDecision.revision_id.in_(ids))
            )
        )
        return sorted(rid for rid in ids if rid not in decided)

    async def publishable_revisions(self) -> dict[EntryLocale, int]:
        """Per (entry, locale), the newest revision whose latest decision is approval, when it
        was never published and is newer than every revision that was: a withdrawal or a
        rollback stays in force until something new is approved."""
        last_decision = (
            select(ReviewDecision.revision_id, func.max(ReviewDecision.id).label("decision_id"))
            .group_by(ReviewDecision.revision_id)
            .subquery()
        )
        result = await self.session.execute(
            select(Revision.entry_id, Revision.locale, Revision.number, Revision.id)
            .join(last_decision, last_decision.c.revision_id == Revision.id)
            .join(ReviewDecision, ReviewDecision.id == last_decision.c.decision_id)
            .where(ReviewDecision.decision == Decision.APPROVED.value)
        )
        newest: dict[EntryLocale, tuple[int, int]] = {}
        for entry_id, locale, number, revision_id in result:
            current = newest.get((entry_id, locale))
            if current is None or number > current[0]:
                newest[(entry_id, locale)] = (number, revision_id)
        published = await self.session.execute(
            select(Revision.entry_id, Revision.locale, func.max(Revision.number))
            .join(ReleaseItem, ReleaseItem.revision_id == Revision.id)
            .group_by(Revision.entry_id, Revision.locale)
        )
        newest_published = {(entry_id, locale): number for entry_id, locale, number in published}
        return {
            key: revision_id
            for key, (number, revision_id) in newest.items()
            if number > newest_published.get(key, 0)
        }

    async def required_disclaimers(self, revision_ids: Iterable[int]) -> dict[int, list[str]]:
        ids = list(revision_ids)
        if not ids:
            return {}
        result = await self.session.execute(
            select(RevisionDisclaimer.revision_id, RevisionDisclaimer.disclaimer_key)
            .where(RevisionDisclaimer.revision_id.in_(ids))
            .order_by(RevisionDisclaimer.revision_id, RevisionDisclaimer.position)
        )
        required: dict[int, list[str]] = {}
        for revision_id, key in result:
            required.setdefault(revision_id, []).append(key)
        return required

    # --- releases ---------------------------------------------------------------------------

    async def latest_release_id(self) -> int:
        return int(await self.session.scalar(select(func.coalesce(func.max(Release.id), 0))) or 0)

    async def live_revisions(self, release_id: int) -> dict[EntryLocale, int]:
        """What each (entry, locale) shows as of `release_id`: a pure function of releases 1..N."""
        newest = (
            select(
                ReleaseItem.entry_id,
                ReleaseItem.locale,
                func.max(ReleaseItem.release_id).label("release_id"),
            )
            .where(ReleaseItem.release_id <= release_id)
            .group_by(ReleaseItem.entry_id, ReleaseItem.locale)
            .subquery()
        )
        result = await self.session.execute(
            select(ReleaseItem.entry_id, ReleaseItem.locale, ReleaseItem.revision_id)
            .join(
                newest,
                (ReleaseItem.entry_id == newest.c.entry_id)
                & (ReleaseItem.locale == newest.c.locale)
                & (ReleaseItem.release_id == newest.c.release_id),
            )
            .where(ReleaseItem.revision_id.is_not(None))
        )
        return {
            (entry_id, locale): revision_id
            for entry_id, locale, revision_id in result
            if revision_id is not None
        }

    async def keys_of_entries(self, entry_ids: Iterable[int]) -> dict[int, str]:
        ids = list(entry_ids)
        if not ids:
            return {}
        result = await self.session.execute(select(Entry.id, Entry.key).where(Entry.id.in_(ids)))
        return {int(entry_id): str(key) for entry_id, key in result}

    async def insert_release(self, release: Release, items: Sequence[Mapping[str, Any]]) -> None:
        # this process's caches of "latest" look again as soon as the release is committed
        generations.RELEASES.after_commit(self.session)
        self.session.add(release)
        await self.session.flush()
        await self.insert_rows(ReleaseItem, items)


# --- the read side: what is live as of a release ----------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveEntry:
    """An entry as a reader sees it: the revision live as of a release, in the locale served."""

    entry_id: int
    key: str
    locale: str
    revision_id: int
    release_id: int  # the release that made this revision live


@dataclass(frozen=True)
class LocalePreference:
    """The locales that may serve a request, best first: exact, language, same language, default."""

    requested: str
    language: str
    default: str


@dataclass(frozen=True)
class LiveFilter:
    """Conditions on the revision served; every field set must hold."""

    # only revisions cleared for the market may serve: it narrows the locale chain itself
    market: str | None = None
    # a caller's scope when no market is asked for: cleared for at least one of these
    any_markets: tuple[str, ...] | None = None
    topics: tuple[str, ...] = ()  # each must be among the revision's topics
    conditions: tuple[str, ...] = ()
    tag: str | None = None
    evidence: str | None = None
    keys: tuple[str, ...] | None = None
    # a product page: the revision suits the category (or names none) ...
    category: str | None = None
    # ... and matches at least one of these (when any is given): shares a topic, a condition
    # or a citation, or was approved within (after, until]
    any_topics: tuple[str, ...] = ()
    any_conditions: tuple[str, ...] = ()
    any_citations: tuple[str, ...] = ()
    approved_between: tuple[datetime, datetime] | None = None


@dataclass(frozen=True, slots=True)
class ServedEntry:
    """An entry of any kind as a reader sees it, with its kind."""

    entry: LiveEntry
    kind: str


class LiveRepository:
    """Every read of published content. Reads on one session are serialised: the GraphQL
    layer resolves fields concurrently, and an AsyncSession takes one statement at a time."""

    def __init__(self, session: AsyncSession, *, markets: tuple[str, ...] | None = None) -> None:
        """`markets`: the caller may read only revisions cleared for one of these (a partner
        key's scope); every read below applies it, so no query can forget it."""
        self.session = session
        self.markets = markets
        self._lock = asyncio.Lock()
        # revisions never change, so within a request each is read at most once, whether the
        # domain (ranking a product page) or a DataLoader (a field) asks first
        self._revisions: dict[int, Revision] = {}
        self._attached: dict[tuple[str, int], list[str]] = {}

    async def _all(self, statement: Any, params: dict[str, Any] | None = None) -> list[Any]:
        async with self._lock:
            return list((await self.session.execute(statement, params)).all())

    async def release(self, release_id: int | None) -> Release | None:
        statement = select(Release)
        if release_id is None:
            statement = statement.order_by(Release.id.desc()).limit(1)
        else:
            statement = statement.where(Release.id == release_id)
        rows = await self._all(statement)
        return rows[0][0] if rows else None

    async def latest_release_id(self) -> int:
        rows = await self._all(select(func.coalesce(func.max(Release.id), 0)))
        return int(rows[0][0])

    async def live_entries(
        self,
        release_id: int,
        locales: LocalePreference,
        kind: str,
        where: LiveFilter = LiveFilter(),
        *,
        after_key: str | None = None,
        limit: int | None = None,
    ) -> list[LiveEntry]:
        """Live entries matching `where`, ordered by key; a page of them with after_key/limit."""
        where = self._scoped(where)
        shape = _FilterShape.of(where, paged=after_key is not None, limited=limit is not None)
        params = _live_parameters(release_id, locales, kind, where)
        params |= {"after_key": after_key, "limit": limit}
        rows = await self._all(_live_statement(shape, count=False), params)
        return [LiveEntry(*row) for row in rows]

    def _scoped(self, where: LiveFilter) -> LiveFilter:
        if self.markets is None or where.market is not None:
            return where  # an asked-for market was checked against the scope already
        return replace(where, any_markets=self.markets)

    async def live_revision(self, release_id: int, revision_id: int, kind: str) -> LiveEntry | None:
        """The entry a revision of `kind` shows, when it is what its (entry, locale) shows as of
        `release_id`; None when it never was published, or something else was live by then."""
        later = aliased(ReleaseItem)
        newest = (
            select(func.max(later.release_id))
            .where(
                later.entry_id == ReleaseItem.entry_id,
                later.locale == ReleaseItem.locale,
                later.release_id <= release_id,
            )
            .scalar_subquery()
        )
        rows = await self._all(
            select(
                Entry.id,
                Entry.key,
                ReleaseItem.locale,
                ReleaseItem.revision_id,
                ReleaseItem.release_id,
            )
            .join(Entry, Entry.id == ReleaseItem.entry_id)
            .where(
                ReleaseItem.revision_id == revision_id,
                Entry.kind == kind,
                ReleaseItem.release_id == newest,
                *(
                    []
                    if self.markets is None
                    else [
                        select(RevisionMarket.revision_id)
                        .where(
                            RevisionMarket.revision_id == ReleaseItem.revision_id,
                            RevisionMarket.market_code.in_(self.markets),
                        )
                        .exists()
                    ]
                ),
            )
        )
        return LiveEntry(*rows[0]) if rows else None

    async def served_entries(
        self,
        release_id: int,
        locales: LocalePreference,
        where: LiveFilter = LiveFilter(),
        *,
        touched: tuple[int, int] | None = None,
    ) -> list[ServedEntry]:
        """Every entry served as of a release, of every kind, ordered by key. With
        `touched=(after, until)`, only entries published or withdrawn in a locale of the
        reader's chain by a release in (after, until]: the only ones whose text can differ
        between those two releases, found in the release log rather than by comparing all."""
        where = self._scoped(where)
        shape = _FilterShape.of(
            where, paged=False, limited=False, all_kinds=True, touched=touched is not None
        )
        params = _live_parameters(release_id, locales, "", where)
        after, until = touched or (0, 0)
        params |= {"touched_after": after, "touched_until": until}
        rows = await self._all(_live_statement(shape, count=False), params)
        return [ServedEntry(LiveEntry(*row[:5]), row[5]) for row in rows]

    async def last_touched(
        self, after: int, until: int, locales: LocalePreference
    ) -> dict[int, int]:
        """Per entry, the last release in (after, until] that published or withdrew it in a
        locale of the reader's chain."""
        statement = _touched_statement()
        params = _live_parameters(until, locales, "", LiveFilter())
        params |= {"touched_after": after, "touched_until": until}
        return {
            int(entry_id): int(release_id)
            for entry_id, release_id in await self._all(statement, params)
        }

    async def releases(self, release_ids: Sequence[int]) -> list[Release]:
        if not release_ids:
            return []
        rows = await self._all(
            select(Release).where(Release.id.in_(sorted(set(release_ids)))).order_by(Release.id)
        )
        return [row[0] for row in rows]

    async def count_live_entries(
        self, release_id: int, locales: LocalePreference, kind: str, where: LiveFilter
    ) -> int:
        where = self._scoped(where)
        shape = _FilterShape.of(where, paged=False, limited=False)
        params = _live_parameters(release_id, locales, kind, where)
        rows = await self._all(_live_statement(shape, count=True), params)
        return int(rows[0][0])

    async def revisions(self, revision_ids: Sequence[int]) -> dict[int, Revision]:
        missing = [rid for rid in dict.fromkeys(revision_ids) if rid not in self._revisions]
        if missing:
            rows = await self._all(select(Revision).where(Revision.id.in_(missing)))
            self._revisions.update((row[0].id, row[0]) for row in rows)
        return {rid: self._revisions[rid] for rid in revision_ids if rid in self._revisions}

    async def revision_values(self, revision_ids: Sequence[int], name: str) -> dict[int, Any]:
        """One field of each revision (what an order needs), as `revisions` reads it."""
        revisions = await self.revisions(revision_ids)
        return {rid: getattr(revision, name) for rid, revision in revisions.items()}

    async def attached(
        self, model: type[Base], column: str, revision_ids: Sequence[int]
    ) -> dict[int, list[str]]:
        """The ordered list (topics, citations ...) each revision carries in `model`."""
        table: Any = model.__table__
        name = table.name
        missing = [rid for rid in dict.fromkeys(revision_ids) if (name, rid) not in self._attached]
        if missing:
            rows = await self._all(
                select(table.c.revision_id, table.c[column])
                .where(table.c.revision_id.in_(missing))
                .order_by(table.c.revision_id, table.c.position)
            )
            for rid in missing:
                self._attached[(name, rid)] = []
            for revision_id, value in rows:
                self._attached[(name, revision_id)].append(value)
        return {rid: self._attached[(name, rid)] for rid in revision_ids}

    async def attached_topics(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionTopic, "topic_key", revision_ids)

    async def attached_conditions(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionCondition, "condition_key", revision_ids)

    async def attached_categories(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionCategory, "category_key", revision_ids)

    async def attached_disclaimers(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionDisclaimer, "disclaimer_key", revision_ids)

    async def attached_tags(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionTag, "tag", revision_ids)

    async def attached_citations(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionCitation, "citation_key", revision_ids)

    async def attached_markets(self, revision_ids: Sequence[int]) -> dict[int, list[str]]:
        return await self.attached(RevisionMarket, "market_code", revision_ids)

    async def approved_at(
        self, revision_ids: Sequence[int], *, until: datetime
    ) -> dict[int, datetime]:
        """When each revision was last approved at or before `until` (a release's time), so
        a re-review shows only in releases published after it."""
        if not revision_ids:
            return {}
        rows = await self._all(
            select(ReviewDecision.revision_id, func.max(ReviewDecision.created_at))
            .where(
                ReviewDecision.revision_id.in_(sorted(set(revision_ids))),
                ReviewDecision.decision == Decision.APPROVED.value,
                ReviewDecision.created_at <= until,
            )
            .group_by(ReviewDecision.revision_id)
        )
        return {
            int(revision_id): at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            for revision_id, at in rows
            if at is not None
        }

    async def release_content(
        self, release_id: int, *, since: tuple[int, datetime] | None = None
    ) -> ReleaseContent | None:
        """What a release shows, as rows, in six statements whatever its size; None when there
        is no such release. With `since` (a release already read, and its time), only what
        releases after it added: their items, entries, revisions and what these carry, and
        every approval made in between."""
        rows = await self._all(select(Release.created_at).where(Release.id == release_id))
        if not rows:
            return None
        created_at = rows[0][0]
        after = since[0] if since else 0
        window = (ReleaseItem.release_id > after) & (ReleaseItem.release_id <= release_id)
        items = await self._all(
            select(
                ReleaseItem.release_id,
                ReleaseItem.entry_id,
                ReleaseItem.locale,
                ReleaseItem.revision_id,
            )
            .where(window)
            .order_by(ReleaseItem.release_id, ReleaseItem.entry_id, ReleaseItem.locale)
        )
        entries = await self._all(
            select(Entry.id, Entry.key, Entry.kind).where(
                Entry.id.in_(select(ReleaseItem.entry_id).where(window))
            )
        )
        if since is None:
            # the revisions live as of the release, not every one it ever showed
            revision_ids: Any = _live_revision_ids(release_id)
        else:
            revision_ids = select(ReleaseItem.revision_id).where(
                window, ReleaseItem.revision_id.is_not(None)
            )
        links = [
            select(
                literal(index).label("what"),
                table.c.revision_id,
                table.c[column].label("value"),
                table.c.position,
            ).where(table.c.revision_id.in_(revision_ids))
            for index, (table, column) in enumerate(_ATTACHED_TABLES)
        ]
        attached = await self._all(union_all(*links).order_by("what", "revision_id", "position"))
        approved = [
            ReviewDecision.decision == Decision.APPROVED.value,
            ReviewDecision.created_at <= created_at,
        ]
        if since is None:
            approved.append(ReviewDecision.revision_id.in_(revision_ids))
        else:
            approved.append(
                or_(
                    ReviewDecision.created_at > since[1],
                    ReviewDecision.revision_id.in_(revision_ids),
                )
            )
        approvals = await self._all(
            select(ReviewDecision.revision_id, ReviewDecision.created_at)
            .where(*approved)
            .order_by(ReviewDecision.revision_id, ReviewDecision.created_at)
        )
        revisions = await self._all(select(*_REVISION_COLUMNS).where(Revision.id.in_(revision_ids)))
        return ReleaseContent(
            release_id=release_id,
            published_at=_aware(created_at),
            items=items,
            entries=entries,
            attached=attached,
            approvals=[(revision_id, _aware(at)) for revision_id, at in approvals],
            revisions=revisions,
        )


# the tables that attach ordered lists to a revision, in the order `release_content` numbers them
_ATTACHED_TABLES: tuple[tuple[Any, str], ...] = (
    (RevisionTopic.__table__, "topic_key"),
    (RevisionCondition.__table__, "condition_key"),
    (RevisionCategory.__table__, "category_key"),
    (RevisionDisclaimer.__table__, "disclaimer_key"),
    (RevisionTag.__table__, "tag"),
    (RevisionCitation.__table__, "citation_key"),
    (RevisionMarket.__table__, "market_code"),
)
# what of a revision partners read, in the order of `ReleaseContent.revisions`
REVISION_FIELDS = (
    "id",
    "entry_id",
    "locale",
    "number",
    "content_hash",
    "title",
    "summary",
    "body_markdown",
    "body_html",
    "body_text",
    "evidence",
    "disclaimer_kind",
    "position",
)
_REVISION_COLUMNS = tuple(getattr(Revision, name) for name in REVISION_FIELDS)


@dataclass(frozen=True)
class ReleaseContent:
    """The rows a release (or what it added to an earlier one) is held from."""

    release_id: int
    published_at: datetime
    items: list[Any]  # (release, entry, locale, revision or None), in release order
    entries: list[Any]  # (id, key, kind)
    attached: list[Any]  # (index in _ATTACHED_TABLES, revision, value), in position order
    approvals: list[tuple[int, datetime]]  # (revision, approved at), oldest first
    revisions: list[Any]  # REVISION_FIELDS


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written in UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _live_revision_ids(release_id: int) -> Any:
    """The revisions live as of a release: the newest item of each (entry, locale) at or
    below it, when that item is not a withdrawal."""
    newest = (
        select(
            ReleaseItem.entry_id,
            ReleaseItem.locale,
            func.max(ReleaseItem.release_id).label("release_id"),
        )
        .where(ReleaseItem.release_id <= release_id)
        .group_by(ReleaseItem.entry_id, ReleaseItem.locale)
        .subquery()
    )
    return (
        select(ReleaseItem.revision_id)
        .join(
            newest,
            (ReleaseItem.entry_id == newest.c.entry_id)
            & (ReleaseItem.locale == newest.c.locale)
            & (ReleaseItem.release_id == newest.c.release_id),
        )
        .where(ReleaseItem.revision_id.is_not(None))
    )


# --- the statement behind every read: built once per shape of filter, then reused ---------------


@dataclass(frozen=True)
class _FilterShape:
    """Which conditions a LiveFilter sets: statements are cached by this, values are bound."""

    market: bool
    any_markets: bool
    topics: int
    conditions: int
    tag: bool
    evidence: bool
    keys: bool
    category: bool
    relevance: bool
    cited: bool
    approved: bool
    paged: bool
    limited: bool
    all_kinds: bool = False
    touched: bool = False

    @classmethod
    def of(
        cls,
        where: LiveFilter,
        *,
        paged: bool,
        limited: bool,
        all_kinds: bool = False,
        touched: bool = False,
    ) -> _FilterShape:
        return cls(
            market=where.market is not None,
            any_markets=where.any_markets is not None,
            topics=len(where.topics),
            conditions=len(where.conditions),
            tag=where.tag is not None,
            evidence=where.evidence is not None,
            keys=where.keys is not None,
            category=where.category is not None,
            relevance=bool(where.any_topics or where.any_conditions),
            cited=bool(where.any_citations),
            approved=where.approved_between is not None,
            paged=paged,
            limited=limited,
            all_kinds=all_kinds,
            touched=touched,
        )


def _live_parameters(
    release_id: int, locales: LocalePreference, kind: str, where: LiveFilter
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "release_id": release_id,
        "kind": kind,
        "requested": locales.requested,
        "language": locales.language,
        "default_locale": locales.default,
        "same_language": f"{locales.language}-%",
        "market": where.market,
        "any_markets": list(where.any_markets or ()),
        "tag": where.tag,
        "evidence": where.evidence,
        "keys": list(where.keys or ()),
        "category": where.category,
        "any_topics": list(where.any_topics),
        "any_conditions": list(where.any_conditions),
        "any_citations": list(where.any_citations),
        "approved_after": where.approved_between[0] if where.approved_between else None,
        "approved_until": where.approved_between[1] if where.approved_between else None,
    }
    params |= {f"topic_{i}": topic for i, topic in enumerate(where.topics)}
    params |= {f"condition_{i}": condition for i, condition in enumerate(where.conditions)}
    return params


def _in_chain(locale: Any) -> Any:
    """Whether a locale is on the reader's chain: exact, bare language, same language, default."""
    return or_(
        locale.in_([bindparam("requested"), bindparam("language"), bindparam("default_locale")]),
        locale.like(bindparam("same_language")),
    )


def _touched_entries(entry_id: Any) -> Any:
    """Whether a release in (touched_after, touched_until] published or withdrew the entry in
    a locale of the reader's chain."""
    item = aliased(ReleaseItem)
    return entry_id.in_(
        select(item.entry_id).where(
            item.release_id > bindparam("touched_after"),
            item.release_id <= bindparam("touched_until"),
            _in_chain(item.locale),
        )
    )


@lru_cache(maxsize=1)
def _touched_statement() -> Any:
    return (
        select(ReleaseItem.entry_id, func.max(ReleaseItem.release_id))
        .where(
            ReleaseItem.release_id > bindparam("touched_after"),
            ReleaseItem.release_id <= bindparam("touched_until"),
            _in_chain(ReleaseItem.locale),
        )
        .group_by(ReleaseItem.entry_id)
    )


@lru_cache(maxsize=256)
def _live_statement(shape: _FilterShape, *, count: bool) -> Any:
    """Per entry of a kind, the revision live as of a release in the best available locale
    (exact, bare language, same language, default), with the filter's conditions on it.

    A market narrows the candidates before the locale is chosen, not after: a translation
    not cleared for the market gives way to the next locale in the chain that is, so an
    entry drops out only when no locale of the chain may be shown there."""
    newest = (
        select(
            ReleaseItem.entry_id,
            ReleaseItem.locale,
            func.max(ReleaseItem.release_id).label("release_id"),
        )
        .where(ReleaseItem.release_id <= bindparam("release_id"))
        .group_by(ReleaseItem.entry_id, ReleaseItem.locale)
        .subquery()
    )
    candidates: list[Any] = [ReleaseItem.revision_id.is_not(None)]
    if not shape.all_kinds:
        candidates.append(Entry.kind == bindparam("kind"))
    if shape.touched:
        candidates.append(_touched_entries(ReleaseItem.entry_id))
    if shape.market:
        candidates.append(
            select(RevisionMarket.revision_id)
            .where(
                RevisionMarket.revision_id == ReleaseItem.revision_id,
                RevisionMarket.market_code == bindparam("market"),
            )
            .exists()
        )
    if shape.any_markets:
        candidates.append(
            select(RevisionMarket.revision_id)
            .where(
                RevisionMarket.revision_id == ReleaseItem.revision_id,
                RevisionMarket.market_code.in_(bindparam("any_markets", expanding=True)),
            )
            .exists()
        )
    same_language = ReleaseItem.locale.like(bindparam("same_language"))
    rank = case(
        (ReleaseItem.locale == bindparam("requested"), 0),
        (ReleaseItem.locale == bindparam("language"), 1),
        (same_language, 2),
        else_=3,
    )
    chosen = (
        select(
            Entry.id.label("entry_id"),
            Entry.key.label("key"),
            ReleaseItem.locale.label("locale"),
            ReleaseItem.revision_id.label("revision_id"),
            ReleaseItem.release_id.label("release_id"),
            Entry.kind.label("kind"),
            func.row_number()
            .over(partition_by=Entry.id, order_by=(rank, ReleaseItem.locale))
            .label("preference"),
        )
        .join(
            newest,
            (ReleaseItem.entry_id == newest.c.entry_id)
            & (ReleaseItem.locale == newest.c.locale)
            & (ReleaseItem.release_id == newest.c.release_id),
        )
        .join(Entry, Entry.id == ReleaseItem.entry_id)
        .where(*candidates, _in_chain(ReleaseItem.locale))
        .subquery()
    )
    revision = chosen.c.revision_id

    def attached(model: Any, column: Any, value: Any) -> Any:
        matches = column.in_(value) if value.expanding else column == value
        return select(model.revision_id).where(model.revision_id == revision, matches).exists()

    conditions: list[Any] = [chosen.c.preference == 1]
    conditions.extend(
        attached(RevisionTopic, RevisionTopic.topic_key, bindparam(f"topic_{i}"))
        for i in range(shape.topics)
    )
    conditions.extend(
        attached(RevisionCondition, RevisionCondition.condition_key, bindparam(f"condition_{i}"))
        for i in range(shape.conditions)
    )
    if shape.tag:
        conditions.append(attached(RevisionTag, RevisionTag.tag, bindparam("tag")))
    if shape.evidence:
        conditions.append(
            select(Revision.id)
            .where(Revision.id == revision, Revision.evidence == bindparam("evidence"))
            .exists()
        )
    if shape.keys:
        conditions.append(chosen.c.key.in_(bindparam("keys", expanding=True)))
    if shape.category:
        has_categories = select(RevisionCategory.revision_id).where(
            RevisionCategory.revision_id == revision
        )
        conditions.append(
            or_(
                ~has_categories.exists(),
                attached(RevisionCategory, RevisionCategory.category_key, bindparam("category")),
            )
        )
    any_of: list[Any] = []
    if shape.relevance:
        any_of.append(
            attached(
                RevisionTopic, RevisionTopic.topic_key, bindparam("any_topics", expanding=True)
            )
        )
        any_of.append(
            attached(
                RevisionCondition,
                RevisionCondition.condition_key,
                bindparam("any_conditions", expanding=True),
            )
        )
    if shape.cited:
        any_of.append(
            attached(
                RevisionCitation,
                RevisionCitation.citation_key,
                bindparam("any_citations", expanding=True),
            )
        )
    if shape.approved:
        any_of.append(
            select(ReviewDecision.id)
            .where(
                ReviewDecision.revision_id == revision,
                ReviewDecision.decision == Decision.APPROVED.value,
                ReviewDecision.created_at > bindparam("approved_after"),
                ReviewDecision.created_at <= bindparam("approved_until"),
            )
            .exists()
        )
    if any_of:
        conditions.append(or_(*any_of))
    if count:
        return select(func.count()).select_from(chosen).where(*conditions)
    columns = [
        chosen.c.entry_id, chosen.c.key, chosen.c.locale, chosen.c.revision_id, chosen.c.release_id
    ]  # fmt: skip
    if shape.all_kinds:
        columns.append(chosen.c.kind)
    statement = select(*columns).where(*conditions)
    if shape.paged:
        statement = statement.where(chosen.c.key > bindparam("after_key"))
    statement = statement.order_by(chosen.c.key)
    if shape.limited:
        statement = statement.limit(bindparam("limit", type_=Integer))
    return statement
