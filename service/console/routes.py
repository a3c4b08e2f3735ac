"""The reviewers' console: server-rendered pages over the vetting service, at /console.

Thin, like the GraphQL layer: every page reads through `VettingService`, every form calls
the same operation the commands and mutations call, and every rule (roles, four eyes,
transitions, findings) is the domain's. A refusal is the domain's own message on the page,
with nothing changed: each action runs in a SAVEPOINT that the refusal rolls back.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from service.access.principal import Permission, Principal
from service.access.service import AccessService
from service.config import Settings
from service.console.security import (
    COOKIE,
    PREFIX,
    ConsoleSession,
    SecurityHeaders,
    SessionCodec,
)
from service.console.views import (
    entry_findings,
    live_number,
    numbered,
    source_view,
    status_label,
    texts_of,
    when,
)
from service.content.errors import (
    BadInput,
    Conflict,
    ContentError,
    Forbidden,
    NotFound,
    Unauthenticated,
)
from service.content.models import NOTE_LENGTH, EntryKind
from service.content.service import NothingToPublish
from service.content.text import character_name, find_forbidden
from service.vetting.compliance import load_rules
from service.vetting.diff import Change
from service.vetting.service import RevisionDiff, RevisionRef, RevisionState, VettingService
from service.vetting.workflow import Status

T = TypeVar("T")
# an action: the domain call a form makes, returning what the next page tells the user
Work = Callable[[VettingService, Principal, dict[str, str]], Awaitable[str]]
HERE = Path(__file__).parent

templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals.update(prefix=PREFIX, Change=Change, Status=Status)
templates.env.filters.update(when=when, status=status_label)

# the HTTP status a refusal answers with; the page shows the domain's message
STATUS_OF: dict[type[ContentError], int] = {
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    NothingToPublish: 409,
    BadInput: 400,
}
# which forms a revision page offers: statuses in which the action may apply (the domain
# decides whether it does, and refuses with its reason)
REVIEWABLE = {Status.IN_REVIEW, Status.APPROVED, Status.PUBLISHED}
WAIVABLE = {Status.DRAFT, Status.IN_REVIEW}


@dataclass(frozen=True)
class ConsoleConfig:
    codec: SessionCodec
    review_interval: timedelta


class SignInRequired(Exception):
    """No valid session: the browser is sent to the sign-in page."""

    def __init__(self, back_to: str | None, message: str | None = None) -> None:
        super().__init__(message or "sign in first")
        self.back_to = back_to
        self.message = message


class FormRefused(Exception):
    """A POST without this session's CSRF token."""


def http_status(error: ContentError) -> int:
    for kind, status in STATUS_OF.items():
        if isinstance(error, kind):
            return status
    return 400


# --- the request: one transaction, one session cookie, one staff member ----------------------


async def database_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request owns the transaction: committed before the response leaves (so the page a
    redirect leads to sees it), rolled back on any error."""
    async with request.app.state.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


DatabaseDep = Annotated[AsyncSession, Depends(database_session, scope="function")]


@dataclass
class Visit:
    request: Request
    db: AsyncSession
    config: ConsoleConfig
    session: ConsoleSession
    principal: Principal | None = None
    store_session: bool = False  # the cookie changed and must be sent again
    flash: str | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.session.flash is not None:
            self.flash = self.session.flash
            self.session = self.session.with_flash(None)
            self.store_session = True

    @property
    def staff(self) -> Principal:
        if self.principal is None:
            raise Unauthenticated("sign in first")
        return self.principal

    @property
    def vetting(self) -> VettingService:
        return VettingService(self.db, review_interval=self.config.review_interval)

    async def act(self, work: Callable[[VettingService, Principal], Awaitable[T]]) -> T:
        """One action, all or nothing: a refusal leaves nothing of it in the transaction."""
        async with self.db.begin_nested():
            return await work(self.vetting, self.staff)

    def render(
        self, name: str, context: dict[str, Any] | None = None, status: int = 200
    ) -> Response:
        staff = self.principal
        page = {
            "staff": staff,
            "roles": ", ".join(sorted(role.value for role in staff.roles)) if staff else "",
            "can": {p.name: staff.can(p) for p in Permission} if staff else {},
            "csrf": self.session.csrf,
            "flash": self.flash,
        } | (context or {})
        response = templates.TemplateResponse(self.request, name, page, status_code=status)
        if self.store_session:
            self.config.codec.store(response, self.session)
        return response

    def redirect(self, url: str, flash: str | None = None) -> Response:
        response = RedirectResponse(url, status_code=303)
        self.config.codec.store(response, self.session.with_flash(flash))
        return response

    async def form(self) -> dict[str, str]:
        """The posted fields as text (a file or a repeated field counts as its first text)."""
        posted = await self.request.form()
        return {name: value for name, value in posted.multi_items() if isinstance(value, str)}


def _config(request: Request) -> ConsoleConfig:
    config: ConsoleConfig = request.app.state.console
    return config


async def _checked_form(request: Request, session: ConsoleSession) -> None:
    if request.method == "POST":
        posted = await request.form()
        if not session.accepts(posted.get("csrf")):
            raise FormRefused


async def anyone(request: Request, db: DatabaseDep) -> Visit:
    """A visitor who need not be signed in (the sign-in page); forms still need the token."""
    config = _config(request)
    session = config.codec.decode(request.cookies.get(COOKIE))
    if session is None:
        session = ConsoleSession.fresh()
        visit = Visit(request, db, config, session, store_session=True)
    else:
        visit = Visit(request, db, config, session)
    await _checked_form(request, session)
    return visit


async def signed_in(request: Request, db: DatabaseDep) -> Visit:
    """A signed-in staff member, whose key is authenticated again on this request."""
    config = _config(request)
    session = config.codec.decode(request.cookies.get(COOKIE))
    back_to = str(request.url.path) if request.method == "GET" else None
    if back_to and request.url.query:
        back_to += "?" + request.url.query
    if session is None or session.key is None:
        raise SignInRequired(back_to)
    await _checked_form(request, session)
    try:
        principal = await AccessService(db).authenticate(session.key)
        principal.require(Permission.READ_DRAFTS)
    except (Unauthenticated, Forbidden) as exc:
        raise SignInRequired(back_to, f"Signed out: {exc.message}.") from exc
    return Visit(request, db, config, session, principal=principal)


Anyone = Annotated[Visit, Depends(anyone)]
Staff = Annotated[Visit, Depends(signed_in)]


def _text(name: str, value: str, limit: int | None = None) -> str:
    """Free text from a form, as the databases will take it: without characters that are not
    text (PostgreSQL refuses NUL) and within the column's length."""
    found = find_forbidden(value)
    if found is not None:
        raise BadInput(f"the {name} contains {character_name(found.char)}, which is not allowed")
    if limit is not None and len(value.strip()) > limit:
        raise BadInput(f"the {name} has {len(value.strip())} characters; at most {limit}")
    return value


def _optional(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _revision_url(key: str, locale: str, number: int) -> str:
    return f"{PREFIX}/entries/{quote(key)}/{quote(locale)}/{number}"


def _entry_url(key: str, locale: str | None = None) -> str:
    url = f"{PREFIX}/entries/{quote(key)}"
    return url + ("?" + urlencode({"locale": locale}) if locale else "")


templates.env.globals.update(revision_url=_revision_url, entry_url=_entry_url)

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)


# --- signing in and out ---------------------------------------------------------------------


def _safe_next(value: str | None) -> str:
    """Only a path inside the console: never an address on another site."""
    if value and value.startswith(PREFIX + "/") and not value.startswith("//"):
        return value
    return f"{PREFIX}/"


@router.get("/sign-in")
async def sign_in_page(visit: Anyone, next: str | None = None) -> Response:
    return visit.render("sign_in.html", {"next": _safe_next(next)})


@router.post("/sign-in")
async def sign_in(visit: Anyone) -> Response:
    posted = await visit.form()
    key = posted.get("key", "").strip()
    back_to = _safe_next(posted.get("next"))
    try:
        if not key:
            raise Unauthenticated("enter your staff API key")
        principal = await AccessService(visit.db).authenticate(key)
        principal.require(Permission.READ_DRAFTS)
    except (Unauthenticated, Forbidden) as exc:
        return visit.render(
            "sign_in.html", {"next": back_to, "error": exc.message}, http_status(exc)
        )
    roles = ", ".join(sorted(role.value for role in principal.roles))
    # a new session (and token) at sign-in: nothing set before it carries over
    visit.session = ConsoleSession.fresh(key=key)
    return visit.redirect(back_to, f"Signed in as {principal.name} ({roles}).")


@router.post("/sign-out")
async def sign_out(visit: Anyone) -> Response:
    visit.session = ConsoleSession.fresh()
    return visit.redirect(f"{PREFIX}/sign-in", "Signed out.")


# --- the queue and re-reviews ---------------------------------------------------------------


@router.get("")
async def console_root() -> Response:
    return RedirectResponse(f"{PREFIX}/", status_code=307)


@router.get("/")
async def queue_page(
    visit: Staff,
    kind: str | None = None,
    locale: str | None = None,
    market: str | None = None,
    rule: str | None = None,
) -> Response:
    chosen = {
        "kind": _optional(kind),
        "locale": _optional(locale),
        "market": _optional(market),
        "rule": _optional(rule),
    }
    states = await visit.vetting.queue(**chosen)
    return visit.render(
        "queue.html",
        {
            "section": "queue",
            "states": states,
            "chosen": chosen,
            "kinds": [kind.value for kind in EntryKind],
            "rules": sorted(rule.id for rule in load_rules().rules),
        },
    )


@router.get("/due")
async def due_page(visit: Staff, within: int = 30) -> Response:
    within = min(max(within, 0), 3650)
    states = await visit.vetting.due(within=timedelta(days=within))
    return visit.render("due.html", {"section": "due", "states": states, "within": within})


@router.get("/entries")
async def find_entry(visit: Staff, key: str = "", locale: str | None = None) -> Response:
    if not key.strip():
        return visit.redirect(f"{PREFIX}/", "Enter an entry's key to see its history.")
    return visit.redirect(_entry_url(key.strip(), _optional(locale)))


# --- one revision ---------------------------------------------------------------------------


async def _revision_page(
    visit: Visit,
    key: str,
    locale: str,
    number: int,
    *,
    refusal: ContentError | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    vetting = visit.vetting
    state = await vetting.state(RevisionRef(key, locale, number))
    history = await vetting.history(key, locale)
    live = live_number(history, locale)
    diff = await vetting.diff(key, locale, live, number) if live not in (None, number) else None
    findings = numbered(state.findings)
    fields = source_view(texts_of(state), findings)
    return visit.render(
        "revision.html",
        {
            "state": state,
            "details": await vetting.details(state),
            "history": history,
            "live": live,
            "diff": diff,
            "findings": findings,
            "fields": fields,
            "entry_findings": entry_findings(findings, fields),
            "submittable": state.status == Status.DRAFT,
            "reviewable": state.status in REVIEWABLE,
            "waivable": state.status in WAIVABLE,
            "error": refusal.message if refusal else None,
            "values": values or {},
        },
        http_status(refusal) if refusal else 200,
    )


async def _refused(visit: Visit, error: ContentError, page: Awaitable[Response]) -> Response:
    """The page the refused form was on, with the refusal; or the refusal alone when that page
    cannot be shown (the form named an entry that does not exist, say)."""
    try:
        return await page
    except ContentError:
        return visit.render("error.html", {"error": error.message}, http_status(error))


async def _or_refusal(visit: Visit, page: Awaitable[Response]) -> Response:
    """A page, or the domain's reason there is none (an unknown entry, say), on a page."""
    try:
        return await page
    except ContentError as exc:
        return visit.render("error.html", {"error": exc.message}, http_status(exc))


@router.get("/entries/{key}/{locale}/{number:int}")
async def revision_page(visit: Staff, key: str, locale: str, number: int) -> Response:
    return await _or_refusal(visit, _revision_page(visit, key, locale, number))


async def _revision_action(
    visit: Visit,
    key: str,
    locale: str,
    number: int,
    work: Work,
) -> Response:
    values = await visit.form()
    try:
        done = await visit.act(lambda service, by: work(service, by, values))
    except ContentError as exc:
        refused = _revision_page(visit, key, locale, number, refusal=exc, values=values)
        return await _refused(visit, exc, refused)
    return visit.redirect(_revision_url(key, locale, number), done)


@router.post("/entries/{key}/{locale}/{number:int}/submit")
async def submit(visit: Staff, key: str, locale: str, number: int) -> Response:
    async def work(service: VettingService, by: Principal, form: dict[str, str]) -> str:
        state = await service.submit(RevisionRef(key, locale, number), by=by)
        return f"Submitted {state.name}: now {status_label(state.status)}."

    return await _revision_action(visit, key, locale, number, work)


@router.post("/entries/{key}/{locale}/{number:int}/approve")
async def approve(visit: Staff, key: str, locale: str, number: int) -> Response:
    async def work(service: VettingService, by: Principal, form: dict[str, str]) -> str:
        note = _text("note", form.get("note", "")).strip()
        state = await service.approve(RevisionRef(key, locale, number), note=note, by=by)
        return f"Approved {state.name}: now {status_label(state.status)}."

    return await _revision_action(visit, key, locale, number, work)


@router.post("/entries/{key}/{locale}/{number:int}/reject")
async def reject(visit: Staff, key: str, locale: str, number: int) -> Response:
    async def work(service: VettingService, by: Principal, form: dict[str, str]) -> str:
        reason = _text("reason", form.get("reason", ""))
        state = await service.reject(RevisionRef(key, locale, number), reason=reason, by=by)
        return f"Rejected {state.name}: now {status_label(state.status)}."

    return await _revision_action(visit, key, locale, number, work)


@router.post("/entries/{key}/{locale}/{number:int}/waive")
async def waive(visit: Staff, key: str, locale: str, number: int) -> Response:
    async def work(service: VettingService, by: Principal, form: dict[str, str]) -> str:
        reason = _text("reason", form.get("reason", ""))
        waiver = await service.waive(
            RevisionRef(key, locale, number), form.get("finding", ""), reason=reason, by=by
        )
        return f"Waived the {waiver.rule} finding {waiver.fingerprint}."

    return await _revision_action(visit, key, locale, number, work)


# --- an entry's history, withdrawal and rollback ----------------------------------------------


async def _history_page(
    visit: Visit,
    key: str,
    locale: str | None,
    *,
    refusal: ContentError | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    history = await visit.vetting.history(key, locale)
    locales = sorted({state.revision.locale for state in history})
    return visit.render(
        "history.html",
        {
            "key": key,
            "kind": history[0].entry.kind,
            "locale": locale,
            "locales": locales,
            "by_locale": {
                code: [s for s in history if s.revision.locale == code] for code in locales
            },
            "live": {code: live_number(history, code) for code in locales},
            "error": refusal.message if refusal else None,
            "values": values or {},
        },
        http_status(refusal) if refusal else 200,
    )


@router.get("/entries/{key}")
async def history_page(visit: Staff, key: str, locale: str | None = None) -> Response:
    return await _or_refusal(visit, _history_page(visit, key, _optional(locale)))


async def _entry_action(visit: Visit, key: str, work: Work) -> Response:
    values = await visit.form()
    try:
        done = await visit.act(lambda service, by: work(service, by, values))
    except ContentError as exc:
        refused = _history_page(visit, key, None, refusal=exc, values=values)
        return await _refused(visit, exc, refused)
    return visit.redirect(_entry_url(key), done)


@router.post("/entries/{key}/withdraw")
async def withdraw(visit: Staff, key: str) -> Response:
    async def work(service: VettingService, by: Principal, form: dict[str, str]) -> str:
        locale = _optional(form.get("locale"))
        reason = _text("reason", form.get("reason", ""), NOTE_LENGTH)
        release = await service.withdraw(key, locale=locale, reason=reason, by=by)
        where = f" ({locale})" if locale else ""
        return f"Published release {release.id}: withdrew {key}{where}."

    return await _entry_action(visit, key, work)


@router.post("/entries/{key}/rollback")
async def rollback(visit: Staff, key: str) -> Response:
    async def work(service: VettingService, by: Principal, form: dict[str, str]) -> str:
        locale = form.get("locale", "")
        try:
            number = int(form.get("to_revision", ""))
        except ValueError:
            raise BadInput("choose the earlier published revision to show again") from None
        reason = _text("reason", form.get("reason", ""), NOTE_LENGTH)
        release = await service.rollback(key, locale=locale, to_number=number, reason=reason, by=by)
        return f"Published release {release.id}: {key} ({locale}) shows revision {number} again."

    return await _entry_action(visit, key, work)


# --- the next release -----------------------------------------------------------------------


@dataclass(frozen=True)
class PendingChange:
    state: RevisionState
    live: int | None
    diff: RevisionDiff | None


async def _release_page(
    visit: Visit,
    *,
    refusal: ContentError | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    vetting = visit.vetting
    changes = []
    for state in await vetting.pending():
        key, locale, number = state.entry.key, state.revision.locale, state.revision.number
        live = live_number(await vetting.history(key, locale), locale)
        diff = await vetting.diff(key, locale, live, number) if live is not None else None
        changes.append(PendingChange(state, live, diff))
    return visit.render(
        "release.html",
        {
            "section": "release",
            "changes": changes,
            "note_length": NOTE_LENGTH,
            "error": refusal.message if refusal else None,
            "values": values or {},
        },
        http_status(refusal) if refusal else 200,
    )


@router.get("/release")
async def release_page(visit: Staff) -> Response:
    return await _release_page(visit)


@router.post("/release")
async def publish(visit: Staff) -> Response:
    values = await visit.form()

    async def work(service: VettingService, by: Principal) -> str:
        note = _text("note", values.get("note", ""), NOTE_LENGTH)
        release = await service.publish(note=note, by=by)
        return f"Published release {release.id}: {release.note}"

    try:
        done = await visit.act(work)
    except ContentError as exc:
        return await _refused(visit, exc, _release_page(visit, refusal=exc, values=values))
    return visit.redirect(f"{PREFIX}/release", done)


# --- the audit log --------------------------------------------------------------------------


@router.get("/audit")
async def audit_page(
    visit: Staff, since: str | None = None, actor: str | None = None, key: str | None = None
) -> Response:
    chosen = {"since": _optional(since), "actor": _optional(actor), "key": _optional(key)}
    try:
        moment = None
        if chosen["since"]:
            try:
                moment = datetime.fromisoformat(chosen["since"])
            except ValueError:
                raise BadInput(f"since: {chosen['since']!r} is not a date (2026-11-01)") from None
            moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        events = await visit.vetting.audit_log(
            by=visit.staff, since=moment, actor=chosen["actor"], key=chosen["key"]
        )
    except ContentError as exc:
        return visit.render("error.html", {"error": exc.message}, http_status(exc))
    return visit.render("audit.html", {"section": "audit", "events": events, "chosen": chosen})


# --- wiring ---------------------------------------------------------------------------------


def _sign_in_redirect(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)  # noqa: S101 (registered for this type only)
    config = _config(request)
    url = f"{PREFIX}/sign-in"
    if exc.back_to:
        url += "?" + urlencode({"next": exc.back_to})
    response = RedirectResponse(url, status_code=303)
    # whatever the old cookie held (a revoked key, say) is dropped
    config.codec.store(response, ConsoleSession.fresh(flash=exc.message))
    return response


def _form_refused(request: Request, exc: Exception) -> Response:
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "staff": None,
            "error": "This form did not come from a console page of your session (its security "
            "token is missing or out of date). Go back, reload the page and try again.",
        },
        status_code=403,
    )


def mount_console(app: FastAPI, settings: Settings) -> None:
    """Serve the console at /console when it is enabled (in production only when asked)."""
    if not settings.console_on:
        return
    secret = (
        settings.console_secret.get_secret_value().encode()
        if settings.console_secret is not None
        # development only (production refuses to start without one): sessions end with the
        # process, which is what a developer expects
        else secrets.token_bytes(32)
    )
    app.state.console = ConsoleConfig(
        codec=SessionCodec(secret, secure=settings.is_production),
        review_interval=timedelta(days=settings.review_interval_days),
    )
    app.add_middleware(SecurityHeaders)
    app.add_exception_handler(SignInRequired, _sign_in_redirect)
    app.add_exception_handler(FormRefused, _form_refused)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    app.include_router(router, prefix=PREFIX)
