"""The review workflow's states and transitions, enforced here and nowhere else.

draft → in review → approved → published → superseded (or withdrawn); in review or approved
→ rejected, which is final: a correction is a new revision. A published revision whose review
is due may be approved again. The state is derived from the append-only decisions and release
items, never stored, so it cannot drift from the history it summarises.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from service.access.principal import Principal
from service.content.errors import Conflict, Forbidden
from service.content.models import Decision


class Status(StrEnum):
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


def status_of(
    last_decision: str | None, *, live: bool, published: bool, withdrawn: bool = False
) -> Status:
    if live:
        return Status.PUBLISHED
    if published:
        return Status.WITHDRAWN if withdrawn else Status.SUPERSEDED
    if last_decision is None:
        return Status.DRAFT
    return {
        Decision.SUBMITTED.value: Status.IN_REVIEW,
        Decision.APPROVED.value: Status.APPROVED,
        Decision.REJECTED.value: Status.REJECTED,
    }[last_decision]


def check_submit(name: str, status: Status, newest: int, number: int) -> None:
    if status != Status.DRAFT:
        raise Conflict(f"{name} is {status.value.replace('_', ' ')}: only a draft can be submitted")
    if number != newest:
        raise Conflict(
            f"{name} is not the newest revision (revision {newest} is): submit that one instead"
        )


def check_approve(name: str, status: Status, *, review_due: datetime | None, now: datetime) -> None:
    if status == Status.IN_REVIEW:
        return
    if status in {Status.PUBLISHED, Status.APPROVED} and review_due is not None:
        if review_due <= now:
            return  # the periodic re-review of a revision partners see (or will see)
        raise Conflict(f"{name} is approved already; its review is due on {review_due:%Y-%m-%d}")
    raise Conflict(_refusal(name, status, "approved"))


def check_reject(name: str, status: Status) -> None:
    if status not in {Status.IN_REVIEW, Status.APPROVED}:
        raise Conflict(_refusal(name, status, "rejected"))


def check_four_eyes(name: str, author: str, reviewer: Principal) -> None:
    """Nobody approves a revision they wrote, whatever their roles."""
    if author == reviewer.name:
        raise Forbidden(
            f"{reviewer.name} wrote {name}, so cannot approve it: four eyes, someone else must "
            "review it"
        )


def _refusal(name: str, status: Status, verb: str) -> str:
    reasons = {
        Status.DRAFT: "it is a draft: submit it for review first",
        Status.IN_REVIEW: "it is waiting for review",
        Status.APPROVED: "it is approved already",
        Status.REJECTED: "it was rejected, which is final: write a new revision",
        Status.PUBLISHED: "it is published",
        Status.SUPERSEDED: "a later revision replaced it in a release",
        Status.WITHDRAWN: "it was published and then withdrawn",
    }
    return f"{name} cannot be {verb}: {reasons[status]}"
