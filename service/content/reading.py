"""Reading published content as of a release: locales, catalogs, filters, product pages."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import langcodes
from sqlalchemy.ext.asyncio import AsyncSession

from service.content.errors import BadInput, Forbidden, NotFound
from service.content.memory import HeldLiveRepository, HeldRevision, ReleaseHolder
from service.content.models import DisclaimerKind, EntryKind, Release
from service.content.repository import (
    LiveEntry,
    LiveFilter,
    LiveRepository,
    LocalePreference,
    ServedEntry,
)
from service.content.schemas import market_hint
from service.content.served import note_served

MAX_PAGE = 100
DISCLAIMER_ORDER = {kind.value: index for index, kind in enumerate(DisclaimerKind)}


@lru_cache(maxsize=1024)
def parse_locale(value: str | None, default: str) -> LocalePreference:
    """A caller's locale, checked: an unknown or malformed tag is an error, never a fallback."""
    tag = default if value is None else value
    if "_" in tag or not langcodes.tag_is_valid(tag):
        raise BadInput(
            f"unknown or malformed locale {tag!r}: use a BCP 47 tag such as 'en-US' or 'fr-FR'"
        )
    canonical = str(langcodes.standardize_tag(tag))
    return LocalePreference(requested=canonical, language=canonical.split("-")[0], default=default)


def localized(texts: dict[str, str], locales: LocalePreference) -> str:
    """The best text for the locale preference, by the same rules as entries."""
    for candidate in (locales.requested, locales.language):
        if candidate in texts:
            return texts[candidate]
    for locale in sorted(texts):
        if locale.split("-")[0] == locales.language:
            return texts[locale]
    return texts.get(locales.default) or texts[sorted(texts)[0]]


def citation_url(citation: dict[str, Any]) -> str:
    """Where to read a citation: the DOI resolver, or PubMed without a DOI."""
    if citation.get("doi"):
        return f"https://doi.org/{citation['doi']}"
    return f"https://pubmed.ncbi.nlm.nih.gov/{citation['pmid']}/"


@dataclass(frozen=True)
class Catalog:
    """The catalogs of one release, keyed for lookups."""

    topics: dict[str, dict[str, Any]]
    conditions: dict[str, dict[str, Any]]
    categories: dict[str, dict[str, Any]]
    markets: dict[str, dict[str, Any]]
    citations: dict[str, dict[str, Any]]

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any]) -> Catalog:
        def index(name: str, key: str = "key") -> dict[str, dict[str, Any]]:
            return {item[key]: item for item in snapshot.get(name, [])}

        return cls(
            topics=index("topics"),
            conditions=index("conditions"),
            categories=index("categories"),
            markets=index("markets", "code"),
            citations=index("citations"),
        )

    def require(self, what: str, value: str) -> str:
        known: dict[str, dict[str, Any]] = getattr(self, what)
        if value not in known:
            singular = {"categories": "category"}.get(what, what.removesuffix("s"))
            shown = market_hint(value) if what == "markets" else repr(value)
            raise BadInput(
                f"unknown {singular} {shown}; known {what}: {', '.join(sorted(known)) or 'none'}"
            )
        return value


@dataclass(frozen=True)
class ReleaseView:
    id: int
    note: str
    published_at: datetime
    catalog: Catalog


class ReleaseCache:
    """Releases never change once written, so each is read from the database once per process:
    its number, note, time and catalogs (a view, many kept), and the content it shows (held
    whole in `memory`, for the last few releases read)."""

    def __init__(self, size: int = 64, *, memories: int = 4) -> None:
        self.size = size
        self._views: OrderedDict[int, ReleaseView] = OrderedDict()
        self.memory = ReleaseHolder(keep=memories)

    def get(self, release_id: int) -> ReleaseView | None:
        view = self._views.get(release_id)
        if view is not None:
            self._views.move_to_end(release_id)
        return view

    def put(self, view: ReleaseView) -> None:
        self._views[view.id] = view
        while len(self._views) > self.size:
            self._views.popitem(last=False)


@dataclass(frozen=True)
class Audience:
    """Who a whole-release read is for: the locale chain entries are served in and the market
    that narrows it. The change feed and the bundles take their filter from here and nowhere
    else, so a caller's scope (a partner key limited to some markets) narrows them in one place.
    """

    locales: LocalePreference
    market: str | None = None

    def live_filter(self) -> LiveFilter:
        return LiveFilter(market=self.market)


@dataclass(frozen=True)
class Page:
    entries: list[LiveEntry]
    total: int
    has_next: bool
    has_previous: bool


@dataclass(frozen=True)
class SnippetCriteria:
    topic: str | None = None
    condition: str | None = None
    tag: str | None = None
    evidence: str | None = None
    market: str | None = None


@dataclass(frozen=True)
class ProductCriteria:
    category: str | None = None
    concerns: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductSelection:
    """What fills a product page: entries in display order; disclaimers deduplicated."""

    snippets: list[LiveEntry]
    takeaways: list[LiveEntry]
    disclaimers: list[LiveEntry]


@dataclass(frozen=True)
class ReadScope:
    """What a partner key may read: content cleared for its markets, asked for in its locales
    (the first is its default). Asking outside them is refused, never answered with less."""

    partner: str
    markets: tuple[str, ...]
    locales: tuple[str, ...]


class Reader:
    """Every read a partner can make, each one as of a release and in a locale."""

    def __init__(
        self,
        session: AsyncSession,
        *,
        default_locale: str,
        releases: ReleaseCache | None = None,
        scope: ReadScope | None = None,
        latest: int | None = None,
        memory: bool = True,
    ) -> None:
        """`latest`: the latest release, when the caller has already read it for this request
        (then it costs no statement). `memory`: read releases from those `releases` holds in
        memory; without it every read is SQL (for a transaction that staged a release of its
        own, which must never be held, and to check the memory against)."""
        self.releases = releases or ReleaseCache()
        markets = scope.markets if scope else None
        self.live: LiveRepository = (
            HeldLiveRepository(session, holder=self.releases.memory, markets=markets)
            if memory
            else LiveRepository(session, markets=markets)
        )
        # revisions shown by a held release, read at once (revisions never change)
        self._held = self.releases.memory.pool if memory else None
        self.default_locale = default_locale
        self.scope = scope
        self.latest = latest

    def held_revision(self, revision_id: int) -> HeldRevision | None:
        """The revision with its lists, when a held release shows it; None when it must be
        read (then the loaders read it)."""
        return self._held.get(revision_id) if self._held is not None else None

    def locales(self, locale: str | None) -> LocalePreference:
        if self.scope is None:
            return parse_locale(locale, self.default_locale)
        preference = parse_locale(locale or self.scope.locales[0], self.default_locale)
        if preference.requested not in self.scope.locales:
            raise Forbidden(
                f"this key ({self.scope.partner}) reads the locales "
                f"{', '.join(self.scope.locales)}, not {preference.requested!r}"
            )
        return preference

    def market(self, release: ReleaseView, market: str) -> str:
        """A market a caller asked for: known in the release, and within the caller's scope."""
        release.catalog.require("markets", market)
        if self.scope is not None and market not in self.scope.markets:
            raise Forbidden(
                f"this key ({self.scope.partner}) reads the markets "
                f"{', '.join(self.scope.markets)}, not {market!r}"
            )
        return market

    async def release(self, release_id: int | None) -> ReleaseView | None:
        """Release `release_id`, or the latest when None; None when there is no such release."""
        if release_id is not None:
            if release_id < 1:
                raise BadInput(f"release must be 1 or more, not {release_id}")
            cached = self.releases.get(release_id)
            if cached is not None:
                return cached
        else:
            latest = await self.latest_release_id()
            if latest == 0:
                return None
            cached = self.releases.get(latest)
            if cached is not None:
                return cached
            release_id = latest
        row = await self.live.release(release_id)
        return self._view(row) if row is not None else None

    async def latest_release_id(self) -> int:
        """The latest release's number, 0 before the first."""
        if self.latest is not None:
            return self.latest
        return await self.live.latest_release_id()

    async def releases_by_id(self, release_ids: list[int]) -> dict[int, ReleaseView]:
        """Several releases by number, those not cached yet read in one statement; numbers
        with no release are left out."""
        views = {rid: view for rid in release_ids if (view := self.releases.get(rid))}
        missing = [rid for rid in release_ids if rid not in views]
        for row in await self.live.releases(missing):
            views[row.id] = self._view(row)
        return views

    def _view(self, row: Release) -> ReleaseView:
        # SQLite hands back naive datetimes; they were written in UTC
        published_at = row.created_at
        if published_at.tzinfo is None:
            published_at = published_at.replace(tzinfo=UTC)
        view = ReleaseView(row.id, row.note, published_at, Catalog.from_snapshot(row.catalog))
        self.releases.put(view)
        return view

    def audience(self, release: ReleaseView, locale: str | None, market: str | None) -> Audience:
        """The caller's locale and market, checked as every query checks them."""
        locales = self.locales(locale)
        if market is not None:
            self.market(release, market)
        return Audience(locales, market)

    async def served(self, release: ReleaseView, audience: Audience) -> list[ServedEntry]:
        """Every entry of every kind that `audience` is served as of `release`, by key."""
        served = await self.live.served_entries(
            release.id, audience.locales, audience.live_filter()
        )
        note_served(item.entry.key for item in served)
        return served

    async def require_release(self, release_id: int | None) -> ReleaseView:
        view = await self.release(release_id)
        if view is not None:
            return view
        latest = await self.latest_release_id()
        if release_id is None or latest == 0:
            raise NotFound("no release has been published yet")
        raise NotFound(f"release {release_id} does not exist; the latest is {latest}")

    # --- entries ----------------------------------------------------------------------------

    async def snippet(
        self, release: ReleaseView, key: str, locales: LocalePreference
    ) -> LiveEntry | None:
        found = await self.live.live_entries(
            release.id, locales, EntryKind.SNIPPET.value, LiveFilter(keys=(key,))
        )
        _note(found)
        return found[0] if found else None

    async def live_revision(
        self, release: ReleaseView, revision_id: int, kind: EntryKind
    ) -> LiveEntry | None:
        """Revision `revision_id` of an entry of `kind`, when it is live as of `release`."""
        entry = await self.live.live_revision(release.id, revision_id, kind.value)
        if entry is not None:
            _note([entry])
        return entry

    def _snippet_filter(self, release: ReleaseView, criteria: SnippetCriteria) -> LiveFilter:
        catalog = release.catalog
        return LiveFilter(
            market=criteria.market and self.market(release, criteria.market),
            topics=(catalog.require("topics", criteria.topic),) if criteria.topic else (),
            conditions=(catalog.require("conditions", criteria.condition),)
            if criteria.condition
            else (),
            tag=criteria.tag,
            evidence=criteria.evidence,
        )

    async def snippets(
        self,
        release: ReleaseView,
        locales: LocalePreference,
        criteria: SnippetCriteria,
        *,
        first: int,
        after: str | None,
    ) -> Page:
        if not 0 <= first <= MAX_PAGE:
            raise BadInput(f"first must be between 0 and {MAX_PAGE}, not {first}")
        where = self._snippet_filter(release, criteria)
        kind = EntryKind.SNIPPET.value
        entries = await self.live.live_entries(
            release.id, locales, kind, where, after_key=after, limit=first + 1
        )
        total = await self.live.count_live_entries(release.id, locales, kind, where)
        _note(entries[:first])
        return Page(
            entries=entries[:first],
            total=total,
            has_next=len(entries) > first,
            has_previous=after is not None,
        )

    async def takeaways(
        self, release: ReleaseView, locales: LocalePreference, topic: str | None
    ) -> list[LiveEntry]:
        where = LiveFilter(topics=(release.catalog.require("topics", topic),) if topic else ())
        found = await self.live.live_entries(release.id, locales, EntryKind.TAKEAWAY.value, where)
        _note(found)
        return found

    async def ordered_takeaways(self, entries: list[LiveEntry]) -> list[LiveEntry]:
        """Takeaways grouped by topic (by key), in their order within it."""
        ids = [entry.revision_id for entry in entries]
        positions = await self.live.revision_values(ids, "position")
        topics = await self.live.attached_topics(ids)
        return sorted(
            entries,
            key=lambda e: (topics[e.revision_id][0], positions[e.revision_id] or 0, e.key),
        )

    async def disclaimers(
        self,
        release: ReleaseView,
        locales: LocalePreference,
        market: str,
        keys: tuple[str, ...] | None = None,
    ) -> list[LiveEntry]:
        """Disclaimers that apply in `market`, medical advice first, then by kind and key."""
        found = await self._disclaimers(release, locales, market, keys)
        _note(found)
        return found

    async def _disclaimers(
        self,
        release: ReleaseView,
        locales: LocalePreference,
        market: str,
        keys: tuple[str, ...] | None,
    ) -> list[LiveEntry]:
        where = LiveFilter(market=self.market(release, market), keys=keys)
        found = await self.live.live_entries(release.id, locales, EntryKind.DISCLAIMER.value, where)
        kinds = await self.live.revision_values(
            [entry.revision_id for entry in found], "disclaimer_kind"
        )

        def order(entry: LiveEntry) -> tuple[int, str]:
            kind = kinds[entry.revision_id] or ""
            return (DISCLAIMER_ORDER.get(kind, len(DISCLAIMER_ORDER)), entry.key)

        return sorted(found, key=order)

    async def product_page(
        self,
        release: ReleaseView,
        locales: LocalePreference,
        market: str,
        product: ProductCriteria,
    ) -> ProductSelection:
        """The snippets and takeaways that fit a product, and the disclaimers they require.

        A snippet fits when it is shown in the market, suits the product's category (or names
        none) and shares a topic or a concern with the product (when the product names any).
        Snippets come most relevant first (most shared topics and concerns), then by key;
        takeaways follow the topics of the snippets shown, in their order within the topic.
        """
        catalog = release.catalog
        self.market(release, market)
        category = product.category and catalog.require("categories", product.category)
        concerns = tuple(catalog.require("conditions", value) for value in product.concerns)
        topics = tuple(catalog.require("topics", value) for value in product.topics)
        snippets = await self.live.live_entries(
            release.id,
            locales,
            EntryKind.SNIPPET.value,
            LiveFilter(
                market=market, category=category, any_topics=topics, any_conditions=concerns
            ),
        )
        ids = [entry.revision_id for entry in snippets]
        snippet_topics = await self.live.attached_topics(ids)
        snippet_conditions = await self.live.attached_conditions(ids)

        def relevance(entry: LiveEntry) -> tuple[int, str]:
            shared = len(set(snippet_topics[entry.revision_id]) & set(topics)) + len(
                set(snippet_conditions[entry.revision_id]) & set(concerns)
            )
            return (-shared, entry.key)

        snippets.sort(key=relevance)
        shown_topics = list(topics)
        for entry in snippets:
            shown_topics.extend(
                t for t in snippet_topics[entry.revision_id] if t not in shown_topics
            )
        takeaways = await self._takeaways_for_topics(release, locales, market, shown_topics)
        disclaimers = await self._required_disclaimers(
            release, locales, market, category, snippets + takeaways
        )
        _note(snippets + takeaways + disclaimers)
        return ProductSelection(snippets, takeaways, disclaimers)

    async def _takeaways_for_topics(
        self,
        release: ReleaseView,
        locales: LocalePreference,
        market: str,
        topics: list[str],
    ) -> list[LiveEntry]:
        if not topics:
            return []
        found = await self.live.live_entries(
            release.id,
            locales,
            EntryKind.TAKEAWAY.value,
            LiveFilter(market=market, any_topics=tuple(topics)),
        )
        positions = await self.live.revision_values(
            [entry.revision_id for entry in found], "position"
        )
        their_topics = await self.live.attached_topics([entry.revision_id for entry in found])
        order = {topic: index for index, topic in enumerate(topics)}

        def place(entry: LiveEntry) -> tuple[int, int, str]:
            topic = their_topics[entry.revision_id][0]
            return (
                order.get(topic, len(order)),
                positions[entry.revision_id] or 0,
                entry.key,
            )

        return sorted(found, key=place)

    async def _required_disclaimers(
        self,
        release: ReleaseView,
        locales: LocalePreference,
        market: str,
        category: str | None,
        shown: list[LiveEntry],
    ) -> list[LiveEntry]:
        required = await self.live.attached_disclaimers([entry.revision_id for entry in shown])
        keys = tuple(sorted({key for keys in required.values() for key in keys}))
        if not keys:
            return []
        candidates = await self._disclaimers(release, locales, market, keys)
        categories = await self.live.attached_categories([e.revision_id for e in candidates])
        return [
            entry
            for entry in candidates
            # a category-specific disclaimer is kept when the category is unknown: showing the
            # FDA statement on a page that did not need it is safer than omitting it
            if category is None
            or not categories[entry.revision_id]
            or category in categories[entry.revision_id]
        ]


def _note(entries: list[LiveEntry]) -> None:
    """The entries an answer shows, for the response's cache tags."""
    note_served(entry.key for entry in entries)
