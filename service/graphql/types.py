"""GraphQL types: thin views of published revisions; every lookup goes through a DataLoader."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from service.content import models
from service.content.models import Revision
from service.content.reading import Catalog, ReleaseView, localized
from service.content.repository import LiveEntry, LocalePreference
from service.graphql.context import Info


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


@strawberry.type(description="A numbered, append-only publication of content.")
class Release:
    id: int
    note: str
    published_at: datetime

    @classmethod
    def of(cls, view: ReleaseView) -> Release:
        return cls(id=view.id, note=view.note, published_at=view.published_at)


@strawberry.type(description="A subject content is filed under.")
class Topic:
    key: str
    name: str
    description: str | None

    @classmethod
    def of(cls, catalog: Catalog, key: str, locales: LocalePreference) -> Topic:
        item = catalog.topics[key]
        descriptions = item.get("descriptions") or {}
        return cls(
            key=key,
            name=localized(item["names"], locales),
            description=localized(descriptions, locales) if descriptions else None,
        )


@strawberry.type(description="A skin condition or concern.")
class Condition:
    key: str
    name: str

    @classmethod
    def of(cls, catalog: Catalog, key: str, locales: LocalePreference) -> Condition:
        return cls(key=key, name=localized(catalog.conditions[key]["names"], locales))


@strawberry.type(description="A product category a partner sells.")
class Category:
    key: str
    name: str

    @classmethod
    def of(cls, catalog: Catalog, key: str, locales: LocalePreference) -> Category:
        return cls(key=key, name=localized(catalog.categories[key]["names"], locales))


@strawberry.type(description="Where content may be shown, and in which locales.")
class Market:
    code: str
    name: str
    default_locale: str
    locales: list[str]


@strawberry.type(description="A published reference; every scientific statement cites one.")
class Citation:
    id: str
    title: str
    authors: str
    journal: str
    year: int
    doi: str | None
    pmid: str | None
    study_type: str

    @strawberry.field(description="Where to read it: the DOI resolver, or PubMed without a DOI.")
    def url(self) -> str:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"

    @classmethod
    def of(cls, item: dict[str, Any]) -> Citation:
        return cls(
            id=item["key"],
            title=item["title"],
            authors=item["authors"],
            journal=item["journal"],
            year=item["year"],
            doi=item.get("doi"),
            pmid=item.get("pmid"),
            study_type=item["study_type"],
        )


@strawberry.type(description="A body rendered when its revision was created.")
class Body:
    markdown: str
    html: str = strawberry.field(description="Sanitised HTML from an allow-list of tags.")
    text: str = strawberry.field(description="Plain text, for meta descriptions and previews.")


@strawberry.type
class Published:
    """What every published item shares; read from its revision through the loaders.
    (A base for the concrete types, not itself part of the schema.)"""

    key: str
    locale: str = strawberry.field(description="The locale actually served, after fallback.")
    _entry: strawberry.Private[LiveEntry]
    _scope: strawberry.Private[Scope]

    async def _revision(self, info: Info) -> Revision:
        return await info.context.loaders.revision_by_id.load(self._entry.revision_id)

    async def _citations(self, info: Info) -> list[Citation]:
        keys = await info.context.loaders.citations_by_revision.load(self._entry.revision_id)
        catalog = self._scope.release.catalog
        return [Citation.of(catalog.citations[key]) for key in keys]

    @strawberry.field(description="The revision number of this entry in this locale.")
    async def version(self, info: Info) -> int:
        return (await self._revision(info)).number

    @strawberry.field(description="The release that published this version.")
    async def release(self, info: Info) -> Release:
        view = await info.context.loaders.release_by_id.load(self._entry.release_id)
        return Release.of(view)


@strawberry.type(description="A titled explanation of a few paragraphs.")
class Snippet(Published):
    @strawberry.field
    async def title(self, info: Info) -> str:
        return (await self._revision(info)).title or ""

    @strawberry.field
    async def summary(self, info: Info) -> str:
        return (await self._revision(info)).summary or ""

    @strawberry.field
    async def body(self, info: Info) -> Body:
        revision = await self._revision(info)
        return Body(
            markdown=revision.body_markdown, html=revision.body_html, text=revision.body_text
        )

    @strawberry.field
    async def topics(self, info: Info) -> list[Topic]:
        keys = await info.context.loaders.topics_by_revision.load(self._entry.revision_id)
        return [Topic.of(self._scope.release.catalog, key, self._scope.locales) for key in keys]

    @strawberry.field
    async def conditions(self, info: Info) -> list[Condition]:
        keys = await info.context.loaders.conditions_by_revision.load(self._entry.revision_id)
        return [Condition.of(self._scope.release.catalog, key, self._scope.locales) for key in keys]

    @strawberry.field
    async def tags(self, info: Info) -> list[str]:
        return await info.context.loaders.tags_by_revision.load(self._entry.revision_id)

    @strawberry.field
    async def evidence(self, info: Info) -> Evidence:
        return Evidence((await self._revision(info)).evidence)

    @strawberry.field
    async def citations(self, info: Info) -> list[Citation]:
        return await self._citations(info)

    @strawberry.field(description="The markets this snippet may be shown in.")
    async def markets(self, info: Info) -> list[str]:
        return await info.context.loaders.markets_by_revision.load(self._entry.revision_id)

    @strawberry.field(description="The disclaimers this snippet requires in that market.")
    async def disclaimers(self, info: Info, market: str) -> list[Disclaimer]:
        scope = self._scope
        scope.release.catalog.require("markets", market)
        keys = await info.context.loaders.disclaimer_keys_by_revision.load(self._entry.revision_id)
        found = await info.context.loaders.live_disclaimer_by_key.load_many(
            [(scope.release.id, scope.locales, market, key) for key in keys]
        )
        return [Disclaimer(key=e.key, locale=e.locale, _entry=e, _scope=scope) for e in found if e]

    @strawberry.field(description="SHA-256 of the content: equal hashes, equal content.")
    async def content_hash(self, info: Info) -> str:
        return (await self._revision(info)).content_hash


@strawberry.type(description="A short statement, ordered within its topic.")
class Takeaway(Published):
    @strawberry.field(description="Order within its topic, from 1.")
    async def position(self, info: Info) -> int:
        return (await self._revision(info)).position or 0

    @strawberry.field
    async def text(self, info: Info) -> str:
        return (await self._revision(info)).body_text

    @strawberry.field
    async def topic(self, info: Info) -> Topic:
        keys = await info.context.loaders.topics_by_revision.load(self._entry.revision_id)
        return Topic.of(self._scope.release.catalog, keys[0], self._scope.locales)

    @strawberry.field
    async def citations(self, info: Info) -> list[Citation]:
        return await self._citations(info)


@strawberry.type(description="Legal text that depends on the market.")
class Disclaimer(Published):
    @strawberry.field
    async def kind(self, info: Info) -> DisclaimerKind:
        return DisclaimerKind((await self._revision(info)).disclaimer_kind)

    @strawberry.field
    async def title(self, info: Info) -> str:
        return (await self._revision(info)).title or ""

    @strawberry.field
    async def text(self, info: Info) -> str:
        return (await self._revision(info)).body_text

    @strawberry.field
    async def html(self, info: Info) -> str:
        return (await self._revision(info)).body_html

    @strawberry.field(description="The markets where this text applies.")
    async def markets(self, info: Info) -> list[str]:
        return await info.context.loaders.markets_by_revision.load(self._entry.revision_id)


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
