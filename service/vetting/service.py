"""The vetting operations: submit, approve, reject, waive, publish, withdraw, roll back; the
queue, re-reviews due, history, diffs and the audit log. No HTTP, no GraphQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principal import Permission, Principal
from service.content.errors import BadInput, Conflict, NotFound
from service.content.models import (
    Citation,
    Decision,
    Entry,
    Release,
    ReleaseItem,
    ReviewDecision,
    Revision,
    utcnow,
)
from service.content.repository import ContentRepository, LiveRepository
from service.content.seedfiles import DEFAULT_LOCALE
from service.content.service import ContentService
from service.delivery.webhooks import enqueue_release
from service.vetting import audit, workflow
from service.vetting.compliance import Finding, Severity
from service.vetting.diff import FieldChange, Segment, field_changes, word_diff
from service.vetting.findings import findings_of
from service.vetting.models import AuditEvent, FindingWaiver
from service.vetting.repository import VettingRepository
from service.vetting.workflow import Status

DEFAULT_REVIEW_INTERVAL = timedelta(days=365)


@dataclass(frozen=True)
class RevisionRef:
    """A revision as people name it: entry key, locale, number (the newest when None)."""

    key: str
    locale: str = DEFAULT_LOCALE
    number: int | None = None


@dataclass(frozen=True)
class CheckedFinding:
    finding: Finding
    waiver: FindingWaiver | None

    @property
    def blocking(self) -> bool:
        return self.finding.severity == Severity.ERROR and self.waiver is None


@dataclass
class RevisionState:
    """One revision with everything the workflow knows about it."""

    revision: Revision
    entry: Entry
    status: Status
    decisions: list[ReviewDecision]
    releases: list[int]
    findings: list[CheckedFinding] = field(default_factory=list)
    approved_at: datetime | None = None
    review_due: datetime | None = None

    @property
    def name(self) -> str:
        return f"revision {self.revision.number} of {self.entry.key} ({self.revision.locale})"

    @property
    def submitted(self) -> ReviewDecision | None:
        found = [d for d in self.decisions if d.decision == Decision.SUBMITTED.value]
        return found[-1] if found else None


@dataclass(frozen=True)
class RevisionDiff:
    key: str
    locale: str
    before: int
    after: int
    body: list[Segment]
    fields: list[FieldChange]


@dataclass(frozen=True)
class RevisionDetails:
    """What a revision carries besides its text, in the order its file lists them."""

    topics: list[str]
    conditions: list[str]
    categories: list[str]
    markets: list[str]
    tags: list[str]
    disclaimers: list[str]  # the disclaimers partners must show beside it
    citations: list[Citation]  # catalog entries, with their DOI and PMID


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=utcnow().tzinfo)


class VettingService:
    def __init__(
        self, session: AsyncSession, *, review_interval: timedelta = DEFAULT_REVIEW_INTERVAL
    ) -> None:
        self.session = session
        self.review_interval = review_interval
        self.repository = VettingRepository(session)
        self.content = ContentService(session)

    # --- reading states ---------------------------------------------------------------------

    async def _entry(self, key: str) -> Entry:
        entry = await self.repository.entry(key)
        if entry is None:
            raise NotFound(f"no entry with key {key!r}")
        return entry

    async def _revision(self, ref: RevisionRef) -> tuple[Revision, Entry]:
        entry = await self._entry(ref.key)
        revision = await self.repository.revision(entry.id, ref.locale, ref.number)
        if revision is None:
            what = f"revision {ref.number}" if ref.number is not None else "no revision"
            raise NotFound(f"{what} of {ref.key} in {ref.locale} does not exist")
        return revision, entry

    async def states(
        self, revisions: Sequence[tuple[Revision, Entry]], *, with_findings: bool = True
    ) -> list[RevisionState]:
        """The state of each revision, in a fixed number of statements whatever their number."""
        ids = [revision.id for revision, _ in revisions]
        decisions = await self.repository.decisions(ids)
        releases = await self.repository.releases_showing(ids)
        content = ContentRepository(self.session)
        latest = await content.latest_release_id()
        live = set((await content.live_revisions(latest)).values())
        findings = await findings_of(self.session, revisions) if with_findings else {}
        waivers = await self.repository.waivers(ids) if with_findings else {}
        items_by_entry: dict[int, list[ReleaseItem]] = {}
        states = []
        for revision, entry in revisions:
            own = decisions[revision.id]
            published = bool(releases[revision.id])
            withdrawn = False
            if published and revision.id not in live:
                if entry.id not in items_by_entry:
                    items_by_entry[entry.id] = await self.repository.release_items_of(entry.id)
                same = [i for i in items_by_entry[entry.id] if i.locale == revision.locale]
                shown = [i.revision_id for i in same if i.revision_id is not None]
                withdrawn = bool(same) and same[-1].revision_id is None and shown[-1] == revision.id
            status = workflow.status_of(
                own[-1].decision if own else None,
                live=revision.id in live,
                published=published,
                withdrawn=withdrawn,
            )
            approvals = [d for d in own if d.decision == Decision.APPROVED.value]
            approved_at = _aware(approvals[-1].created_at) if approvals else None
            by_fingerprint = {w.fingerprint: w for w in waivers.get(revision.id, [])}
            states.append(
                RevisionState(
                    revision=revision,
                    entry=entry,
                    status=status,
                    decisions=own,
                    releases=releases[revision.id],
                    findings=[
                        CheckedFinding(found, by_fingerprint.get(found.fingerprint))
                        for found in findings.get(revision.id, [])
                    ],
                    approved_at=approved_at,
                    review_due=approved_at + self.review_interval if approved_at else None,
                )
            )
        return states

    async def state(self, ref: RevisionRef) -> RevisionState:
        return (await self.states([await self._revision(ref)]))[0]

    # --- transitions ------------------------------------------------------------------------

    async def _decide(
        self, state: RevisionState, decision: Decision, by: Principal, reason: str, action: str
    ) -> RevisionState:
        before = state.status
        self.session.add(
            ReviewDecision(
                revision_id=state.revision.id,
                decision=decision.value,
                reviewer=by.name,
                reason=reason,
                created_at=utcnow(),
            )
        )
        await self.session.flush()
        after = (await self.states([(state.revision, state.entry)], with_findings=False))[0]
        after.findings = state.findings
        await audit.record(
            self.session,
            [
                audit.event(
                    by,
                    action,
                    entry_key=state.entry.key,
                    locale=state.revision.locale,
                    revision_id=state.revision.id,
                    reason=reason,
                    before={"status": before.value, "revision": state.revision.number},
                    after={"status": after.status.value, "revision": state.revision.number},
                )
            ],
        )
        return after

    def _refuse_blocking_findings(self, state: RevisionState, verb: str) -> None:
        blocking = [checked.finding for checked in state.findings if checked.blocking]
        if blocking:
            listed = "; ".join(
                f"{f.field} line {f.line}:{f.column} {f.rule}: {f.message} ({f.excerpt!r})"
                for f in blocking
            )
            raise Conflict(
                f"{state.name} cannot be {verb}: {len(blocking)} compliance error"
                f"{'s' if len(blocking) != 1 else ''} — fix the text in a new revision or have "
                f"an admin waive a false positive: {listed}"
            )

    async def submit(self, ref: RevisionRef, *, by: Principal) -> RevisionState:
        by.require(Permission.SUBMIT)
        await self.content.repository.lock_for_writing()
        state = await self.state(ref)
        newest = (await self.repository.newest_numbers(state.entry.id))[state.revision.locale]
        workflow.check_submit(state.name, state.status, newest, state.revision.number)
        self._refuse_blocking_findings(state, "submitted")
        return await self._decide(state, Decision.SUBMITTED, by, "", "revision.submit")

    async def submit_all(self, *, by: Principal) -> list[RevisionState]:
        """Submit the newest revision of every entry and locale that is still a draft."""
        by.require(Permission.SUBMIT)
        await self.content.repository.lock_for_writing()
        latest = await self.content.repository.latest_revisions()
        undecided = set(await self.content.repository.undecided_latest_revisions())
        ids = [item.revision_id for item in latest.values() if item.revision_id in undecided]
        states = await self.states(await self.repository.revisions_with_entries(ids))
        drafts = [state for state in states if state.status == Status.DRAFT]
        for state in drafts:
            self._refuse_blocking_findings(state, "submitted")
        return [
            await self._decide(state, Decision.SUBMITTED, by, "", "revision.submit")
            for state in drafts
        ]

    async def approve(self, ref: RevisionRef, *, note: str, by: Principal) -> RevisionState:
        by.require(Permission.REVIEW)
        await self.content.repository.lock_for_writing()
        state = await self.state(ref)
        workflow.check_four_eyes(state.name, state.revision.author, by)
        workflow.check_approve(state.name, state.status, review_due=state.review_due, now=utcnow())
        self._refuse_blocking_findings(state, "approved")
        return await self._decide(state, Decision.APPROVED, by, note, "revision.approve")

    async def reject(self, ref: RevisionRef, *, reason: str, by: Principal) -> RevisionState:
        by.require(Permission.REVIEW)
        if not reason.strip():
            raise BadInput("a rejection needs a reason the author can act on")
        await self.content.repository.lock_for_writing()
        state = await self.state(ref)
        workflow.check_reject(state.name, state.status)
        return await self._decide(state, Decision.REJECTED, by, reason.strip(), "revision.reject")

    async def waive(
        self, ref: RevisionRef, fingerprint: str, *, reason: str, by: Principal
    ) -> FindingWaiver:
        by.require(Permission.WAIVE)
        if not reason.strip():
            raise BadInput("a waiver needs a reason: why is this finding a false positive?")
        await self.content.repository.lock_for_writing()
        state = await self.state(ref)
        if state.status not in {Status.DRAFT, Status.IN_REVIEW}:
            raise Conflict(
                f"{state.name} is {state.status.value.replace('_', ' ')}: findings are waived "
                "before approval"
            )
        matching = [c for c in state.findings if c.finding.fingerprint == fingerprint]
        if not matching:
            known = ", ".join(c.finding.fingerprint for c in state.findings) or "none"
            raise NotFound(f"{state.name} has no finding {fingerprint!r}; its findings: {known}")
        if matching[0].waiver is not None:
            raise Conflict(f"finding {fingerprint} of {state.name} is waived already")
        finding = matching[0].finding
        waiver = FindingWaiver(
            revision_id=state.revision.id,
            rule=finding.rule,
            fingerprint=fingerprint,
            reason=reason.strip(),
            waived_by=by.name,
            created_at=utcnow(),
        )
        self.session.add(waiver)
        await self.session.flush()
        await audit.record(
            self.session,
            [
                audit.event(
                    by,
                    "finding.waive",
                    entry_key=state.entry.key,
                    locale=state.revision.locale,
                    revision_id=state.revision.id,
                    reason=reason.strip(),
                    after={
                        "rule": finding.rule,
                        "finding": fingerprint,
                        "excerpt": finding.excerpt,
                    },
                )
            ],
        )
        return waiver

    # --- releases ---------------------------------------------------------------------------

    async def _release_events(self, by: Principal | str, action: str, release: Release) -> None:
        """The audit log and the webhook outbox of a new release, in its transaction. Every
        release (publish, withdraw, rollback, from any door) passes here, so the outbox is
        written here: a webhook is owed exactly when the release commits."""
        await enqueue_release(self.session, release)
        items = await self.repository.items_of_release(release.id)
        keys = await self.content.repository.keys_of_entries({entry_id for entry_id, _, _ in items})
        await audit.record(
            self.session,
            [audit.event(by, action, release_id=release.id, reason=release.note)]
            + [
                audit.event(
                    by,
                    action,
                    entry_key=keys[entry_id],
                    locale=locale,
                    revision_id=rid,
                    release_id=release.id,
                    reason=release.note,
                    after={"revision_id": rid},
                )
                for entry_id, locale, rid in items
            ],
        )

    async def publish(self, *, note: str, by: Principal | str) -> Release:
        if isinstance(by, Principal):
            by.require(Permission.PUBLISH)
        if not note.strip():
            raise BadInput("a release needs a note saying why it exists")
        name = by.name if isinstance(by, Principal) else by
        release = await self.content.publish(note=note.strip(), published_by=name)
        await self._release_events(by, "release.publish", release)
        return release

    async def withdraw(
        self, key: str, *, locale: str | None, reason: str, by: Principal
    ) -> Release:
        """A release in which the entry (in one locale, or in all) shows nothing any more."""
        by.require(Permission.PUBLISH)
        if not reason.strip():
            raise BadInput("a withdrawal needs a reason")
        await self.content.repository.lock_for_writing()
        entry = await self._entry(key)
        latest = await self.content.repository.latest_release_id()
        live = await self.content.repository.live_revisions(latest)
        targets = {
            (entry_id, loc): None
            for (entry_id, loc) in live
            if entry_id == entry.id and (locale is None or loc == locale)
        }
        if not targets:
            where = f" in {locale}" if locale else ""
            raise Conflict(f"{key} is not live{where}: there is nothing to withdraw")
        release = await self.content.append_release(
            note=reason.strip(), published_by=by.name, changes=dict(targets)
        )
        await self._release_events(by, "release.withdraw", release)
        return release

    async def rollback(
        self, key: str, *, locale: str, to_number: int, reason: str, by: Principal
    ) -> Release:
        """A release that shows an earlier published revision again; history is kept."""
        by.require(Permission.PUBLISH)
        if not reason.strip():
            raise BadInput("a rollback needs a reason")
        await self.content.repository.lock_for_writing()
        state = await self.state(RevisionRef(key, locale, to_number))
        if state.status == Status.PUBLISHED:
            raise Conflict(f"{state.name} is live already: there is nothing to roll back")
        if not state.releases:
            raise Conflict(
                f"{state.name} was never published: a rollback returns to a version partners "
                "have seen; have it reviewed and published instead"
            )
        release = await self.content.append_release(
            note=reason.strip(),
            published_by=by.name,
            changes={(state.entry.id, locale): state.revision.id},
        )
        await self._release_events(by, "release.rollback", release)
        return release

    # --- lists ------------------------------------------------------------------------------

    async def queue(
        self,
        *,
        kind: str | None = None,
        locale: str | None = None,
        market: str | None = None,
        rule: str | None = None,
    ) -> list[RevisionState]:
        """What waits for review, oldest submission first, with its findings."""
        waiting = await self.repository.in_review()
        pairs = [
            (revision, entry)
            for revision, entry, _ in waiting
            if (kind is None or entry.kind == kind)
            and (locale is None or revision.locale == locale)
        ]
        states = await self.states(pairs)
        if market is not None:
            markets = await LiveRepository(self.session).attached_markets(
                [state.revision.id for state in states]
            )
            states = [s for s in states if market in markets.get(s.revision.id, [])]
        if rule is not None:
            states = [s for s in states if any(c.finding.rule == rule for c in s.findings)]
        return states

    async def pending(self) -> list[RevisionState]:
        """The revisions the next `publish` would make live."""
        publishable = await self.content.repository.publishable_revisions()
        return await self.states(
            await self.repository.revisions_with_entries(list(publishable.values()))
        )

    async def due(self, *, within: timedelta = timedelta(0)) -> list[RevisionState]:
        """Live revisions whose approval expires within `within` (or has expired)."""
        latest = await self.content.repository.latest_release_id()
        live = list((await self.content.repository.live_revisions(latest)).values())
        states = await self.states(
            await self.repository.revisions_with_entries(live), with_findings=False
        )
        horizon = utcnow() + within
        due = [s for s in states if s.review_due is None or s.review_due <= horizon]
        return sorted(due, key=lambda s: (s.review_due or utcnow(), s.entry.key))

    async def history(self, key: str, locale: str | None = None) -> list[RevisionState]:
        entry = await self._entry(key)
        revisions = await self.repository.revisions_of(entry.id, locale)
        if not revisions:
            raise NotFound(f"{key} has no revision in {locale}")
        return await self.states([(revision, entry) for revision in revisions])

    async def diff(self, key: str, locale: str, before: int, after: int) -> RevisionDiff:
        old, _ = await self._revision(RevisionRef(key, locale, before))
        new, _ = await self._revision(RevisionRef(key, locale, after))
        metadata = await self._metadata([old.id, new.id])
        return RevisionDiff(
            key=key,
            locale=locale,
            before=before,
            after=after,
            body=word_diff(old.body_markdown, new.body_markdown),
            fields=field_changes(
                metadata[old.id] | _own_fields(old), metadata[new.id] | _own_fields(new)
            ),
        )

    async def details(self, state: RevisionState) -> RevisionDetails:
        rid = state.revision.id
        lists = await self._link_lists([rid])
        cited = lists["citations"][rid]
        catalog = await self.repository.citations(cited)
        return RevisionDetails(
            topics=lists["topics"][rid],
            conditions=lists["conditions"][rid],
            categories=lists["categories"][rid],
            markets=lists["markets"][rid],
            tags=lists["tags"][rid],
            disclaimers=lists["disclaimers"][rid],
            citations=[catalog[key] for key in cited if key in catalog],
        )

    async def _link_lists(self, ids: list[int]) -> dict[str, dict[int, list[str]]]:
        """Each catalog list (topics, citations ...) of each revision, in its file's order."""
        links = LiveRepository(self.session)
        return {
            "topics": await links.attached_topics(ids),
            "conditions": await links.attached_conditions(ids),
            "categories": await links.attached_categories(ids),
            "markets": await links.attached_markets(ids),
            "citations": await links.attached_citations(ids),
            "disclaimers": await links.attached_disclaimers(ids),
            "tags": await links.attached_tags(ids),
        }

    async def _metadata(self, ids: list[int]) -> dict[int, dict[str, object]]:
        lists = await self._link_lists(ids)
        return {rid: {name: values.get(rid, []) for name, values in lists.items()} for rid in ids}

    async def audit_log(
        self,
        *,
        by: Principal,
        since: datetime | None = None,
        actor: str | None = None,
        key: str | None = None,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        by.require(Permission.READ_AUDIT)
        return await self.repository.audit_events(
            since=since, actor=actor, entry_key=key, limit=limit
        )


def _own_fields(revision: Revision) -> dict[str, object]:
    return {
        "title": revision.title,
        "summary": revision.summary,
        "evidence": revision.evidence,
        "position": revision.position,
        "disclaimer_kind": revision.disclaimer_kind,
    }
