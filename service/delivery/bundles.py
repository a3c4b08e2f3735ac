"""Release bundles: everything one audience may see in one release and locale, as one
canonical JSON document whose SHA-256 is its name.

Canonical means byte for byte the same on every run, instance and database: keys sorted, no
whitespace, UTF-8, lists ordered by key (or by the position an author gave them), timestamps
in UTC to the microsecond. Items are named by their stable keys, not by the GraphQL ids,
which carry database row numbers that differ between two databases holding the same content.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from service.content.models import EntryKind, Revision
from service.content.reading import Audience, Reader, ReleaseView, citation_url, localized
from service.content.repository import LiveEntry

FORMAT_VERSION = 1
# the folder (and document field) of each kind
COLLECTIONS = {
    EntryKind.SNIPPET: "snippets",
    EntryKind.TAKEAWAY: "takeaways",
    EntryKind.DISCLAIMER: "disclaimers",
}


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def content_hash(document: dict[str, Any]) -> str:
    """SHA-256 of the canonical document without its own `contentHash`."""
    unhashed = {name: value for name, value in document.items() if name != "contentHash"}
    return hashlib.sha256(canonical_json(unhashed)).hexdigest()


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class BundleKey:
    release: int
    locale: str
    market: str | None
    # a partner key's markets, which narrow a bundle asked for without a market
    scope: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        """The file name: `fr-FR` or, narrowed to a market, `fr-FR.US`."""
        return self.locale if self.market is None else f"{self.locale}.{self.market}"


@dataclass(frozen=True)
class Bundle:
    key: BundleKey
    document: dict[str, Any]
    body: bytes
    content_hash: str

    @property
    def etag(self) -> str:
        return f'"{self.content_hash}"'

    def entries(self) -> Iterator[tuple[str, str, bytes]]:
        """Each item on its own, exactly as in the document: (collection, key, JSON)."""
        for collection in COLLECTIONS.values():
            for item in self.document[collection]:
                yield collection, item["key"], canonical_json(item)


class BundleHashes:
    """(release, locale, market) → content hash. A release never changes, so neither does its
    bundle: an instance that built one answers If-None-Match without building it again."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._hashes: OrderedDict[BundleKey, str] = OrderedDict()

    def get(self, key: BundleKey) -> str | None:
        found = self._hashes.get(key)
        if found is not None:
            self._hashes.move_to_end(key)
        return found

    def put(self, key: BundleKey, content_hash: str) -> None:
        self._hashes[key] = content_hash
        while len(self._hashes) > self.size:
            self._hashes.popitem(last=False)


async def build_bundle(reader: Reader, release: ReleaseView, audience: Audience) -> Bundle:
    """The bundle of `release` for `audience`; a fixed number of statements."""
    live = reader.live
    served = await reader.served(release, audience)
    ids = [item.entry.revision_id for item in served]
    revisions = await live.revisions(ids)
    attached = {
        "topics": await live.attached_topics(ids),
        "conditions": await live.attached_conditions(ids),
        "categories": await live.attached_categories(ids),
        "citations": await live.attached_citations(ids),
        "markets": await live.attached_markets(ids),
        "tags": await live.attached_tags(ids),
        "disclaimers": await live.attached_disclaimers(ids),
    }
    approved = await live.approved_at(ids, until=release.published_at)

    def common(entry: LiveEntry) -> dict[str, Any]:
        revision = revisions[entry.revision_id]
        reviewed = approved.get(entry.revision_id)
        return {
            "key": entry.key,
            "locale": entry.locale,
            "version": revision.number,
            "release": entry.release_id,
            "reviewedAt": timestamp(reviewed) if reviewed is not None else None,
            "contentHash": revision.content_hash,
            "markets": attached["markets"][entry.revision_id],
        }

    def links(entry: LiveEntry, *names: str) -> dict[str, list[str]]:
        return {name: attached[name][entry.revision_id] for name in names}

    collections: dict[str, list[dict[str, Any]]] = {name: [] for name in COLLECTIONS.values()}
    for item in served:
        entry, kind = item.entry, EntryKind(item.kind)
        revision = revisions[entry.revision_id]
        fields = common(entry) | _own_fields(kind, revision)
        if kind is EntryKind.SNIPPET:
            fields |= links(
                entry, "topics", "conditions", "categories", "citations", "tags", "disclaimers"
            )
        elif kind is EntryKind.TAKEAWAY:
            fields["topic"] = attached["topics"][entry.revision_id][0]
            fields |= links(entry, "citations")
        else:
            fields |= links(entry, "categories")
        collections[COLLECTIONS[kind]].append(fields)

    locales = audience.locales
    document: dict[str, Any] = {
        "formatVersion": FORMAT_VERSION,
        "release": {
            "number": release.id,
            "note": release.note,
            "publishedAt": timestamp(release.published_at),
        },
        "locale": locales.requested,
        "market": audience.market,
        **{name: sorted(items, key=lambda i: i["key"]) for name, items in collections.items()},
        **_catalogs(release, audience),
    }
    document["contentHash"] = content_hash(document)
    key = BundleKey(release.id, locales.requested, audience.market)
    return Bundle(key, document, canonical_json(document), document["contentHash"])


def _own_fields(kind: EntryKind, revision: Revision) -> dict[str, Any]:
    """What a revision of `kind` says itself, named as the GraphQL fields are."""
    if kind is EntryKind.SNIPPET:
        return {
            "title": revision.title or "",
            "summary": revision.summary or "",
            "evidence": (revision.evidence or "").upper(),
            "body": {
                "markdown": revision.body_markdown,
                "html": revision.body_html,
                "text": revision.body_text,
            },
        }
    if kind is EntryKind.TAKEAWAY:
        return {"position": revision.position or 0, "text": revision.body_text}
    return {
        "kind": (revision.disclaimer_kind or "").upper(),
        "title": revision.title or "",
        "text": revision.body_text,
        "html": revision.body_html,
    }


def _catalogs(release: ReleaseView, audience: Audience) -> dict[str, list[dict[str, Any]]]:
    """The catalogs of the release, names read in the audience's locale, by key."""
    catalog, locales = release.catalog, audience.locales

    def named(items: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {"key": key, "name": localized(items[key]["names"], locales)} for key in sorted(items)
        ]

    topics = named(catalog.topics)
    for topic in topics:
        descriptions = catalog.topics[topic["key"]].get("descriptions") or {}
        topic["description"] = localized(descriptions, locales) if descriptions else None
    return {
        "topics": topics,
        "conditions": named(catalog.conditions),
        "categories": named(catalog.categories),
        "markets": [
            {
                "code": code,
                "name": item["name"],
                "defaultLocale": item["default_locale"],
                "locales": list(item["locales"]),
            }
            for code, item in sorted(catalog.markets.items())
        ],
        "citations": [
            {
                "key": key,
                "title": item["title"],
                "authors": item["authors"],
                "journal": item["journal"],
                "year": item["year"],
                "doi": item.get("doi"),
                "pmid": item.get("pmid"),
                "studyType": item["study_type"],
                "url": citation_url(item),
            }
            for key, item in sorted(catalog.citations.items())
        ],
    }
