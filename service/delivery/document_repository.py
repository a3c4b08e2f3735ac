"""Every SQL statement of persisted documents: one by its hash, the trusted ones, registering,
trusting, removing and pruning."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from service.content.models import utcnow
from service.delivery.models import DocumentSource, PersistedDocument
from service.vetting.models import AuditEvent

# rows per INSERT: SQLite takes at most 32,766 bound values in one statement
INSERT_CHUNK = 500
# the audit action of removing documents; its latest event is the mark of removals, which
# only grows, so every instance sees a removal whatever else changed beside it
REMOVED = "documents.remove"
REMOVAL_MARK = select(func.max(AuditEvent.id)).where(AuditEvent.action == REMOVED).scalar_subquery()


@dataclass(frozen=True)
class StoredDocument:
    """A document as a request needs it: its text, and whether staff trusted it."""

    sha256: str
    body: str
    trusted: bool


@dataclass(frozen=True)
class RegisteredDocument:
    """A document a client registered, as `contentapi documents prune` shows it."""

    sha256: str
    names: tuple[str, ...]
    added_at: datetime
    added_by: str | None


@dataclass(frozen=True)
class NewDocument:
    """A document to store: its hash, text and operation names, and where it was read from."""

    sha256: str
    body: str
    names: tuple[str, ...]
    origin: str = ""


class DocumentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self) -> Any:
        """INSERT in the session's dialect, which both spell ON CONFLICT alike."""
        dialect = self.session.get_bind().dialect.name
        return (postgresql if dialect == "postgresql" else sqlite).insert(PersistedDocument)

    async def by_sha256(self, sha256: str) -> StoredDocument | None:
        row = (
            await self.session.execute(
                select(PersistedDocument.body, PersistedDocument.source).where(
                    PersistedDocument.sha256 == sha256
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return StoredDocument(sha256, row.body, row.source == DocumentSource.TRUSTED.value)

    async def removal_mark(self) -> int | None:
        mark: int | None = await self.session.scalar(select(REMOVAL_MARK))
        return mark

    async def trusted(self) -> list[StoredDocument]:
        rows = await self.session.execute(
            select(PersistedDocument.sha256, PersistedDocument.body).where(
                PersistedDocument.source == DocumentSource.TRUSTED.value
            )
        )
        return [StoredDocument(row.sha256, row.body, trusted=True) for row in rows]

    async def sources_of(self, hashes: Sequence[str]) -> dict[str, str]:
        """The source of each of these documents that is stored already."""
        found: dict[str, str] = {}
        for start in range(0, len(hashes), INSERT_CHUNK):
            rows = await self.session.execute(
                select(PersistedDocument.sha256, PersistedDocument.source).where(
                    PersistedDocument.sha256.in_(hashes[start : start + INSERT_CHUNK])
                )
            )
            found.update({row.sha256: row.source for row in rows})
        return found

    async def listing(self) -> list[PersistedDocument]:
        """Every stored document, trusted first, then in the order they came."""
        rows = await self.session.scalars(
            select(PersistedDocument).order_by(
                (PersistedDocument.source == DocumentSource.TRUSTED.value).desc(),
                PersistedDocument.added_at,
                PersistedDocument.sha256,
            )
        )
        return list(rows)

    async def register(self, document: NewDocument, *, added_by: str | None) -> None:
        """Keep a document a client registered; one that is there already stays as it is
        (another instance may have registered it a moment before)."""
        statement = (
            self._insert()
            .values(
                sha256=document.sha256,
                body=document.body,
                names=list(document.names),
                source=DocumentSource.APQ.value,
                added_by=added_by,
                added_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["sha256"])
        )
        await self.session.execute(statement)

    async def trust(self, documents: Sequence[NewDocument], *, added_by: str) -> None:
        """Store documents as trusted; one a client registered before becomes trusted, with
        these names."""
        now: datetime = utcnow()
        for start in range(0, len(documents), INSERT_CHUNK):
            statement = self._insert().values(
                [
                    {
                        "sha256": document.sha256,
                        "body": document.body,
                        "names": list(document.names),
                        "source": DocumentSource.TRUSTED.value,
                        "added_by": added_by,
                        "added_at": now,
                    }
                    for document in documents[start : start + INSERT_CHUNK]
                ]
            )
            statement = statement.on_conflict_do_update(
                index_elements=["sha256"],
                set_={
                    "source": statement.excluded.source,
                    "names": statement.excluded.names,
                    "added_by": statement.excluded.added_by,
                    "added_at": statement.excluded.added_at,
                },
                # trusted already: left as first trusted
                where=PersistedDocument.source != DocumentSource.TRUSTED.value,
            )
            await self.session.execute(statement)

    async def with_prefix(self, prefix: str) -> list[PersistedDocument]:
        """The stored documents whose hash starts with `prefix` (lower-case hex)."""
        rows = await self.session.scalars(
            select(PersistedDocument)
            .where(PersistedDocument.sha256.startswith(prefix, autoescape=True))
            .order_by(PersistedDocument.sha256)
            .limit(2)
        )
        return list(rows)

    async def remove(
        self, hashes: Sequence[str], *, registered_before: datetime | None = None
    ) -> None:
        """Remove these documents; with `registered_before`, each only while it is still one
        a client registered before then (one trusted since stays)."""
        for start in range(0, len(hashes), INSERT_CHUNK):
            chunk = PersistedDocument.sha256.in_(hashes[start : start + INSERT_CHUNK])
            if registered_before is not None:
                chunk = chunk & _registered_before(registered_before)
            await self.session.execute(delete(PersistedDocument).where(chunk))

    async def registered_before(self, cutoff: datetime) -> list[RegisteredDocument]:
        """The documents clients registered before `cutoff`, oldest first (trusted ones never)."""
        rows = await self.session.execute(
            select(
                PersistedDocument.sha256,
                PersistedDocument.names,
                PersistedDocument.added_at,
                PersistedDocument.added_by,
            )
            .where(_registered_before(cutoff))
            .order_by(PersistedDocument.added_at, PersistedDocument.sha256)
        )
        return [
            RegisteredDocument(row.sha256, tuple(row.names), row.added_at, row.added_by)
            for row in rows
        ]


def _registered_before(cutoff: datetime) -> Any:
    return (PersistedDocument.source == DocumentSource.APQ.value) & (
        PersistedDocument.added_at < cutoff
    )
