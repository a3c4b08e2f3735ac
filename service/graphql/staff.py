"""Staff fields and mutations: the review workflow over GraphQL, for staff keys only.

Thin: each resolver checks who is asking through the context and calls the vetting service,
where every rule lives. Workflow objects have no `id`: their status changes over time, and a
client cache must not keep one version of them as if it were immutable content.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TypeVar

import strawberry
from strawberry.scalars import JSON

from service.access.principal import Permission, Principal
from service.content.errors import NotFound
from service.content.models import Release as ReleaseRow
from service.graphql.context import Info
from service.graphql.types import Release
from service.vetting import workflow
from service.vetting.diff import Change as DiffChange
from service.vetting.service import RevisionDiff, RevisionRef, RevisionState, VettingService

T = TypeVar("T")


@strawberry.enum(description="Where a revision is in the review workflow.")
class RevisionStatus(Enum):
    DRAFT = workflow.Status.DRAFT.value
    IN_REVIEW = workflow.Status.IN_REVIEW.value
    APPROVED = workflow.Status.APPROVED.value
    REJECTED = workflow.Status.REJECTED.value
    PUBLISHED = workflow.Status.PUBLISHED.value
    SUPERSEDED = workflow.Status.SUPERSEDED.value
    WITHDRAWN = workflow.Status.WITHDRAWN.value


@strawberry.input(description="A revision as people name it: entry key, locale and number.")
class RevisionInput:
    key: str
    locale: str = "en-US"
    number: int | None = strawberry.field(
        default=None, description="The revision number; the newest when omitted."
    )

    def ref(self) -> RevisionRef:
        return RevisionRef(self.key, self.locale, self.number)


@strawberry.type(description="A recorded review decision.")
class ReviewDecision:
    decision: str
    by: str
    reason: str
    at: datetime


@strawberry.type(description="A waiver of one compliance finding, with its reason.")
class Waiver:
    by: str
    reason: str
    at: datetime


@strawberry.type(description="One compliance finding in a revision's text.")
class Finding:
    fingerprint: str = strawberry.field(description="Names this finding, to waive it.")
    rule: str
    severity: str
    message: str
    field: str
    line: int
    column: int
    end_column: int
    excerpt: str
    blocking: bool = strawberry.field(description="An error nobody has waived.")
    waiver: Waiver | None


@strawberry.type(description="A revision in the review workflow, with its state and history.")
class ReviewItem:
    key: str
    kind: str
    locale: str
    number: int
    status: RevisionStatus
    author: str
    created_at: datetime
    change_note: str
    title: str | None
    body_markdown: str
    decisions: list[ReviewDecision]
    findings: list[Finding]
    releases: list[int] = strawberry.field(description="The releases that made it live.")
    approved_at: datetime | None
    review_due_at: datetime | None

    @classmethod
    def of(cls, state: RevisionState) -> ReviewItem:
        revision = state.revision
        return cls(
            key=state.entry.key,
            kind=state.entry.kind,
            locale=revision.locale,
            number=revision.number,
            status=RevisionStatus(state.status.value),
            author=revision.author,
            created_at=revision.created_at,
            change_note=revision.change_note,
            title=revision.title,
            body_markdown=revision.body_markdown,
            decisions=[
                ReviewDecision(decision=d.decision, by=d.reviewer, reason=d.reason, at=d.created_at)
                for d in state.decisions
            ],
            findings=[
                Finding(
                    fingerprint=c.finding.fingerprint,
                    rule=c.finding.rule,
                    severity=c.finding.severity.value,
                    message=c.finding.message,
                    field=c.finding.field,
                    line=c.finding.line,
                    column=c.finding.column,
                    end_column=c.finding.end_column,
                    excerpt=c.finding.excerpt,
                    blocking=c.blocking,
                    waiver=Waiver(
                        by=c.waiver.waived_by, reason=c.waiver.reason, at=c.waiver.created_at
                    )
                    if c.waiver
                    else None,
                )
                for c in state.findings
            ],
            releases=state.releases,
            approved_at=state.approved_at,
            review_due_at=state.review_due,
        )


@strawberry.enum(description="How a piece of text changed.")
class Change(Enum):
    EQUAL = DiffChange.EQUAL.value
    INSERT = DiffChange.INSERT.value
    DELETE = DiffChange.DELETE.value


@strawberry.type(description="A run of words that was kept, inserted or deleted.")
class DiffSegment:
    change: Change
    text: str


@strawberry.type(description="A metadata field whose value differs.")
class FieldChange:
    field: str
    before: str
    after: str


@strawberry.type(description="What changed between two revisions of one entry and locale.")
class Diff:
    key: str
    locale: str
    before: int
    after: int
    body: list[DiffSegment]
    fields: list[FieldChange]

    @classmethod
    def of(cls, diff: RevisionDiff) -> Diff:
        return cls(
            key=diff.key,
            locale=diff.locale,
            before=diff.before,
            after=diff.after,
            body=[DiffSegment(change=Change(s.change.value), text=s.text) for s in diff.body],
            fields=[
                FieldChange(field=f.field, before=f.before, after=f.after) for f in diff.fields
            ],
        )


@strawberry.type(description="One action in the append-only audit log.")
class AuditEvent:
    at: datetime
    actor: str
    action: str
    key: str | None
    locale: str | None
    revision_id: int | None
    release_id: int | None
    reason: str
    before: JSON | None
    after: JSON | None


def _vetting(info: Info) -> VettingService:
    if info.context.session is None:
        raise NotFound("no database session")
    return VettingService(
        info.context.session,
        review_interval=timedelta(days=info.context.settings.review_interval_days),
    )


async def _write(
    info: Info, permission: Permission, work: Callable[[VettingService, Principal], Awaitable[T]]
) -> T:
    """One mutation, all or nothing: a refusal leaves nothing of it in the request's transaction."""
    by = await info.context.staff(permission)
    service = _vetting(info)
    async with service.session.begin_nested():
        return await work(service, by)


def _release(row: ReleaseRow) -> Release:
    published = row.created_at
    if published.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        published = published.replace(tzinfo=UTC)
    return Release(number=row.id, note=row.note, published_at=published)


@strawberry.type
class StaffQuery:
    @strawberry.field(description="Staff: what waits for review, oldest first, with findings.")
    async def review_queue(
        self,
        info: Info,
        kind: str | None = None,
        locale: str | None = None,
        market: str | None = None,
        rule: str | None = None,
    ) -> list[ReviewItem]:
        await info.context.staff(Permission.READ_DRAFTS)
        states = await _vetting(info).queue(kind=kind, locale=locale, market=market, rule=rule)
        return [ReviewItem.of(state) for state in states]

    @strawberry.field(description="Staff: the revisions the next release would make live.")
    async def pending_release(self, info: Info) -> list[ReviewItem]:
        await info.context.staff(Permission.READ_DRAFTS)
        return [ReviewItem.of(state) for state in await _vetting(info).pending()]

    @strawberry.field(description="Staff: published revisions whose review is due.")
    async def reviews_due(self, info: Info, within_days: int = 30) -> list[ReviewItem]:
        await info.context.staff(Permission.READ_DRAFTS)
        states = await _vetting(info).due(within=timedelta(days=max(within_days, 0)))
        return [ReviewItem.of(state) for state in states]

    @strawberry.field(description="Staff: every revision of an entry, oldest first.")
    async def history(self, info: Info, key: str, locale: str | None = None) -> list[ReviewItem]:
        await info.context.staff(Permission.READ_DRAFTS)
        return [ReviewItem.of(state) for state in await _vetting(info).history(key, locale)]

    @strawberry.field(description="Staff: changed words and fields between two revisions.")
    async def revision_diff(
        self, info: Info, key: str, before: int, after: int, locale: str = "en-US"
    ) -> Diff:
        await info.context.staff(Permission.READ_DRAFTS)
        return Diff.of(await _vetting(info).diff(key, locale, before, after))

    @strawberry.field(description="Admins: the audit log, oldest first.")
    async def audit_log(
        self,
        info: Info,
        since: datetime | None = None,
        actor: str | None = None,
        key: str | None = None,
        first: int = 100,
    ) -> list[AuditEvent]:
        by = await info.context.staff(Permission.READ_AUDIT)
        events = await _vetting(info).audit_log(
            by=by, since=since, actor=actor, key=key, limit=min(max(first, 1), 1000)
        )
        return [
            AuditEvent(
                at=e.at,
                actor=e.actor,
                action=e.action,
                key=e.entry_key,
                locale=e.locale,
                revision_id=e.revision_id,
                release_id=e.release_id,
                reason=e.reason,
                before=JSON(e.before) if e.before is not None else None,
                after=JSON(e.after) if e.after is not None else None,
            )
            for e in events
        ]


@strawberry.type(description="Staff operations; each needs `Authorization: Bearer <staff key>`.")
class Mutation:
    @strawberry.mutation(description="Editors: submit a draft for review.")
    async def submit_revision(self, info: Info, revision: RevisionInput) -> ReviewItem:
        state = await _write(info, Permission.SUBMIT, lambda s, by: s.submit(revision.ref(), by=by))
        return ReviewItem.of(state)

    @strawberry.mutation(description="Reviewers: approve a revision in review (not your own).")
    async def approve_revision(self, info: Info, revision: RevisionInput, note: str) -> ReviewItem:
        state = await _write(
            info, Permission.REVIEW, lambda s, by: s.approve(revision.ref(), note=note, by=by)
        )
        return ReviewItem.of(state)

    @strawberry.mutation(description="Reviewers: reject a revision, with a reason.")
    async def reject_revision(self, info: Info, revision: RevisionInput, reason: str) -> ReviewItem:
        state = await _write(
            info, Permission.REVIEW, lambda s, by: s.reject(revision.ref(), reason=reason, by=by)
        )
        return ReviewItem.of(state)

    @strawberry.mutation(description="Admins: waive one finding of one revision, with a reason.")
    async def waive_finding(
        self, info: Info, revision: RevisionInput, fingerprint: str, reason: str
    ) -> ReviewItem:
        async def work(service: VettingService, by: Principal) -> RevisionState:
            await service.waive(revision.ref(), fingerprint, reason=reason, by=by)
            return await service.state(revision.ref())

        return ReviewItem.of(await _write(info, Permission.WAIVE, work))

    @strawberry.mutation(description="Publishers: publish every newly approved revision.")
    async def publish_release(self, info: Info, note: str) -> Release:
        row = await _write(info, Permission.PUBLISH, lambda s, by: s.publish(note=note, by=by))
        return _release(row)

    @strawberry.mutation(description="Publishers: a release in which the entry shows nothing.")
    async def withdraw_entry(
        self, info: Info, key: str, reason: str, locale: str | None = None
    ) -> Release:
        row = await _write(
            info,
            Permission.PUBLISH,
            lambda s, by: s.withdraw(key, locale=locale, reason=reason, by=by),
        )
        return _release(row)

    @strawberry.mutation(description="Publishers: show an earlier published revision again.")
    async def rollback_entry(
        self, info: Info, key: str, to_revision: int, reason: str, locale: str = "en-US"
    ) -> Release:
        row = await _write(
            info,
            Permission.PUBLISH,
            lambda s, by: s.rollback(
                key, locale=locale, to_number=to_revision, reason=reason, by=by
            ),
        )
        return _release(row)
