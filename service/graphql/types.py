"""GraphQL types: thin views of published revisions, read from a held release at once, or
through a DataLoader (one lookup per batch) when no held release shows them.

Every `id` names one immutable version (Relay's Node): two objects of a type with the same id
have the same fields, whatever release and locale they were read in, so a client's normalised
cache (Apollo, urql, Relay) never mixes releases. `key` is the identifier that stays the same.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, ClassVar, Self, TypeVar

import strawberry
from strawberry import relay
from strawberry.dataloader import DataLoader
from strawberry.utils.await_maybe import AwaitableOrValue

from service.content import changes, models
from service.content.errors import BadInput
from service.content.memory import HeldRevision
from service.content.models import EntryKind, Revision
from service.content.reading import ReleaseView, citation_url, localized, parse_locale
from service.content.repository import LiveEntry, LocalePreference
from service.graphql.context import Info
from service.graphql.dataloaders import Loaders

T = TypeVar("T")


@strawberry.enum(description="How strong the evidence behind a snippet is.")
class Evidence(Enum):
    ESTABLISHED = "established"
    MODERATE = "moderate"
    LIMITED = "limited"
    EMERGING = "emerging"


@strawberry.enum(description="What a disclaimer is for.")
class DisclaimerKind(Enum):
    NOT_MEDICAL_ADVICE = models.DisclaimerKind.NOT_MEDICAL_ADVICE.value
    FDA_STRUCTURE_FUNCTION = models.DisclaimerKind.FDA_STRUCTURE_FUNCTION.value
    COSMETIC = models.DisclaimerKind.COSMETIC.value


@dataclass(frozen=True)
class Scope:
    """What every item of a response is read against: one release, one locale preference."""

    release: ReleaseView
    locales: LocalePreference

    @property
    def node_id(self) -> str:
        return f"{self.release.id}:{self.locales.requested}"


# --- node ids: what each id names, and reading it back ---------------------------------------


class MalformedId(ValueError):
    """A node id this API never hands out."""


# ids of releases and revisions are 32-bit integers in both databases
_NUMBER = re.compile(r"[1-9][0-9]{0,9}")
_MAX_NUMBER = 2**31 - 1


def _number(text: str) -> int:
    if not _NUMBER.fullmatch(text) or int(text) > _MAX_NUMBER:
        raise MalformedId(text)
    return int(text)


def _parts(node_id: str, count: int) -> list[str]:
    parts = node_id.split(":", count - 1)
    # a NULL is in no key, and PostgreSQL cannot compare one with any text
    if len(parts) != count or not all(parts) or "\x00" in node_id:
        raise MalformedId(node_id)
    return parts


def _locales(info: Info, tag: str) -> LocalePreference:
    try:
        locales = info.context.reader.locales(tag)
    except BadInput:
        raise MalformedId(tag) from None
    # ids carry the canonical tag, so one version has one id
    if locales.requested != tag:
        raise MalformedId(tag)
    return locales


async def _release(info: Info, number: str) -> ReleaseView | None:
    return await info.context.reader.release(_number(number))


async def _localized_scope(info: Info, node_id: str) -> tuple[Scope | None, str]:
    """The scope and key of a localized catalog item's id: "release:locale:key"."""
    number, tag, key = _parts(node_id, 3)
    locales = _locales(info, tag)
    view = await _release(info, number)
    return (Scope(view, locales) if view else None), key


async def _released(info: Info, node_id: str) -> tuple[ReleaseView | None, str]:
    """The release and key of a catalog item's id that no locale changes: "release:key"."""
    number, key = _parts(node_id, 2)
    return await _release(info, number), key


# --- releases and catalogs ------------------------------------------------------------------


@strawberry.type(description="A numbered, append-only publication of content.")
class Release(relay.Node):
    number: int = strawberry.field(
        description="The release number: what every `release` argument takes."
    )
    note: str
    published_at: datetime

    @classmethod
    def resolve_id(cls, root: Self, *, info: strawberry.Info) -> str:
        # a release never changes once published: its number is enough
        return str(root.number)

    @classmethod
    def of(cls, view: ReleaseView) -> Release:
        return cls(number=view.id, note=view.note, published_at=view.published_at)

    @property
    def fragment_key(self) -> Hashable:
        """What this item's fields read (fragments.py): a published release never changes, so
        its number. (A preview's staged release is never kept: previews keep nothing.)"""
        return self.number

    @classmethod
    async def refetch(cls, info: Info, node_id: str) -> Release | None:
        view = await _release(info, node_id)
        return cls.of(view) if view else None


@strawberry.type
class LocalizedCatalogItem(relay.Node):
    """A catalog item whose name depends on the release's catalog and on the locale asked for:
    its id is "release:locale:key". (A base for the concrete types, not part of the schema.)"""

    key: str
    name: str
    _scope: strawberry.Private[Scope]
    _catalog: ClassVar[str]

    @classmethod
    def resolve_id(cls, root: Self, *, info: strawberry.Info) -> str:
        return f"{root._scope.node_id}:{root.key}"

    @classmethod
    def of(cls, scope: Scope, key: str) -> Self:
        item = getattr(scope.release.catalog, cls._catalog)[key]
        return cls(key=key, name=localized(item["names"], scope.locales), _scope=scope)

    @classmethod
    async def refetch(cls, info: Info, node_id: str) -> Self | None:
        scope, key = await _localized_scope(info, node_id)
        if scope is None or key not in getattr(scope.release.catalog, cls._catalog):
            return None
        return cls.of(scope, key)


@strawberry.type(description="A subject content is filed under.")
class Topic(LocalizedCatalogItem):
    _catalog = "topics"

    @strawberry.field
    def description(self) -> str | None:
        descriptions = self._scope.release.catalog.topics[self.key].get("descriptions") or {}
        return localized(descriptions, self._scope.locales) if descriptions else None


@strawberry.type(description="A skin condition or concern.")
class Condition(LocalizedCatalogItem):
    _catalog = "conditions"


@strawberry.type(description="A product category a partner sells.")
class Category(LocalizedCatalogItem):
    _catalog = "categories"


@strawberry.type(description="Where content may be shown, and in which locales.")
class Market(relay.Node):
    code: str
    name: str
    default_locale: str
    locales: list[str]
    _release: strawberry.Private[int]

    @classmethod
    def resolve_id(cls, root: Self, *, info: strawberry.Info) -> str:
        return f"{root._release}:{root.code}"

    @classmethod
    def of(cls, release: ReleaseView, code: str) -> Market:
        item = release.catalog.markets[code]
        return cls(
            code=code,
            name=item["name"],
            default_locale=item["default_locale"],
            locales=list(item["locales"]),
            _release=release.id,
        )

    @classmethod
    async def refetch(cls, info: Info, node_id: str) -> Market | None:
        view, code = await _released(info, node_id)
        if view is None or code not in view.catalog.markets:
            return None
        return cls.of(view, code)


@strawberry.type(description="A published reference; every scientific statement cites one.")
class Citation(relay.Node):
    key: str = strawberry.field(description="The catalog key: the same in every release.")
    title: str
    authors: str
    journal: str
    year: int
    doi: str | None
    pmid: str | None
    study_type: str
    _release: strawberry.Private[int]

    @strawberry.field(description="Where to read it: the DOI resolver, or PubMed without a DOI.")
    def url(self) -> str:
        return citation_url({"doi": self.doi, "pmid": self.pmid})

    @classmethod
    def resolve_id(cls, root: Self, *, info: strawberry.Info) -> str:
        return f"{root._release}:{root.key}"

    @classmethod
    def of(cls, release: ReleaseView, key: str) -> Citation:
        item: dict[str, Any] = release.catalog.citations[key]
        return cls(
            key=key,
            title=item["title"],
            authors=item["authors"],
            journal=item["journal"],
            year=item["year"],
            doi=item.get("doi"),
            pmid=item.get("pmid"),
            study_type=item["study_type"],
            _release=release.id,
        )

    @classmethod
    async def refetch(cls, info: Info, node_id: str) -> Citation | None:
        view, key = await _released(info, node_id)
        if view is None or key not in view.catalog.citations:
            return None
        return cls.of(view, key)


@strawberry.type(description="A body rendered when its revision was created.")
class Body:
    markdown: str
    html: str = strawberry.field(description="Sanitised HTML from an allow-list of tags.")
    text: str = strawberry.field(description="Plain text, for meta descriptions and previews.")


@strawberry.type
class Published(relay.Node):
    """What every published item shares; read from its revision through the loaders.
    (A base for the concrete types, not itself part of the schema.)"""

    key: str
    locale: str = strawberry.field(description="The locale actually served, after fallback.")
    _entry: strawberry.Private[LiveEntry]
    _scope: strawberry.Private[Scope]
    _kind: ClassVar[EntryKind]

    @classmethod
    def resolve_id(cls, root: Self, *, info: strawberry.Info) -> str:
        # "release:revision:locale": the revision, as read in a release (which says what made
        # it live and which catalog names, citations and disclaimers come with it) and for a
        # requested locale (which decides how those names read)
        scope = root._scope
        return f"{scope.release.id}:{root._entry.revision_id}:{scope.locales.requested}"

    @classmethod
    async def refetch(cls, info: Info, node_id: str) -> Self | None:
        number, revision, tag = _parts(node_id, 3)
        locales = _locales(info, tag)
        view = await _release(info, number)
        if view is None:
            return None
        entry = await info.context.reader.live_revision(view, _number(revision), cls._kind)
        if entry is None:
            return None
        return cls(key=entry.key, locale=entry.locale, _entry=entry, _scope=Scope(view, locales))

    @property
    def fragment_key(self) -> Hashable:
        """What this item's fields read besides the operation and the caller (fragments.py):
        the release it is read in, the locale preference and the revision served. Plain
        numbers and strings: the key is hashed at every use, and a dataclass hashes in Python."""
        locales = self._scope.locales
        entry = self._entry
        return (
            self._scope.release.id,
            locales.requested,
            locales.language,
            locales.default,
            entry.entry_id,
            entry.key,
            entry.locale,
            entry.revision_id,
            entry.release_id,
        )

    def _read(self, info: Info, pick: Callable[[Revised], T]) -> AwaitableOrValue[T]:
        """`pick` of this entry's revision: at once when a held release shows it (most reads),
        else once the loader has read it."""
        held = info.context.reader.held_revision(self._entry.revision_id)
        if held is not None:
            return pick(held)
        return self._read_later(info, pick)

    async def _read_later(self, info: Info, pick: Callable[[Revised], T]) -> T:
        revision = await info.context.loaders.revision_by_id.load(self._entry.revision_id)
        return pick(revision)

    def _listed(
        self,
        info: Info,
        held: Callable[[HeldRevision], tuple[str, ...]],
        loader: Callable[[Loaders], DataLoader[int, list[str]]],
        make: Callable[[str], T],
    ) -> AwaitableOrValue[list[T]]:
        """One of the lists the revision carries (topics, citations, ...), each key made an
        item: at once when a held release shows the revision, else through its loader."""
        revision = info.context.reader.held_revision(self._entry.revision_id)
        if revision is not None:
            return [make(key) for key in held(revision)]
        return self._listed_later(loader(info.context.loaders), make)

    async def _listed_later(
        self, loader: DataLoader[int, list[str]], make: Callable[[str], T]
    ) -> list[T]:
        return [make(key) for key in await loader.load(self._entry.revision_id)]

    def _citations(self, info: Info) -> AwaitableOrValue[list[Citation]]:
        release = self._scope.release
        return self._listed(
            info,
            lambda revision: revision.citations,
            lambda loaders: loaders.citations_by_revision,
            lambda key: Citation.of(release, key),
        )

    def _markets(self, info: Info) -> AwaitableOrValue[list[str]]:
        return self._listed(
            info,
            lambda revision: revision.markets,
            lambda loaders: loaders.markets_by_revision,
            str,
        )

    @strawberry.field(
        description="The revision number of this entry in this locale.", graphql_type=int
    )
    def version(self, info: Info) -> AwaitableOrValue[int]:
        return self._read(info, _number_of)

    @strawberry.field(
        description="When a reviewer last approved this revision, as of the release read: "
        "null only for content published before reviews were recorded."
    )
    async def reviewed_at(self, info: Info) -> datetime | None:
        release = self._scope.release
        return await info.context.loaders.approved_at_by_revision.load(
            (self._entry.revision_id, release.published_at)
        )

    @strawberry.field(description="The release that published this version.", graphql_type=Release)
    def release(self, info: Info) -> AwaitableOrValue[Release]:
        view = info.context.reader.releases.get(self._entry.release_id)
        if view is not None:
            return Release.of(view)
        return self._release_later(info)

    async def _release_later(self, info: Info) -> Release:
        view = await info.context.loaders.release_by_id.load(self._entry.release_id)
        return Release.of(view)


# what `Published._read` picks from: a held revision, or one the loader read
Revised = HeldRevision | Revision


def _number_of(revision: Revised) -> int:
    return revision.number


def _title_of(revision: Revised) -> str:
    return revision.title or ""


def _text_of(revision: Revised) -> str:
    return revision.body_text


def _html_of(revision: Revised) -> str:
    return revision.body_html


@strawberry.type(description="A titled explanation of a few paragraphs.")
class Snippet(Published):
    _kind = EntryKind.SNIPPET

    @strawberry.field(graphql_type=str)
    def title(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, _title_of)

    @strawberry.field(graphql_type=str)
    def summary(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, lambda revision: revision.summary or "")

    @strawberry.field(graphql_type=Body)
    def body(self, info: Info) -> AwaitableOrValue[Body]:
        return self._read(
            info,
            lambda revision: Body(
                markdown=revision.body_markdown, html=revision.body_html, text=revision.body_text
            ),
        )

    @strawberry.field(graphql_type=list[Topic])
    def topics(self, info: Info) -> AwaitableOrValue[list[Topic]]:
        scope = self._scope
        return self._listed(
            info,
            lambda revision: revision.topics,
            lambda loaders: loaders.topics_by_revision,
            lambda key: Topic.of(scope, key),
        )

    @strawberry.field(graphql_type=list[Condition])
    def conditions(self, info: Info) -> AwaitableOrValue[list[Condition]]:
        scope = self._scope
        return self._listed(
            info,
            lambda revision: revision.conditions,
            lambda loaders: loaders.conditions_by_revision,
            lambda key: Condition.of(scope, key),
        )

    @strawberry.field(graphql_type=list[str])
    def tags(self, info: Info) -> AwaitableOrValue[list[str]]:
        return self._listed(
            info, lambda revision: revision.tags, lambda loaders: loaders.tags_by_revision, str
        )

    @strawberry.field(graphql_type=Evidence)
    def evidence(self, info: Info) -> AwaitableOrValue[Evidence]:
        return self._read(info, lambda revision: Evidence(revision.evidence))

    @strawberry.field(graphql_type=list[Citation])
    def citations(self, info: Info) -> AwaitableOrValue[list[Citation]]:
        return self._citations(info)

    @strawberry.field(
        description="The markets this snippet may be shown in.", graphql_type=list[str]
    )
    def markets(self, info: Info) -> AwaitableOrValue[list[str]]:
        return self._markets(info)

    @strawberry.field(description="The disclaimers this snippet requires in that market.")
    async def disclaimers(self, info: Info, market: str) -> list[Disclaimer]:
        scope = self._scope
        info.context.reader.market(scope.release, market)
        keys = await info.context.loaders.disclaimer_keys_by_revision.load(self._entry.revision_id)
        found = await info.context.loaders.live_disclaimer_by_key.load_many(
            [(scope.release.id, scope.locales, market, key) for key in keys]
        )
        return [Disclaimer(key=e.key, locale=e.locale, _entry=e, _scope=scope) for e in found if e]

    @strawberry.field(
        description="SHA-256 of the content: equal hashes, equal content.", graphql_type=str
    )
    def content_hash(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, lambda revision: revision.content_hash)


@strawberry.type(description="A short statement, ordered within its topic.")
class Takeaway(Published):
    _kind = EntryKind.TAKEAWAY

    @strawberry.field(description="Order within its topic, from 1.", graphql_type=int)
    def position(self, info: Info) -> AwaitableOrValue[int]:
        return self._read(info, lambda revision: revision.position or 0)

    @strawberry.field(graphql_type=str)
    def text(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, _text_of)

    @strawberry.field(graphql_type=Topic)
    def topic(self, info: Info) -> AwaitableOrValue[Topic]:
        scope = self._scope
        topics = self._listed(
            info,
            lambda revision: revision.topics[:1],
            lambda loaders: loaders.topics_by_revision,
            lambda key: Topic.of(scope, key),
        )
        if isinstance(topics, list):
            return topics[0]
        return _first(topics)

    @strawberry.field(graphql_type=list[Citation])
    def citations(self, info: Info) -> AwaitableOrValue[list[Citation]]:
        return self._citations(info)


async def _first(items: Awaitable[list[T]]) -> T:
    return (await items)[0]


@strawberry.type(description="Legal text that depends on the market.")
class Disclaimer(Published):
    _kind = EntryKind.DISCLAIMER

    @classmethod
    def resolve_id(cls, root: Self, *, info: strawberry.Info) -> str:
        # "release:revision", the release that made the revision live: none of a disclaimer's
        # fields depends on the release it is read in or on the locale asked for
        return f"{root._entry.release_id}:{root._entry.revision_id}"

    @classmethod
    async def refetch(cls, info: Info, node_id: str) -> Self | None:
        number, revision = _parts(node_id, 2)
        view = await _release(info, number)
        if view is None:
            return None
        reader = info.context.reader
        entry = await reader.live_revision(view, _number(revision), cls._kind)
        if entry is None or entry.release_id != view.id:
            return None
        # the locale it was served in, which fallback may have chosen outside a key's locales
        scope = Scope(view, parse_locale(entry.locale, reader.default_locale))
        return cls(key=entry.key, locale=entry.locale, _entry=entry, _scope=scope)

    @strawberry.field(graphql_type=DisclaimerKind)
    def kind(self, info: Info) -> AwaitableOrValue[DisclaimerKind]:
        return self._read(info, lambda revision: DisclaimerKind(revision.disclaimer_kind))

    @strawberry.field(graphql_type=str)
    def title(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, _title_of)

    @strawberry.field(graphql_type=str)
    def text(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, _text_of)

    @strawberry.field(graphql_type=str)
    def html(self, info: Info) -> AwaitableOrValue[str]:
        return self._read(info, _html_of)

    @strawberry.field(description="The markets where this text applies.", graphql_type=list[str])
    def markets(self, info: Info) -> AwaitableOrValue[list[str]]:
        return self._markets(info)


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class SnippetEdge:
    cursor: str
    node: Snippet


@strawberry.type(description="A page of snippets, ordered by key.")
class SnippetConnection:
    edges: list[SnippetEdge]
    page_info: PageInfo
    total_count: int

    @strawberry.field(description="The snippets of this page, without cursors.")
    def nodes(self) -> list[Snippet]:
        return [edge.node for edge in self.edges]


@strawberry.input(description="Every field given must hold.")
class SnippetFilter:
    topic: str | None = None
    condition: str | None = None
    tag: str | None = None
    evidence: Evidence | None = None
    market: str | None = None


@strawberry.input(description="What a partner knows about a product; every field is optional.")
class ProductInput:
    category: str | None = strawberry.field(
        default=None, description="A product category, for instance supplement or skincare."
    )
    concerns: list[str] = strawberry.field(
        default_factory=list, description="Skin conditions or concerns the product addresses."
    )
    topics: list[str] = strawberry.field(default_factory=list)


@strawberry.type(description="Everything a product page shows, from one release.")
class ProductPage:
    release: Release
    market: str
    locale: str = strawberry.field(description="The locale asked for, in canonical form.")
    snippets: list[Snippet]
    takeaways: list[Takeaway]
    disclaimers: list[Disclaimer]


# --- the change feed --------------------------------------------------------------------------


@strawberry.enum(description="What happened to an entry between two releases, for one reader.")
class ChangeType(Enum):
    CREATED = changes.ChangeType.CREATED.value
    UPDATED = changes.ChangeType.UPDATED.value
    WITHDRAWN = changes.ChangeType.WITHDRAWN.value


@strawberry.enum(description="The kind of an entry.")
class ContentKind(Enum):
    SNIPPET = EntryKind.SNIPPET.value
    TAKEAWAY = EntryKind.TAKEAWAY.value
    DISCLAIMER = EntryKind.DISCLAIMER.value


ChangedItem = Annotated[
    Snippet | Takeaway | Disclaimer,
    strawberry.union("ChangedItem", description="A published item, as its own query returns it."),
]


@strawberry.type(
    description="One entry whose served content changed: created, updated, or withdrawn "
    "(a tombstone with its key and kind). No id: it is part of one answer."
)
class EntryChange:
    key: str
    kind: ContentKind
    type: ChangeType
    locale: str = strawberry.field(
        description="The locale served as of `until`, after fallback; for WITHDRAWN, the one "
        "served before."
    )
    _change: strawberry.Private[changes.EntryChange]
    _scope: strawberry.Private[Scope]

    @strawberry.field(
        description="The last release in the range that changed what this reader is served."
    )
    async def release(self, info: Info) -> Release:
        view = await info.context.loaders.release_by_id.load(self._change.release_id)
        return Release.of(view)

    @strawberry.field(
        description="The item as served as of `until`, with the fields and id its own query "
        "gives; null when WITHDRAWN."
    )
    def item(self) -> ChangedItem | None:
        served = self._change.served
        if served is None:
            return None
        key, locale, scope = served.key, served.locale, self._scope
        if self._change.kind is EntryKind.SNIPPET:
            return Snippet(key=key, locale=locale, _entry=served, _scope=scope)
        if self._change.kind is EntryKind.TAKEAWAY:
            return Takeaway(key=key, locale=locale, _entry=served, _scope=scope)
        return Disclaimer(key=key, locale=locale, _entry=served, _scope=scope)

    @classmethod
    def of(cls, change: changes.EntryChange, scope: Scope) -> EntryChange:
        return cls(
            key=change.key,
            kind=ContentKind(change.kind.value),
            type=ChangeType(change.type.value),
            locale=change.locale,
            _change=change,
            _scope=scope,
        )


@strawberry.type
class ChangeEdge:
    cursor: str
    node: EntryChange


@strawberry.type(description="A page of changes, ordered by key.")
class ChangeConnection:
    edges: list[ChangeEdge]
    page_info: PageInfo
    total_count: int
    next_since: int = strawberry.field(
        description="The release these changes run to: pass it as `since` next time."
    )

    @strawberry.field(description="The changes of this page, without cursors.")
    def nodes(self) -> list[EntryChange]:
        return [edge.node for edge in self.edges]
