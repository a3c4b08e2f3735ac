"""The Query root: every field reads as of one release (the latest unless pinned)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

import strawberry
from strawberry import relay

from service.content.changes import change_page, change_range
from service.content.errors import BadInput
from service.content.reading import (
    MAX_PAGE,
    ProductCriteria,
    ReleaseView,
    SnippetCriteria,
)
from service.content.repository import LiveEntry
from service.graphql.context import Info
from service.graphql.types import (
    Category,
    ChangeConnection,
    ChangeEdge,
    Citation,
    Condition,
    Disclaimer,
    EntryChange,
    MalformedId,
    Market,
    PageInfo,
    ProductInput,
    ProductPage,
    Release,
    Scope,
    Snippet,
    SnippetConnection,
    SnippetEdge,
    SnippetFilter,
    Takeaway,
    Topic,
)

CURSOR_PREFIX = "snippet:"
CHANGE_CURSOR_PREFIX = "change:"
DEFAULT_PAGE = 20
RELEASE_HELP = "Read as of this release; the latest when omitted."
LOCALE_HELP = "A BCP 47 tag; falls back to its language, then to the default (en-US)."
LocaleArg = Annotated[str | None, strawberry.argument(description=LOCALE_HELP)]
ReleaseArg = Annotated[int | None, strawberry.argument(description=RELEASE_HELP)]

# what `node(id:)` can read back, by the type name an id carries
REFETCH: dict[str, Callable[[Info, str], Awaitable[relay.Node | None]]] = {
    node_type.__name__: node_type.refetch
    for node_type in (
        Snippet, Takeaway, Disclaimer, Release, Topic, Condition, Category, Market, Citation,
    )
}  # fmt: skip


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{key}".encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        decoded = ""
    # a NULL is in no key, and PostgreSQL cannot compare one with any text
    if not decoded.startswith(CURSOR_PREFIX) or "\x00" in decoded:
        raise BadInput(f"after: {cursor!r} is not a cursor from this API")
    return decoded.removeprefix(CURSOR_PREFIX)


def encode_change_cursor(since: int, until: int, key: str) -> str:
    # the range rides in the cursor, so later pages compare the same two releases even when
    # a release is published between two requests
    text = f"{CHANGE_CURSOR_PREFIX}{since}:{until}:{key}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_change_cursor(cursor: str) -> tuple[int, int, str]:
    try:
        decoded = base64.urlsafe_b64decode(cursor.encode()).decode()
        since, until, key = decoded.removeprefix(CHANGE_CURSOR_PREFIX).split(":", 2)
        if decoded.startswith(CHANGE_CURSOR_PREFIX) and key and "\x00" not in key:
            return int(since), int(until), key
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise BadInput(f"after: {cursor!r} is not a cursor of the change feed")


def _empty_page_info() -> PageInfo:
    return PageInfo(
        has_next_page=False, has_previous_page=False, start_cursor=None, end_cursor=None
    )


async def _scope(info: Info, release: int | None, locale: str | None) -> Scope | None:
    """The release and locales to read with; None when nothing is published yet."""
    reader = info.context.reader
    locales = reader.locales(locale)
    view = await reader.release(release)
    if view is None:
        if release is not None:
            await reader.require_release(release)  # raises NOT_FOUND with the latest id
        return None
    return Scope(view, locales)


def _snippet(entry: LiveEntry, scope: Scope) -> Snippet:
    return Snippet(key=entry.key, locale=entry.locale, _entry=entry, _scope=scope)


def _takeaway(entry: LiveEntry, scope: Scope) -> Takeaway:
    return Takeaway(key=entry.key, locale=entry.locale, _entry=entry, _scope=scope)


def _disclaimer(entry: LiveEntry, scope: Scope) -> Disclaimer:
    return Disclaimer(key=entry.key, locale=entry.locale, _entry=entry, _scope=scope)


@strawberry.type
class Query:
    @strawberry.field(
        description="The object an id names, in exactly that version (release and locale "
        "included); null when no such version is published."
    )
    async def node(self, info: Info, id: strawberry.ID) -> relay.Node | None:
        try:
            global_id = relay.GlobalID.from_id(id)
            refetch = REFETCH.get(global_id.type_name)
            # one version, one id: a spelling this API would not write is not its id
            if refetch is None or str(global_id) != id:
                raise MalformedId(id)
            return await refetch(info, global_id.node_id)
        except (MalformedId, relay.GlobalIDValueError):
            raise BadInput(f"{id!r} is not an id this API gave out") from None

    @strawberry.field(description="A release; the latest when id is omitted.")
    async def release(
        self,
        info: Info,
        id: Annotated[
            int | None, strawberry.argument(description="The release number (`Release.number`).")
        ] = None,
    ) -> Release | None:
        view: ReleaseView | None = await info.context.reader.release(id)
        return Release.of(view) if view else None

    @strawberry.field(description="Every topic, in the catalog of the release.")
    async def topics(
        self,
        info: Info,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> list[Topic]:
        scope = await _scope(info, release, locale)
        if scope is None:
            return []
        return [Topic.of(scope, key) for key in sorted(scope.release.catalog.topics)]

    @strawberry.field(description="Every skin condition or concern, in the catalog of the release.")
    async def conditions(
        self,
        info: Info,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> list[Condition]:
        scope = await _scope(info, release, locale)
        if scope is None:
            return []
        return [Condition.of(scope, key) for key in sorted(scope.release.catalog.conditions)]

    @strawberry.field(description="Every product category, in the catalog of the release.")
    async def categories(
        self,
        info: Info,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> list[Category]:
        scope = await _scope(info, release, locale)
        if scope is None:
            return []
        return [Category.of(scope, key) for key in sorted(scope.release.catalog.categories)]

    @strawberry.field(description="Every market, in the catalog of the release.")
    async def markets(
        self,
        info: Info,
        release: ReleaseArg = None,
    ) -> list[Market]:
        scope = await _scope(info, release, None)
        if scope is None:
            return []
        view = scope.release
        return [Market.of(view, code) for code in sorted(view.catalog.markets)]

    @strawberry.field(description="One snippet by key; null when it is not published.")
    async def snippet(
        self,
        info: Info,
        key: str,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> Snippet | None:
        scope = await _scope(info, release, locale)
        if scope is None:
            return None
        entry = await info.context.reader.snippet(scope.release, key, scope.locales)
        return _snippet(entry, scope) if entry else None

    @strawberry.field(description=f"Snippets by key, a page at a time (first: at most {MAX_PAGE}).")
    async def snippets(
        self,
        info: Info,
        filter: SnippetFilter | None = None,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
        first: int | None = DEFAULT_PAGE,
        after: str | None = None,
    ) -> SnippetConnection:
        after_key = decode_cursor(after) if after is not None else None
        scope = await _scope(info, release, locale)
        if scope is None:
            return SnippetConnection(edges=[], page_info=_empty_page_info(), total_count=0)
        criteria = SnippetCriteria(
            topic=filter.topic if filter else None,
            condition=filter.condition if filter else None,
            tag=filter.tag if filter else None,
            evidence=filter.evidence.value if filter and filter.evidence else None,
            market=filter.market if filter else None,
        )
        page = await info.context.reader.snippets(
            scope.release,
            scope.locales,
            criteria,
            first=DEFAULT_PAGE if first is None else first,
            after=after_key,
        )
        edges = [
            SnippetEdge(cursor=encode_cursor(entry.key), node=_snippet(entry, scope))
            for entry in page.entries
        ]
        return SnippetConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
        )

    @strawberry.field(description="Key takeaways, by topic and position.")
    async def takeaways(
        self,
        info: Info,
        topic: str | None = None,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> list[Takeaway]:
        scope = await _scope(info, release, locale)
        if scope is None:
            return []
        reader = info.context.reader
        entries = await reader.takeaways(scope.release, scope.locales, topic)
        ordered = await reader.ordered_takeaways(entries)
        return [_takeaway(entry, scope) for entry in ordered]

    @strawberry.field(description="Every disclaimer that applies in a market.")
    async def disclaimers(
        self,
        info: Info,
        market: str,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> list[Disclaimer]:
        scope = await _scope(info, release, locale)
        if scope is None:
            return []
        entries = await info.context.reader.disclaimers(scope.release, scope.locales, market)
        return [_disclaimer(entry, scope) for entry in entries]

    @strawberry.field(description="Everything one product page shows, in one query.")
    async def product_page(
        self,
        info: Info,
        product: ProductInput,
        market: str,
        locale: LocaleArg = None,
        release: ReleaseArg = None,
    ) -> ProductPage:
        reader = info.context.reader
        locales = reader.locales(locale)
        view = await reader.require_release(release)
        scope = Scope(view, locales)
        selection = await reader.product_page(
            view,
            locales,
            market,
            ProductCriteria(
                category=product.category,
                concerns=tuple(product.concerns),
                topics=tuple(product.topics),
            ),
        )
        return ProductPage(
            release=Release.of(view),
            market=market,
            locale=locales.requested,
            snippets=[_snippet(entry, scope) for entry in selection.snippets],
            takeaways=[_takeaway(entry, scope) for entry in selection.takeaways],
            disclaimers=[_disclaimer(entry, scope) for entry in selection.disclaimers],
        )

    @strawberry.field(
        description="Every entry whose served content changed between release `since` and "
        "`until` (the latest when omitted) for a reader of this locale and market, by key: "
        "CREATED, UPDATED (another revision or locale after fallback, its release, a topic's "
        "or condition's name, a citation, or reviewedAt) or WITHDRAWN. `since: 0` lists "
        f"everything served. Store `nextSince` for the next build. first: at most {MAX_PAGE}."
    )
    async def changes(
        self,
        info: Info,
        since: Annotated[
            int, strawberry.argument(description="The release last built from; 0 for none.")
        ],
        until: Annotated[
            int | None,
            strawberry.argument(description="Compare with this release; the latest if omitted."),
        ] = None,
        locale: LocaleArg = None,
        market: Annotated[
            str | None,
            strawberry.argument(description="Only content cleared for this market."),
        ] = None,
        first: int | None = MAX_PAGE,
        after: str | None = None,
    ) -> ChangeConnection:
        reader = info.context.reader
        after_key = None
        if after is not None:
            cursor_since, cursor_until, after_key = decode_change_cursor(after)
            if cursor_since != since or until not in (None, cursor_until):
                raise BadInput(
                    f"after: that cursor pages through changes from {cursor_since} to "
                    f"{cursor_until}; ask with the same since and until"
                )
            until = cursor_until
        locales = reader.locales(locale)
        view = await change_range(reader, since, until)
        if view is None:
            return ChangeConnection(
                edges=[], page_info=_empty_page_info(), total_count=0, next_since=0
            )
        audience = reader.audience(view, locales.requested, market)
        page = await change_page(
            reader, since, view, audience, first=MAX_PAGE if first is None else first,
            after_key=after_key,
        )  # fmt: skip
        scope = Scope(view, audience.locales)
        edges = [
            ChangeEdge(
                cursor=encode_change_cursor(since, view.id, change.key),
                node=EntryChange.of(change, scope),
            )
            for change in page.changes
        ]
        return ChangeConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total,
            next_since=view.id,
        )
