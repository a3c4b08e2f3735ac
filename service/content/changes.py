"""What changed for a reader between two releases: the change feed partners rebuild from.

An entry changed when what `snippet(key, locale, market)` (or the takeaway or disclaimer)
would serve differs between the two releases: another revision or another locale after
fallback, the release that published it, a catalog entry it shows (a topic's or condition's
name as read in the locale, a citation), or its `reviewedAt`. Entries whose text may differ
are found in the release log (those published or withdrawn in a locale of the reader's chain
within the range), so a short range reads little whatever the size of the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from service.content.errors import BadInput
from service.content.models import EntryKind
from service.content.reading import MAX_PAGE, Audience, Catalog, Reader, ReleaseView, localized
from service.content.repository import LiveEntry, LocalePreference, ServedEntry
from service.content.served import note_served


class ChangeType(StrEnum):
    CREATED = "created"  # served now, nothing was before
    UPDATED = "updated"  # served before and now, and what is served differs
    WITHDRAWN = "withdrawn"  # served before, nothing now: a tombstone


@dataclass(frozen=True)
class EntryChange:
    key: str
    kind: EntryKind
    type: ChangeType
    locale: str  # served as of `until`; for a withdrawal, the one served before
    release_id: int  # the last release in the range that changed what this reader is served
    served: LiveEntry | None  # what is served as of `until`; None when withdrawn


@dataclass(frozen=True)
class ChangePage:
    changes: list[EntryChange]
    total: int
    has_next: bool
    has_previous: bool


async def change_range(reader: Reader, since: int, until: int | None) -> ReleaseView | None:
    """The release `since` is compared with (`until`, or the latest), checked; None when
    nothing is published yet and `since` is 0."""
    if since < 0:
        raise BadInput(f"since must be 0 or more, not {since}")
    if until is not None:
        pinned = await reader.require_release(until)
        if since > until:
            raise BadInput(f"since ({since}) is after until ({until})")
        return pinned
    view = await reader.release(None)
    latest = view.id if view is not None else 0
    if since > latest:
        raise BadInput(
            f"since ({since}) is after the latest release ({latest}): pass the nextSince "
            "of an earlier answer, or 0 for everything"
        )
    return view


async def change_page(
    reader: Reader,
    since: int,
    until: ReleaseView,
    audience: Audience,
    *,
    first: int,
    after_key: str | None,
) -> ChangePage:
    """A page of the changes, by key; every page of one (since, until) comes from the same
    comparison, so pages never overlap or skip."""
    if not 0 <= first <= MAX_PAGE:
        raise BadInput(f"first must be between 0 and {MAX_PAGE}, not {first}")
    changes = await changes_between(reader, since, until, audience)
    rest = [c for c in changes if after_key is None or c.key > after_key]
    note_served(change.key for change in rest[:first])
    return ChangePage(
        changes=rest[:first],
        total=len(changes),
        has_next=len(rest) > first,
        has_previous=after_key is not None,
    )


async def changes_between(
    reader: Reader, since: int, until: ReleaseView, audience: Audience
) -> list[EntryChange]:
    """Every entry whose served content differs between release `since` (0: nothing) and
    `until`, for `audience`, ordered by key. A fixed number of statements, however many."""
    if since == until.id:
        return []
    live = reader.live
    locales, where = audience.locales, audience.live_filter()
    window = (since, until.id)
    touched = await live.last_touched(since, until.id, locales)
    before: dict[int, ServedEntry] = {}
    if since:
        found = await live.served_entries(since, locales, where, touched=window)
        before = {served.entry.entry_id: served for served in found}
    after = {
        served.entry.entry_id: served
        for served in await live.served_entries(until.id, locales, where, touched=window)
    }
    changes: dict[int, EntryChange] = {}
    for entry_id in before.keys() | after.keys():
        old, new = before.get(entry_id), after.get(entry_id)
        release_id = touched.get(entry_id, until.id)
        if old is not None and new is None:
            changes[entry_id] = _change(old, ChangeType.WITHDRAWN, release_id, served=None)
        elif new is None:
            continue
        elif old is None:
            changes[entry_id] = _change(new, ChangeType.CREATED, release_id, served=new.entry)
        elif _version(old.entry) != _version(new.entry):
            changes[entry_id] = _change(new, ChangeType.UPDATED, release_id, served=new.entry)
    if since:
        refreshed = await _refreshed(reader, since, until, audience, set(changes))
        for served, release_id in refreshed:
            changes[served.entry.entry_id] = _change(
                served, ChangeType.UPDATED, release_id, served=served.entry
            )
    return sorted(changes.values(), key=lambda change: change.key)


def _version(entry: LiveEntry) -> tuple[int, int]:
    # the same revision published again (a rollback) still changes `release`
    return (entry.revision_id, entry.release_id)


def _change(
    seen: ServedEntry, type: ChangeType, release_id: int, *, served: LiveEntry | None
) -> EntryChange:
    return EntryChange(
        key=seen.entry.key,
        kind=EntryKind(seen.kind),
        type=type,
        locale=seen.entry.locale,
        release_id=release_id,
        served=served,
    )


async def _refreshed(
    reader: Reader, since_id: int, until: ReleaseView, audience: Audience, changed: set[int]
) -> list[tuple[ServedEntry, int]]:
    """Entries showing the same revision as before whose other served fields changed: a
    catalog entry they show, or their reviewedAt (approved again). Each with the last release
    in the range that changed one of them."""
    views = await reader.releases_by_id(list(range(since_id, until.id + 1)))
    ordered = [views[number] for number in sorted(views)]
    since = views[since_id]
    catalog = _catalog_changes(ordered, audience.locales)
    names = {name: tuple(sorted(key for n, key in catalog if n == name)) for name in _SHOWN}
    where = replace(
        audience.live_filter(),
        any_topics=names["topics"],
        any_conditions=names["conditions"],
        any_citations=names["citations"],
        approved_between=(since.published_at, until.published_at),
    )
    live = reader.live
    found = [
        served
        for served in await live.served_entries(until.id, audience.locales, where)
        if served.entry.entry_id not in changed
    ]
    if not found:
        return []
    ids = [served.entry.revision_id for served in found]
    shown = {
        "topics": await live.attached_topics(ids),
        "conditions": await live.attached_conditions(ids),
        "citations": await live.attached_citations(ids),
    }
    approved = await live.approved_at(ids, until=until.published_at)
    refreshed = []
    for served in found:
        revision_id = served.entry.revision_id
        release_id = max(
            (
                catalog.get((name, key), 0)
                for name, by_revision in shown.items()
                for key in by_revision[revision_id]
            ),
            default=0,
        )
        approval = approved.get(revision_id)
        if approval is not None and approval > since.published_at:
            # reviewedAt changes in the first release published after the approval
            first_after = next(
                (view.id for view in ordered[1:] if view.published_at >= approval), until.id
            )
            release_id = max(release_id, first_after)
        if release_id:
            refreshed.append((served, release_id))
    return refreshed


# the catalogs whose entries a snippet or takeaway shows, with the fields it shows
_SHOWN = ("topics", "conditions", "citations")


def _as_read(catalog: Catalog, locales: LocalePreference) -> dict[tuple[str, str], Any]:
    """Each shown catalog entry as the reader sees it: names in their locale, citations whole."""
    read: dict[tuple[str, str], Any] = {}
    for key, item in catalog.topics.items():
        descriptions = item.get("descriptions") or {}
        description = localized(descriptions, locales) if descriptions else None
        read[("topics", key)] = (localized(item["names"], locales), description)
    for key, item in catalog.conditions.items():
        read[("conditions", key)] = localized(item["names"], locales)
    for key, item in catalog.citations.items():
        read[("citations", key)] = item
    return read


def _catalog_changes(
    views: list[ReleaseView], locales: LocalePreference
) -> dict[tuple[str, str], int]:
    """Per shown catalog entry that reads differently at the end than at the start, the last
    release (after the first) that changed how it reads."""
    changed: dict[tuple[str, str], int] = {}
    previous_view = views[0]
    previous = _as_read(previous_view.catalog, locales)
    for view in views[1:]:
        if view.catalog != previous_view.catalog:
            current = _as_read(view.catalog, locales)
            for item in previous.keys() | current.keys():
                if previous.get(item) != current.get(item):
                    changed[item] = view.id
            previous = current
        previous_view = view
    start, end = _as_read(views[0].catalog, locales), previous
    # an entry renamed and renamed back reads as it did: nothing changed for the reader
    return {item: release for item, release in changed.items() if start.get(item) != end.get(item)}
