"""The `contentapi` commands of the editorial workflow: staff, review, withdraw, rollback,
history, diff and audit. Registered on the app of `service.cli`, whose error mapping they use."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.models import Role
from service.access.principal import Principal
from service.access.service import AccessService, acting_principal
from service.cli import (
    EXIT_CONFIG_ERROR,
    app,
    err,
    fail,
    load_settings,
    out,
    require_current_schema,
    run,
)
from service.config import Settings
from service.content.operations import in_transaction
from service.content.seedfiles import DEFAULT_LOCALE
from service.vetting.diff import Change
from service.vetting.service import RevisionRef, RevisionState, VettingService

T = TypeVar("T")

staff_app = typer.Typer(help="Staff accounts and their API keys.", no_args_is_help=True)
review_app = typer.Typer(help="Submit, approve, reject and waive; the queue.", no_args_is_help=True)
keys_app = typer.Typer(
    help="Partner API keys, scoped to markets and locales.", no_args_is_help=True
)
app.add_typer(staff_app, name="staff")
app.add_typer(keys_app, name="keys")
app.add_typer(review_app, name="review")

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--key",
        "--api-key",
        envvar="CONTENT_API_KEY",
        show_envvar=True,
        help="Your staff API key",
    ),
]
Locale = Annotated[str, typer.Option(help="The locale of the revision")]
Number = Annotated[
    int | None, typer.Option("--revision", help="The revision number (default: the newest)")
]


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


def service_for(session: AsyncSession, settings: Settings) -> VettingService:
    return VettingService(session, review_interval=timedelta(days=settings.review_interval_days))


def as_actor(
    key: str | None,
    work: Callable[[VettingService, Principal], Awaitable[T]],
    *,
    local_name: str | None = None,
) -> T:
    """Run `work` for the key's staff member (or the local identity in development), in one
    transaction: the key is checked in the transaction that acts on it."""
    settings = load_settings()
    require_current_schema(settings)

    async def transaction(session: AsyncSession) -> T:
        principal = await acting_principal(
            session,
            key,
            production=settings.is_production,
            local_name=local_name or settings.actor,
        )
        return await work(service_for(session, settings), principal)

    return run(in_transaction(settings, transaction))


def reading(work: Callable[[VettingService], Awaitable[T]]) -> T:
    settings = load_settings()
    require_current_schema(settings)
    return run(in_transaction(settings, lambda session: work(service_for(session, settings))))


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if moment else "-"


def _status(state: RevisionState) -> str:
    return state.status.value.replace("_", " ")


def print_findings(state: RevisionState) -> None:
    for checked in state.findings:
        f = checked.finding
        waived = (
            f" [waived by {checked.waiver.waived_by}: {checked.waiver.reason}]"
            if (checked.waiver)
            else ""
        )
        out.print(
            f"  {f.field}:{f.line}:{f.column}: {f.severity.value} {f.rule} {f.message} "
            f"({f.excerpt!r}) finding {f.fingerprint}{waived}",
            markup=False,
        )


def done(state: RevisionState, verb: str) -> None:
    out.print(f"{verb} {state.name}: now {_status(state)}.", markup=False)


# --- staff --------------------------------------------------------------------------------


@staff_app.command("add")
def staff_add(
    name: Annotated[str, typer.Argument(help="The person's name, as the audit log shows it")],
    role: Annotated[list[Role], typer.Option("--role", help="A role (repeat for several)")],
    key: ApiKey = None,
) -> None:
    """Add a staff member and print their first API key, once."""
    settings = load_settings()
    require_current_schema(settings)

    async def work(session: AsyncSession) -> tuple[Any, str]:
        by = None
        if key or not settings.is_production:
            by = await acting_principal(
                session, key, production=settings.is_production, local_name=settings.actor
            )
        return await AccessService(session).add_staff(name, list(role), by=by)

    member, secret = run(in_transaction(settings, work))
    out.print(f"Added {member.name} ({', '.join(member.roles)}). Their API key, shown only once:")
    out.print(secret, markup=False)
    err.print("Store it now: only its hash is kept. Revoke it with `contentapi staff revoke`.")


@staff_app.command("key")
def staff_key(
    name: Annotated[str, typer.Argument(help="The staff member")],
    key: ApiKey = None,
) -> None:
    """Issue another API key for a staff member (to rotate one), printed once."""
    secret = as_actor(
        key, lambda service, by: AccessService(service.session).issue_key(name, by=by)
    )
    out.print(f"New API key for {name}, shown only once:")
    out.print(secret, markup=False)


@staff_app.command("list")
def staff_list() -> None:
    """Staff members, their roles and their keys (visible prefixes only)."""
    members = reading(lambda service: AccessService(service.session).list_staff())
    table = Table(title="Staff")
    for column in ("name", "roles", "keys (prefix, last used)", "created", "revoked"):
        table.add_column(column)
    for member in members:
        keys = "\n".join(
            f"{k.prefix}… {_when(k.last_used_at)}" + (" revoked" if k.revoked_at else "")
            for k in member.keys
        )
        table.add_row(
            escape(member.name),
            ", ".join(member.roles),
            keys,
            _when(member.created_at),
            _when(member.revoked_at),
        )
    out.print(table)


@staff_app.command("revoke")
def staff_revoke(
    target: Annotated[str, typer.Argument(help="A staff member's name, or one key's prefix")],
    key: ApiKey = None,
) -> None:
    """Revoke a staff member and all their keys, or one key; at once, everywhere."""
    what = as_actor(key, lambda service, by: AccessService(service.session).revoke(target, by=by))
    out.print(f"Revoked {what}.", markup=False)


# --- partner keys -------------------------------------------------------------------------


def _codes(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@keys_app.command("create")
def keys_create(
    partner: Annotated[str, typer.Option(help="Who the key is for, as logs and lists show it")],
    markets: Annotated[str, typer.Option(help="Markets it may read, e.g. US,GB")],
    locales: Annotated[str, typer.Option(help="Locales it may ask for, e.g. en-US,fr-FR")],
    expires: Annotated[
        datetime | None, typer.Option(help="Expiry date (UTC), e.g. 2027-12-31")
    ] = None,
    key: ApiKey = None,
) -> None:
    """Create a partner key and print it, once (admins)."""
    expiry = expires.replace(tzinfo=UTC) if expires and expires.tzinfo is None else expires
    created, secret = as_actor(
        key,
        lambda service, by: AccessService(service.session).create_partner_key(
            partner,
            markets=_codes(markets),
            locales=_codes(locales),
            expires_at=expiry,
            by=by,
        ),
    )
    out.print(
        f"Created a key for {created.partner}: markets {', '.join(created.markets)}, "
        f"locales {', '.join(created.locales)}"
        + (f", expires {_when(created.expires_at)}" if created.expires_at else "")
        + ". The key, shown only once:",
        markup=False,
    )
    out.print(secret, markup=False)
    err.print("Send it to the partner over a safe channel: only its hash is kept.")


@keys_app.command("list")
def keys_list() -> None:
    """Partner keys: prefix, partner, scopes, created, last used (never the secret)."""
    found = reading(lambda service: AccessService(service.session).partner_keys())
    if not found:
        out.print("No partner key yet: create one with `contentapi keys create`.")
    now = datetime.now(UTC)
    for item in found:
        expires = item.expires_at
        if expires is not None and expires.tzinfo is None:
            expires = expires.replace(tzinfo=UTC)
        if item.revoked_at:
            state = f"revoked {_when(item.revoked_at)}"
        elif expires and expires <= now:
            state = f"expired {_when(expires)}"
        else:
            state = f"active until {_when(expires)}" if expires else "active"
        out.print(
            f"{item.prefix}…  {item.partner}  markets {', '.join(item.markets)}  "
            f"locales {', '.join(item.locales)}  created {_when(item.created_at)}  "
            f"last used {_when(item.last_used_at)}  {state}",
            markup=False,
        )


@keys_app.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix, as `keys list` shows it")],
    key: ApiKey = None,
) -> None:
    """Revoke a partner key; every instance refuses it from the next request on (admins)."""
    what = as_actor(
        key, lambda service, by: AccessService(service.session).revoke(prefix.rstrip("…"), by=by)
    )
    out.print(f"Revoked {what}.", markup=False)


# --- review -------------------------------------------------------------------------------


@review_app.command("submit")
def review_submit(
    entry: Annotated[str | None, typer.Argument(help="The entry's key")] = None,
    locale: Locale = DEFAULT_LOCALE,
    revision: Number = None,
    all_drafts: Annotated[
        bool, typer.Option("--all", help="Submit the newest draft of every entry and locale")
    ] = False,
    key: ApiKey = None,
) -> None:
    """Submit a draft revision for review (compliance errors block it)."""
    if all_drafts == (entry is not None):
        fail("name one entry, or give --all", EXIT_CONFIG_ERROR)
    if entry is None:
        states = as_actor(key, lambda service, by: service.submit_all(by=by))
        for state in states:
            done(state, "Submitted")
        out.print(f"Submitted {len(states)} revisions." if states else "No draft to submit.")
        return
    ref = RevisionRef(entry, locale, revision)
    done(as_actor(key, lambda service, by: service.submit(ref, by=by)), "Submitted")


@review_app.command("approve")
def review_approve(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    note: Annotated[str, typer.Option(help="What you checked, for the record")],
    locale: Locale = DEFAULT_LOCALE,
    revision: Number = None,
    key: ApiKey = None,
) -> None:
    """Approve a revision in review (not your own; compliance errors block it)."""
    ref = RevisionRef(entry, locale, revision)
    done(as_actor(key, lambda service, by: service.approve(ref, note=note, by=by)), "Approved")


@review_app.command("reject")
def review_reject(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    reason: Annotated[str, typer.Option(help="What the author must change")],
    locale: Locale = DEFAULT_LOCALE,
    revision: Number = None,
    key: ApiKey = None,
) -> None:
    """Reject a revision in review or approved; final: a correction is a new revision."""
    ref = RevisionRef(entry, locale, revision)
    done(as_actor(key, lambda service, by: service.reject(ref, reason=reason, by=by)), "Rejected")


@review_app.command("waive")
def review_waive(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    finding: Annotated[str, typer.Argument(help="The finding's id, as `review show` prints it")],
    reason: Annotated[str, typer.Option(help="Why the finding is a false positive")],
    locale: Locale = DEFAULT_LOCALE,
    revision: Number = None,
    key: ApiKey = None,
) -> None:
    """Waive one compliance finding on one revision, with a recorded reason (admins)."""
    ref = RevisionRef(entry, locale, revision)
    waiver = as_actor(key, lambda service, by: service.waive(ref, finding, reason=reason, by=by))
    out.print(f"Waived {waiver.rule} finding {waiver.fingerprint}.", markup=False)


@review_app.command("show")
def review_show(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    locale: Locale = DEFAULT_LOCALE,
    revision: Number = None,
) -> None:
    """One revision: its status, decisions and compliance findings."""
    state = reading(lambda service: service.state(RevisionRef(entry, locale, revision)))
    out.print(f"{state.name}: {_status(state)}, by {state.revision.author}", markup=False)
    for decision in state.decisions:
        out.print(
            f"  {_when(decision.created_at)} {decision.decision} by {decision.reviewer}"
            + (f": {decision.reason}" if decision.reason else ""),
            markup=False,
        )
    print_findings(state)
    if not state.findings:
        out.print("  no compliance findings")


@review_app.command("queue")
def review_queue(
    kind: Annotated[str | None, typer.Option(help="snippet, takeaway or disclaimer")] = None,
    locale: Annotated[str | None, typer.Option(help="Only this locale")] = None,
    market: Annotated[str | None, typer.Option(help="Only revisions for this market")] = None,
    rule: Annotated[
        str | None, typer.Option(help="Only revisions with this rule's finding")
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="text or json")] = Format.TEXT,
) -> None:
    """What waits for review, oldest first, with its compliance findings."""
    states = reading(
        lambda service: service.queue(kind=kind, locale=locale, market=market, rule=rule)
    )
    if output == Format.JSON:
        out.print_json(json.dumps([_queue_item(state) for state in states]))
        return
    if not states:
        out.print("Nothing waits for review.")
        return
    for state in states:
        submitted = state.submitted
        out.print(
            f"{state.entry.kind} {state.entry.key} ({state.revision.locale}) revision "
            f"{state.revision.number} by {state.revision.author}, submitted "
            f"{_when(submitted.created_at if submitted else None)}"
            f" by {submitted.reviewer if submitted else '-'}",
            markup=False,
        )
        print_findings(state)


def _queue_item(state: RevisionState) -> dict[str, Any]:
    submitted = state.submitted
    return {
        "kind": state.entry.kind,
        "key": state.entry.key,
        "locale": state.revision.locale,
        "revision": state.revision.number,
        "author": state.revision.author,
        "submitted_at": _when(submitted.created_at if submitted else None),
        "findings": [
            {
                "id": c.finding.fingerprint,
                "rule": c.finding.rule,
                "severity": c.finding.severity.value,
                "message": c.finding.message,
                "field": c.finding.field,
                "line": c.finding.line,
                "column": c.finding.column,
                "excerpt": c.finding.excerpt,
                "waived": c.waiver is not None,
            }
            for c in state.findings
        ],
    }


@review_app.command("due")
def review_due(
    within: Annotated[int, typer.Option(help="Also list reviews due within this many days")] = 30,
) -> None:
    """Published revisions whose approval has expired or expires soon: re-review them."""
    states = reading(lambda service: service.due(within=timedelta(days=within)))
    if not states:
        out.print(f"No review is due within {within} days.")
        return
    for state in states:
        out.print(
            f"{state.entry.key} ({state.revision.locale}) revision {state.revision.number}: "
            f"approved {_when(state.approved_at)}, review due {_when(state.review_due)}",
            markup=False,
        )


# --- releases and history -----------------------------------------------------------------


@app.command()
def withdraw(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    reason: Annotated[str, typer.Option(help="Why partners must stop showing it")],
    locale: Annotated[str | None, typer.Option(help="Only this locale (default: all)")] = None,
    key: ApiKey = None,
) -> None:
    """Publish a release in which the entry shows nothing any more."""
    release = as_actor(
        key, lambda service, by: service.withdraw(entry, locale=locale, reason=reason, by=by)
    )
    out.print(f"Published release {release.id}: withdrew {entry}.", markup=False)


@app.command()
def rollback(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    to_revision: Annotated[int, typer.Option(help="The earlier published revision to show")],
    reason: Annotated[str, typer.Option(help="Why")],
    locale: Locale = DEFAULT_LOCALE,
    key: ApiKey = None,
) -> None:
    """Publish a release that shows an earlier published revision again."""
    release = as_actor(
        key,
        lambda service, by: service.rollback(
            entry, locale=locale, to_number=to_revision, reason=reason, by=by
        ),
    )
    out.print(
        f"Published release {release.id}: {entry} ({locale}) shows revision {to_revision} again.",
        markup=False,
    )


@app.command()
def history(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    locale: Annotated[str | None, typer.Option(help="Only this locale")] = None,
) -> None:
    """Every revision of an entry: status, author, reviews, findings, releases."""
    states = reading(lambda service: service.history(entry, locale))
    for state in states:
        revision = state.revision
        releases = ", ".join(str(r) for r in state.releases) or "none"
        out.print(
            f"{entry} ({revision.locale}) revision {revision.number}: {_status(state)}; written "
            f"by {revision.author} {_when(revision.created_at)}; releases: {releases}",
            markup=False,
        )
        if revision.change_note:
            out.print(f"  note: {revision.change_note}", markup=False)
        for decision in state.decisions:
            out.print(
                f"  {decision.decision} by {decision.reviewer} {_when(decision.created_at)}"
                + (f": {decision.reason}" if decision.reason else ""),
                markup=False,
            )
        print_findings(state)


@app.command()
def diff(
    entry: Annotated[str, typer.Argument(help="The entry's key")],
    before: Annotated[int, typer.Argument(help="The earlier revision number")],
    after: Annotated[int, typer.Argument(help="The later revision number")],
    locale: Locale = DEFAULT_LOCALE,
) -> None:
    """Changed words in the body and changed metadata between two revisions."""
    result = reading(lambda service: service.diff(entry, locale, before, after))
    out.print(f"{entry} ({locale}): revision {before} → {after}", markup=False)
    for change in result.fields:
        out.print(f"  {change.field}: {change.before!r} → {change.after!r}", markup=False)
    styled = []
    for segment in result.body:
        text = escape(segment.text)
        if segment.change == Change.DELETE:
            styled.append(f"[red strike][-{text}-][/]")
        elif segment.change == Change.INSERT:
            styled.append(f"[green]{{+{text}+}}[/]")
        else:
            styled.append(text)
    if any(segment.change != Change.EQUAL for segment in result.body):
        out.print("".join(styled))
    elif not result.fields:
        out.print("No difference.")


@app.command()
def audit(
    since: Annotated[
        datetime | None, typer.Option(help="Only events from this date or time (UTC)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Only this person's actions")] = None,
    entry: Annotated[str | None, typer.Option("--key", help="Only this entry's events")] = None,
    api_key: Annotated[
        str | None,
        typer.Option("--api-key", envvar="CONTENT_API_KEY", help="Your staff API key (admin)"),
    ] = None,
    output: Annotated[Format, typer.Option("--format", help="text or json")] = Format.TEXT,
) -> None:
    """The audit log: who did what, when and why. Append-only."""
    moment = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    events = as_actor(
        api_key,
        lambda service, by: service.audit_log(by=by, since=moment, actor=actor, key=entry),
    )
    if output == Format.JSON:
        out.print_json(
            json.dumps(
                [
                    {
                        "at": _when(e.at),
                        "actor": e.actor,
                        "action": e.action,
                        "key": e.entry_key,
                        "locale": e.locale,
                        "revision_id": e.revision_id,
                        "release_id": e.release_id,
                        "reason": e.reason,
                        "before": e.before,
                        "after": e.after,
                    }
                    for e in events
                ]
            )
        )
        return
    for e in events:
        target = " ".join(
            part
            for part in (
                e.entry_key or "",
                f"({e.locale})" if e.locale else "",
                f"release {e.release_id}" if e.release_id else "",
            )
            if part
        )
        out.print(
            f"{_when(e.at)} {e.actor} {e.action} {target}" + (f": {e.reason}" if e.reason else ""),
            markup=False,
        )
    if not events:
        out.print("No matching event.")
