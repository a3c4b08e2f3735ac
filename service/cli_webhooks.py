"""The `contentapi webhooks` commands: partners' endpoints, the delivery log and the worker.
Registered on the app of `service.cli`, whose error mapping they use."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

# the module, not its names: `python -m service.cli` imports this one while cli_vetting is
# still being imported
from service import cli_vetting
from service.cli import app, err, load_settings, out, require_current_schema, run
from service.config import Settings
from service.db import create_engine_for, create_sessionmaker
from service.delivery.models import DeliveryStatus, WebhookEvent
from service.delivery.webhook_worker import PassReport, deliver_once, run_worker
from service.delivery.webhooks import WebhookService

webhooks_app = typer.Typer(
    help="Signed webhooks that tell partners about new releases.", no_args_is_help=True
)
app.add_typer(webhooks_app, name="webhooks")

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--key", "--api-key", envvar="CONTENT_API_KEY", show_envvar=True, help="Your staff API key"
    ),
]
EVENTS = ", ".join(event.value for event in WebhookEvent)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _list(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where to POST, e.g. https://partner.example/hooks")],
    events: Annotated[
        str, typer.Option(help=f"Comma-separated events to send: {EVENTS}")
    ] = WebhookEvent.RELEASE_PUBLISHED.value,
    markets: Annotated[
        str | None,
        typer.Option(help="Only releases changing content for these markets, e.g. US,UK"),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(help="A whsec_<base64> signing secret (default: a new one, printed once)"),
    ] = None,
    key: ApiKey = None,
) -> None:
    """Add a webhook and print its signing secret, once (admins)."""
    settings = load_settings()
    webhook, signing = cli_vetting.as_actor(
        key,
        lambda service, by: WebhookService(service.session, settings).add(
            url,
            events=_list(events),
            markets=_list(markets) if markets is not None else None,
            secret=secret,
            by=by,
        ),
    )
    scope = f"markets {', '.join(webhook.markets)}" if webhook.markets else "all markets"
    out.print(
        f"Added webhook {webhook.id}: {webhook.url} ({', '.join(webhook.events)}; {scope}).",
        markup=False,
    )
    if secret is None:
        out.print("Its signing secret, shown only once:")
        out.print(signing, markup=False)
        err.print("Send it to the partner over a safe channel; they verify signatures with it.")


@webhooks_app.command("list")
def webhooks_list(
    include_removed: Annotated[bool, typer.Option("--all", help="Removed webhooks too")] = False,
    key: ApiKey = None,
) -> None:
    """Webhooks: URL, events, markets, who added them (never the secret) (admins)."""
    settings = load_settings()
    found = cli_vetting.as_actor(
        key,
        lambda service, by: WebhookService(service.session, settings).webhooks(
            by=by, include_removed=include_removed
        ),
    )
    if not found:
        out.print("No webhook yet: add one with `contentapi webhooks add URL`.")
    for webhook in found:
        scope = ", ".join(webhook.markets) if webhook.markets else "all"
        removed = f"  removed {_when(webhook.removed_at)}" if webhook.removed_at else ""
        out.print(
            f"{webhook.id}  {webhook.url}  events {', '.join(webhook.events)}  markets {scope}  "
            f"added {_when(webhook.created_at)} by {webhook.created_by}{removed}",
            markup=False,
        )


@webhooks_app.command("remove")
def webhooks_remove(
    webhook_id: Annotated[int, typer.Argument(metavar="ID", help="The webhook, as listed")],
    key: ApiKey = None,
) -> None:
    """Remove a webhook: nothing more is sent to it (admins)."""
    settings = load_settings()
    webhook, cancelled = cli_vetting.as_actor(
        key,
        lambda service, by: WebhookService(service.session, settings).remove(webhook_id, by=by),
    )
    waiting = f"; {cancelled} waiting deliveries will not be sent" if cancelled else ""
    out.print(f"Removed webhook {webhook.id} ({webhook.url}){waiting}.", markup=False)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    failed: Annotated[bool, typer.Option("--failed", help="Only deliveries that failed")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many")] = 100,
    key: ApiKey = None,
) -> None:
    """The delivery log, newest first: status, attempts, last answer, next attempt (admins)."""
    settings = load_settings()
    rows = cli_vetting.as_actor(
        key,
        lambda service, by: WebhookService(service.session, settings).deliveries(
            by=by, failed_only=failed, limit=limit
        ),
    )
    if not rows:
        out.print("No failed delivery." if failed else "No delivery yet.")
    for delivery, url in rows:
        last = delivery.last_error or (
            f"HTTP {delivery.last_status}" if delivery.last_status is not None else "-"
        )
        pending = delivery.status == DeliveryStatus.PENDING.value
        out.print(
            f"{delivery.id}  webhook {delivery.webhook_id} ({url})  {delivery.event}  "
            f"release {delivery.release_id}  {delivery.status}  attempts {delivery.attempts}  "
            f"last {last}  next {_when(delivery.next_attempt_at) if pending else '-'}  "
            f"id {delivery.message_id}",
            markup=False,
        )


@webhooks_app.command("redeliver")
def webhooks_redeliver(
    delivery_id: Annotated[
        int, typer.Argument(metavar="ID", help="The delivery, as `webhooks deliveries` lists it")
    ],
    key: ApiKey = None,
) -> None:
    """Send a delivery again: queued now, with the same webhook-id (admins)."""
    settings = load_settings()
    delivery = cli_vetting.as_actor(
        key,
        lambda service, by: WebhookService(service.session, settings).redeliver(delivery_id, by=by),
    )
    out.print(
        f"Queued delivery {delivery.id} ({delivery.event}, release {delivery.release_id}) "
        "again: the worker sends it next.",
        markup=False,
    )


def print_pass(report: PassReport) -> None:
    for line in report.errors:
        out.print(line, markup=False)
    out.print(
        f"Delivered {report.delivered}, retrying {report.retrying}, failed {report.failed}"
        + (f", {report.lost_claims} taken over by another worker" if report.lost_claims else "")
        + "."
    )


@webhooks_app.command("worker")
def webhooks_worker(
    once: Annotated[
        bool, typer.Option("--once", help="Deliver what is due now, then stop")
    ] = False,
) -> None:
    """Send due deliveries; safe beside other workers and the one inside `serve`."""
    settings = load_settings()
    require_current_schema(settings)
    if once:
        print_pass(run(deliver_once(settings)))
        return
    out.print("Delivering webhooks until interrupted (Ctrl-C).")
    try:
        run(_work_forever(settings))
    except KeyboardInterrupt:
        out.print("Stopped.")


async def _work_forever(settings: Settings) -> None:
    engine = create_engine_for(settings.database_url, echo=settings.log_sql)
    try:
        await run_worker(settings, create_sessionmaker(engine))
    finally:
        await engine.dispose()
