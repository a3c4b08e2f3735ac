"""The content operations: seed new revisions, publish releases. No HTTP, no GraphQL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from service.config import Settings
from service.content.errors import Conflict, ContentError, Forbidden, Problem, SeedValidationError
from service.content.models import (
    Base,
    Category,
    Citation,
    Condition,
    Decision,
    EntryKind,
    Market,
    Release,
    RevisionCategory,
    RevisionCitation,
    RevisionCondition,
    RevisionDisclaimer,
    RevisionMarket,
    RevisionTag,
    RevisionTopic,
    Topic,
    utcnow,
)
from service.content.rendering import render
from service.content.repository import ContentRepository, EntryLocale
from service.content.schemas import DisclaimerFront, SnippetFront, TakeawayFile
from service.content.seedfiles import (
    CATALOG_FILES,
    DEFAULT_LOCALE,
    EntryDraft,
    SeedSet,
    count_rejected,
)

DEVELOPMENT_REVIEWER = "development-reviewer (automatic, development only)"
# revisions rendered and inserted per round trip: bounds memory on large seed folders
WRITE_BATCH = 500

_CATALOG_TABLES: dict[str, type[Base]] = {
    "topics": Topic,
    "conditions": Condition,
    "categories": Category,
    "markets": Market,
    "citations": Citation,
}
# each catalog's table and its key column, which is the key of its seed file's items
CATALOG_MODELS = {name: (_CATALOG_TABLES[name], key) for name, (_, key) in CATALOG_FILES.items()}


class NothingToPublish(ContentError):
    code = "NOTHING_TO_PUBLISH"


def require_development(settings: Settings, what: str) -> None:
    """Shortcuts that skip review exist for a newcomer's machine, never for production."""
    if settings.is_production:
        raise Forbidden(
            f"{what} is refused in production: there, only reviewed revisions are published "
            "(CONTENT_API_ENV=production)"
        )


def content_hash(kind: EntryKind, front: BaseModel, body: str) -> str:
    """A fingerprint of what a reader would see; the key, locale and change note are not content."""
    payload = front.model_dump(mode="json", exclude={"key", "locale", "change_note"})
    payload |= {"kind": kind.value, "body": body}
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# --- seeding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedRevision:
    draft: EntryDraft
    number: int
    content_hash: str
    new_entry: bool


@dataclass
class KindCount:
    created: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class CatalogCount:
    created: int = 0
    updated: int = 0
    unchanged: int = 0


# asyncio builds a repr of a coroutine's result; a generated one would spell out every draft
@dataclass(repr=False)
class SeedReport:
    planned: list[PlannedRevision] = field(default_factory=list)
    kinds: dict[str, KindCount] = field(
        default_factory=lambda: {kind.value: KindCount() for kind in EntryKind}
    )
    catalogs: dict[str, CatalogCount] = field(
        default_factory=lambda: {name: CatalogCount() for name in CATALOG_MODELS}
    )
    approved: int = 0
    dry_run: bool = False
    # paths left out of the run on purpose (hidden files), for the writer to see
    skipped: list[Problem] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<SeedReport {len(self.planned)} planned, dry_run={self.dry_run}>"

    @property
    def revisions_created(self) -> int:
        return len(self.planned)

    @property
    def catalog_changes(self) -> int:
        return sum(count.created + count.updated for count in self.catalogs.values())

    @property
    def changed(self) -> bool:
        return bool(self.planned) or self.catalog_changes > 0


def _link_rows(revision_id: int, draft: EntryDraft) -> dict[type[Base], list[dict[str, Any]]]:
    front = draft.front
    lists: dict[type[Base], tuple[str, list[str]]] = {
        RevisionMarket: ("market_code", list(front.markets)),
        RevisionCitation: ("citation_key", list(getattr(front, "citations", []))),
        RevisionCategory: ("category_key", list(getattr(front, "categories", []))),
    }
    if isinstance(front, SnippetFront):
        lists |= {
            RevisionTopic: ("topic_key", list(front.topics)),
            RevisionCondition: ("condition_key", list(front.conditions)),
            RevisionTag: ("tag", list(front.tags)),
            RevisionDisclaimer: ("disclaimer_key", list(front.disclaimers)),
        }
    elif isinstance(front, TakeawayFile):
        lists[RevisionTopic] = ("topic_key", [front.topic])
    return {
        model: [
            {"revision_id": revision_id, column: value, "position": position}
            for position, value in enumerate(values, start=1)
        ]
        for model, (column, values) in lists.items()
    }


def _revision_row(plan: PlannedRevision, entry_id: int, author: str) -> dict[str, Any]:
    draft = plan.draft
    front = draft.front
    body_source = front.text if isinstance(front, TakeawayFile) else draft.body
    body = render(body_source)
    return {
        "entry_id": entry_id,
        "locale": draft.locale,
        "number": plan.number,
        "content_hash": plan.content_hash,
        "title": getattr(front, "title", None),
        "summary": getattr(front, "summary", None),
        "body_markdown": body.markdown,
        "body_html": body.html,
        "body_text": body.text,
        "evidence": front.evidence.value if isinstance(front, SnippetFront) else None,
        "disclaimer_kind": front.kind.value if isinstance(front, DisclaimerFront) else None,
        "position": front.position if isinstance(front, TakeawayFile) else None,
        "change_note": front.change_note,
        "author": author,
        "source_path": draft.source.path,
        "created_at": utcnow(),
    }


class ContentService:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.repository = ContentRepository(session)

    async def seed(
        self,
        seed: SeedSet,
        *,
        author: str,
        approve_as: str | None = None,
        dry_run: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> SeedReport:
        """Write a new revision for every entry file whose content changed, in one transaction."""
        await self.repository.lock_for_writing()
        report = SeedReport(dry_run=dry_run, skipped=seed.skipped)
        catalog_writes = await self._plan_catalogs(seed, report)
        entries = await self.repository.entries_by_key()
        latest = await self.repository.latest_revisions()

        problems: list[Problem] = []
        for draft in seed.entries:
            known = entries.get(draft.key)
            if known is not None and known[1] != draft.kind.value:
                problems.append(
                    Problem(
                        draft.source.path,
                        draft.source.line("key"),
                        f"key {draft.key!r} already names a {known[1]}; an entry keeps its kind, "
                        "so choose another key",
                    )
                )
                continue
            digest = content_hash(draft.kind, draft.front, draft.body)
            previous = latest.get((known[0], draft.locale)) if known else None
            if previous is not None and previous.content_hash == digest:
                report.kinds[draft.kind.value].unchanged += 1
                continue
            number = previous.number + 1 if previous else 1
            report.planned.append(PlannedRevision(draft, number, digest, known is None))
            report.kinds[draft.kind.value].created += 1
        if problems:
            raise SeedValidationError(problems, rejected=count_rejected(problems))
        if dry_run:
            return report

        for model, (inserts, updates) in catalog_writes.items():
            await self.repository.insert_rows(model, inserts)
            for row, values in updates:
                for name, value in values.items():
                    setattr(row, name, value)
        await self.session.flush()

        new_entries: dict[str, str] = {}
        for plan in report.planned:
            if plan.new_entry:
                new_entries.setdefault(plan.draft.key, plan.draft.kind.value)
        entry_ids = {key: entry_id for key, (entry_id, _) in entries.items()}
        new_rows = [
            {"key": key, "kind": kind, "created_at": utcnow()} for key, kind in new_entries.items()
        ]
        for start in range(0, len(new_rows), WRITE_BATCH):
            entry_ids |= await self.repository.insert_entries(new_rows[start : start + WRITE_BATCH])

        for start in range(0, len(report.planned), WRITE_BATCH):
            batch = report.planned[start : start + WRITE_BATCH]
            await self._write_revisions(batch, entry_ids, author=author)
            if progress is not None:
                progress(len(batch))
        if approve_as is not None:
            # the newest revision of every entry and locale still awaiting a decision, whether
            # this run wrote it or an earlier run without --approve did
            pending = await self.repository.undecided_latest_revisions()
            await self.repository.insert_decisions(
                [
                    {
                        "revision_id": revision_id,
                        "decision": Decision.APPROVED.value,
                        "reviewer": approve_as,
                        "reason": "approved automatically by the development seed",
                        "created_at": utcnow(),
                    }
                    for revision_id in pending
                ]
            )
            report.approved = len(pending)
        return report

    async def _write_revisions(
        self,
        batch: list[PlannedRevision],
        entry_ids: dict[str, int],
        *,
        author: str,
    ) -> None:
        rows = [_revision_row(plan, entry_ids[plan.draft.key], author) for plan in batch]
        revision_ids = await self.repository.insert_revisions(rows)
        links: dict[type[Base], list[dict[str, Any]]] = {}
        for revision_id, plan in zip(revision_ids, batch, strict=True):
            for model, link_rows in _link_rows(revision_id, plan.draft).items():
                links.setdefault(model, []).extend(link_rows)
        for model, link_rows in links.items():
            await self.repository.insert_rows(model, link_rows)

    async def _plan_catalogs(
        self, seed: SeedSet, report: SeedReport
    ) -> dict[type[Base], tuple[list[dict[str, Any]], list[tuple[Any, dict[str, Any]]]]]:
        writes: dict[type[Base], tuple[list[dict[str, Any]], list[tuple[Any, dict[str, Any]]]]] = {}
        for name, (model, key_column) in CATALOG_MODELS.items():
            existing = await self.repository.catalog_rows(model, key_column)
            inserts: list[dict[str, Any]] = []
            updates: list[tuple[Any, dict[str, Any]]] = []
            for item in seed.catalog(name):
                values = item.model_dump(mode="json")
                row = existing.get(str(values[key_column]))
                if row is None:
                    inserts.append(values)
                    report.catalogs[name].created += 1
                elif any(getattr(row, column) != value for column, value in values.items()):
                    updates.append((row, values))
                    report.catalogs[name].updated += 1
                else:
                    report.catalogs[name].unchanged += 1
            writes[model] = (inserts, updates)
        return writes

    # --- publishing -------------------------------------------------------------------------

    async def publish(self, *, note: str, published_by: str) -> Release:
        """Publish the newest approved, never published revision of every (entry, locale)."""
        await self.repository.lock_for_writing()
        latest_id = await self.repository.latest_release_id()
        changes: dict[EntryLocale, int | None] = dict(await self.repository.publishable_revisions())
        if not changes:
            raise NothingToPublish(
                f"nothing to publish: release {latest_id} already shows every approved revision"
                if latest_id
                else "nothing to publish: no revision has been approved yet"
            )
        return await self.append_release(note=note, published_by=published_by, changes=changes)

    async def stage_next_release(self, *, staged_by: str) -> Release | None:
        """Write what `publish` would publish now, for reading in this transaction only: the
        caller rolls it back. None when nothing waits, so the latest release is the preview."""
        await self.repository.lock_for_writing()
        changes: dict[EntryLocale, int | None] = dict(await self.repository.publishable_revisions())
        if not changes:
            return None
        return await self.append_release(
            note="Preview of the next release (never published)",
            published_by=staged_by,
            changes=changes,
        )

    async def append_release(
        self, *, note: str, published_by: str, changes: dict[EntryLocale, int | None]
    ) -> Release:
        """One new release: from it on, each (entry, locale) shows the revision given, or
        nothing when None (withdrawn). The caller holds the writing lock."""
        latest_id = await self.repository.latest_release_id()
        live = await self.repository.live_revisions(latest_id)
        shown = {key: rid for key, rid in (live | changes).items() if rid is not None}
        await self._check_required_disclaimers(shown)
        release = Release(
            id=latest_id + 1,
            note=note,
            published_by=published_by,
            catalog=await self.repository.catalog_snapshot(CATALOG_MODELS),
            created_at=utcnow(),
        )
        items = [
            {"release_id": release.id, "entry_id": entry_id, "locale": locale, "revision_id": rid}
            for (entry_id, locale), rid in sorted(changes.items())
        ]
        await self.repository.insert_release(release, items)
        return release

    async def _check_required_disclaimers(self, shown: dict[EntryLocale, int]) -> None:
        """A snippet may not go live without the disclaimers it requires."""
        required = await self.repository.required_disclaimers(shown.values())
        if not required:
            return
        keys = await self.repository.keys_of_entries({entry_id for entry_id, _ in shown})
        live_keys = {keys[entry_id] for entry_id, locale in shown if locale == DEFAULT_LOCALE}
        by_revision = {rid: keys[entry_id] for (entry_id, _), rid in shown.items()}
        missing = sorted(
            {
                f"{by_revision[rid]} requires {key}"
                for rid, needed in required.items()
                for key in needed
                if key not in live_keys
            }
        )
        if missing:
            raise Conflict(
                "these disclaimers would not be live; approve them first: " + "; ".join(missing)
            )
