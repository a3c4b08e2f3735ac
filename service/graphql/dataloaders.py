"""Per-request DataLoaders: one lookup per batch of fields, never one per item; from the
release held in memory, or one SQL statement per batch when it is not held."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from functools import cached_property
from typing import TypeVar

from strawberry.dataloader import DataLoader

from service.content.models import Revision
from service.content.reading import Reader, ReleaseView
from service.content.repository import LiveEntry, LocalePreference

K = TypeVar("K")
V = TypeVar("V")

# (release, locale preference, market, disclaimer key)
DisclaimerKey = tuple[int, LocalePreference, str, str]


def _by_revision(
    fetch: Callable[[Sequence[int]], Awaitable[dict[int, list[str]]]],
) -> DataLoader[int, list[str]]:
    async def load(ids: list[int]) -> list[list[str]]:
        found = await fetch(ids)
        return [found.get(revision_id, []) for revision_id in ids]

    return DataLoader(load_fn=load)


class Loaders:
    """A request's loaders, each made when a field first needs it: most answers from held
    releases need none."""

    def __init__(self, reader: Reader) -> None:
        self.reader = reader

    @classmethod
    def for_reader(cls, reader: Reader) -> Loaders:
        return cls(reader)

    @cached_property
    def revision_by_id(self) -> DataLoader[int, Revision]:
        live = self.reader.live

        async def revisions(ids: list[int]) -> list[Revision]:
            found = await live.revisions(ids)
            return [found[revision_id] for revision_id in ids]

        return DataLoader(load_fn=revisions)

    @cached_property
    def release_by_id(self) -> DataLoader[int, ReleaseView]:
        reader = self.reader

        async def releases(ids: list[int]) -> list[ReleaseView]:
            found = await reader.releases_by_id(ids)
            return [found.get(rid) or await reader.require_release(rid) for rid in ids]

        return DataLoader(load_fn=releases)

    @cached_property
    def topics_by_revision(self) -> DataLoader[int, list[str]]:
        return _by_revision(self.reader.live.attached_topics)

    @cached_property
    def conditions_by_revision(self) -> DataLoader[int, list[str]]:
        return _by_revision(self.reader.live.attached_conditions)

    @cached_property
    def tags_by_revision(self) -> DataLoader[int, list[str]]:
        return _by_revision(self.reader.live.attached_tags)

    @cached_property
    def citations_by_revision(self) -> DataLoader[int, list[str]]:
        return _by_revision(self.reader.live.attached_citations)

    @cached_property
    def markets_by_revision(self) -> DataLoader[int, list[str]]:
        return _by_revision(self.reader.live.attached_markets)

    @cached_property
    def disclaimer_keys_by_revision(self) -> DataLoader[int, list[str]]:
        return _by_revision(self.reader.live.attached_disclaimers)

    @cached_property
    def live_disclaimer_by_key(self) -> DataLoader[DisclaimerKey, LiveEntry | None]:
        reader = self.reader

        async def disclaimers(keys: list[DisclaimerKey]) -> list[LiveEntry | None]:
            groups: dict[tuple[int, LocalePreference, str], set[str]] = {}
            for release_id, locales, market, key in keys:
                groups.setdefault((release_id, locales, market), set()).add(key)
            found: dict[DisclaimerKey, LiveEntry] = {}
            for (release_id, locales, market), wanted in groups.items():
                release = await reader.require_release(release_id)
                for entry in await reader.disclaimers(
                    release, locales, market, tuple(sorted(wanted))
                ):
                    found[(release_id, locales, market, entry.key)] = entry
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=disclaimers)

    @cached_property
    def approved_at_by_revision(self) -> DataLoader[tuple[int, datetime], datetime | None]:
        """(revision, the release's time): when the revision was last approved as of then."""
        live = self.reader.live

        async def approvals(keys: list[tuple[int, datetime]]) -> list[datetime | None]:
            found: dict[tuple[int, datetime], datetime] = {}
            for until in {until for _, until in keys}:
                ids = [revision_id for revision_id, at in keys if at == until]
                for revision_id, at in (await live.approved_at(ids, until=until)).items():
                    found[(revision_id, until)] = at
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=approvals)
