"""The `contentapi` command: serve, migrate, seed, lint, publish. Errors become exit codes here."""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from service.config import Settings
from service.content.errors import ContentError, Problem, SeedValidationError
from service.content.models import ACTOR_LENGTH, NOTE_LENGTH, EntryKind, Release
from service.content.operations import (
    bootstrap_development,
    in_transaction,
    publish_release,
    seed_from_files,
)
from service.content.repository import ContentRepository
from service.content.seedfiles import discover
from service.content.service import NothingToPublish, SeedReport
from service.content.text import character_name, find_forbidden
from service.db import schema_status, upgrade_database
from service.vetting.compliance import Severity
from service.vetting.lint import lint_seed

EXIT_CONTENT_ERROR = 1
EXIT_CONFIG_ERROR = 2
PROGRESS_THRESHOLD = 500  # files; below this a run is quick enough to need no bar
MESSAGE_LENGTH = 300  # an error's own text, cut so that it stays one line


class _Commands(TyperGroup):
    """Every command runs inside the one error mapping, whichever step of it fails."""

    def invoke(self, ctx: Any) -> Any:
        with mapped_errors(debug=bool(ctx.params.get("debug"))):
            return super().invoke(ctx)


app = typer.Typer(
    name="contentapi",
    help="The gut–skin content API: seed, review, publish and serve vetted content.",
    cls=_Commands,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
T = TypeVar("T")


# The options every command takes, before its name; `_Commands.invoke` reads --debug.
@app.callback()
def options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="CONTENT_API_DEBUG",
            help="On an error, print the full traceback as well (for developers)",
        ),
    ] = False,
) -> None:
    pass


def fail(message: str, code: int = EXIT_CONTENT_ERROR) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field, *within = error["loc"]
            name = f"CONTENT_API_{str(field).upper()}"
            # a list's item by its position, counted as a person counts
            items = [f"item {part + 1}" for part in within if isinstance(part, int)]
            where = f" ({', '.join(items)})" if items else ""
            message = str(error["msg"]).removeprefix("Value error, ")
            err.print(f"[bold red]error:[/] {name}{where}: {escape(message)}")
        raise typer.Exit(EXIT_CONFIG_ERROR) from exc


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one operation; whatever it raises is mapped by `mapped_errors`, around every command."""
    return asyncio.run(coroutine)


@contextmanager
def mapped_errors(*, debug: bool) -> Iterator[None]:
    """The one place an error becomes a message and an exit code: a domain error as its own
    message, anything else as one line, never as a traceback, SQL or file contents (those
    only with --debug, for a developer)."""
    try:
        yield
    except (typer.Exit, typer.Abort, TyperException):
        raise  # the command line's own: usage errors, exit codes already chosen
    except Exception as exc:
        if debug:
            err.print("".join(traceback.format_exception(exc)), markup=False, end="")
        if isinstance(exc, SeedValidationError):
            print_skipped(exc.skipped)
            for problem in exc.problems:
                err.print(str(problem), markup=False)
            print_rejections(exc.rejected)
            err.print(f"[bold red]error:[/] {exc.message}; nothing was written")
            raise typer.Exit(EXIT_CONTENT_ERROR) from exc
        if isinstance(exc, ContentError):
            fail(exc.message)
        code, message = describe_failure(exc)
        if not debug and code == EXIT_CONTENT_ERROR:
            message += "; run `contentapi --debug ...` for the traceback"
        fail(message, code)


def _one_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    line = lines[0].strip() if lines else type(value).__name__
    return line if len(line) <= MESSAGE_LENGTH else line[: MESSAGE_LENGTH - 1] + "…"


def describe_failure(exc: Exception) -> tuple[int, str]:
    """The exit code and one line for an error that no domain rule foresaw.

    SQLAlchemy's own text carries the statement and its parameters (whole seed files), so only
    the driver's first line is shown."""
    if isinstance(exc, DBAPIError):
        reason = _one_line(exc.orig)
        if exc.statement is None:
            # raised while connecting, before any statement ran
            return (
                EXIT_CONFIG_ERROR,
                f"cannot reach the database: {reason} (check CONTENT_API_DATABASE_URL)",
            )
        return EXIT_CONTENT_ERROR, f"the database refused the operation: {reason}"
    if isinstance(exc, ArgumentError | NoSuchModuleError):
        return EXIT_CONFIG_ERROR, f"CONTENT_API_DATABASE_URL: {_one_line(exc)}"
    if isinstance(exc, CommandError):  # Alembic: a schema revision this code does not know
        return EXIT_CONFIG_ERROR, f"database schema: {_one_line(exc)}"
    if isinstance(exc, OSError):  # the machine's part: a folder, a port, a file's permissions
        return EXIT_CONFIG_ERROR, _one_line(exc)
    return EXIT_CONTENT_ERROR, f"unexpected error ({type(exc).__name__}): {_one_line(exc)}"


def checked_text(option: str, value: str, limit: int) -> str:
    """A free-text option, stored as given: refused here when any database would refuse it
    or it holds characters that are not text, so that both databases answer alike."""
    found = find_forbidden(value)
    if found is not None:
        fail(f"{option}: {character_name(found.char)} is not allowed", EXIT_CONFIG_ERROR)
    if len(value) > limit:
        fail(f"{option} has {len(value)} characters; at most {limit}", EXIT_CONFIG_ERROR)
    return value


@contextmanager
def reading_problems() -> Iterator[None]:
    """For a command that only reads seed files: their problems, without a write's summary."""
    try:
        yield
    except SeedValidationError as exc:
        print_skipped(exc.skipped)
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        err.print(f"[bold red]error:[/] {exc.message}")
        raise typer.Exit(EXIT_CONTENT_ERROR) from exc


def require_current_schema(settings: Settings) -> None:
    current, head = schema_status(settings.database_url)
    if current != head:
        fail(
            f"the database schema is at {current or 'nothing'}, the code needs {head}: "
            "run `contentapi migrate` first"
        )


def optional_name(explicit: str | None, option: str) -> str | None:
    """A development-only name option (--author, --by), checked like every stored text."""
    return checked_text(option, explicit, ACTOR_LENGTH) if explicit is not None else None


@contextmanager
def file_progress(total: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on long runs in a terminal; nothing at all otherwise."""
    if total < PROGRESS_THRESHOLD or not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total * 2)
        yield lambda step: progress.advance(task, step)


@app.command()
def migrate() -> None:
    """Bring the database to the newest schema."""
    settings = load_settings()
    upgrade_database(settings.database_url)
    current, _ = schema_status(settings.database_url)
    out.print(f"Database schema is at revision {current}.")


def summary_table(title: str) -> Table:
    table = Table(title=title)
    table.add_column("kind")
    for column in ("created", "unchanged", "rejected"):
        table.add_column(column, justify="right")
    return table


def print_skipped(skipped: list[Problem]) -> None:
    for problem in skipped:
        err.print(f"[yellow]warning:[/] {problem.path}: {problem.message}", highlight=False)


def print_rejections(rejected: dict[str, int]) -> None:
    """The summary of a refused run: nothing created, the files rejected per kind."""
    table = summary_table("Seed summary: refused, nothing written")
    for kind in [*(k.value for k in EntryKind), "catalog"]:
        table.add_row(kind, "0", "-", str(rejected.get(kind, 0)))
    err.print(table)


def print_seed_report(report: SeedReport) -> None:
    print_skipped(report.skipped)
    table = summary_table("Dry run: nothing written" if report.dry_run else "Seed summary")
    for kind, count in report.kinds.items():
        table.add_row(kind, str(count.created), str(count.unchanged), str(count.rejected))
    out.print(table)
    catalog = ", ".join(
        f"{name} +{count.created} ~{count.updated}"
        for name, count in report.catalogs.items()
        if count.created or count.updated
    )
    if catalog:
        out.print(f"Catalog changes: {catalog}")
    if report.dry_run:
        for plan in report.planned:
            draft = plan.draft
            what = "new entry" if plan.new_entry else f"revision {plan.number}"
            out.print(f"  would write {draft.kind.value} {draft.key} ({draft.locale}): {what}")
    if not report.changed:
        out.print("Nothing to write: the database already matches the seed files.")
    elif not report.dry_run:
        out.print(f"Wrote {report.revisions_created} new revisions.")
    if report.approved:
        out.print(f"Approved {report.approved} revisions as the development reviewer.")


@app.command()
def seed(
    path: Annotated[Path | None, typer.Argument(help="The seed folder (default: seed/)")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan, write nothing")
    ] = False,
    approve: Annotated[
        bool,
        typer.Option(
            "--approve", help="Development only: approve every revision awaiting a decision"
        ),
    ] = False,
    author: Annotated[
        str | None, typer.Option(help="Development only: the author's name (default: you)")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", "--api-key", envvar="CONTENT_API_KEY", help="Your staff API key"),
    ] = None,
) -> None:
    """Validate the seed files and write a new revision for each changed entry."""
    settings = load_settings()
    require_current_schema(settings)
    root = path or settings.seed_path
    entry_files = discover(root).entries if root.is_dir() else []
    with file_progress(len(entry_files), "Seeding") as progress:
        report = run(
            seed_from_files(
                settings, root, key=key, author=optional_name(author, "--author"),
                approve=approve, dry_run=dry_run,
                progress=progress,
            )
        )  # fmt: skip
    print_seed_report(report)


class OutputFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
def lint(
    path: Annotated[
        Path | None,
        typer.Argument(help="The seed folder, or one entry file in it (default: seed/)"),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="text: one finding a line; json: a list")
    ] = OutputFormat.TEXT,
) -> None:
    """Check the seed files against the compliance rules; no database needed. Exit 1 on errors."""
    settings = load_settings()
    with reading_problems():
        report = lint_seed(path or settings.seed_path)
    if output is OutputFormat.JSON:
        rows = [
            {
                "path": item.path,
                "line": item.finding.line,
                "column": item.finding.column,
                "end_column": item.finding.end_column,
                "severity": item.finding.severity.value,
                "rule": item.finding.rule,
                "message": item.finding.message,
                "excerpt": item.finding.excerpt,
            }
            for item in report.findings
        ]
        # plain echo: a console would read "[...]" and ":name:" in the text as markup
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        for item in report.findings:
            finding = item.finding
            found = f' Found: "{finding.excerpt}".' if finding.excerpt else ""
            typer.echo(
                f"{item.path}:{finding.line}:{finding.column}: "
                f"{finding.severity.value} {finding.rule} {finding.message}{found}"
            )
        errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
        entries = f"{report.entries} {'entry' if report.entries == 1 else 'entries'}"
        if errors or warnings:
            out.print(f"{plural(errors, 'error')}, {plural(warnings, 'warning')} in {entries}.")
        else:
            out.print(f"No findings in {entries}.")
    if report.count(Severity.ERROR):
        raise typer.Exit(EXIT_CONTENT_ERROR)


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


@app.command()
def publish(
    note: Annotated[str, typer.Option(help="Why this release exists, for the release log")],
    by: Annotated[
        str | None, typer.Option(help="Development only: the publisher's name (default: you)")
    ] = None,
    key: Annotated[
        str | None,
        typer.Option("--key", "--api-key", envvar="CONTENT_API_KEY", help="Your staff API key"),
    ] = None,
) -> None:
    """Publish every newly approved revision as one new release."""
    settings = load_settings()
    if not note.strip():
        fail("--note must say why this release exists", EXIT_CONFIG_ERROR)
    note = checked_text("--note", note.strip(), NOTE_LENGTH)
    publisher = optional_name(by, "--by")
    require_current_schema(settings)
    outcome = run(_publish_unless_nothing_new(settings, note, key, publisher))
    if isinstance(outcome, str):
        out.print(outcome.capitalize() + ".")
    else:
        out.print(f"Published release {outcome.id}: {outcome.note}")


async def _publish_unless_nothing_new(
    settings: Settings, note: str, key: str | None, by: str | None
) -> Release | str:
    """The new release, or why there is none: nothing new is an answer, not a failure."""
    try:
        return await publish_release(settings, note=note, key=key, by=by)
    except NothingToPublish as exc:
        return exc.message


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Server processes (default: CONTENT_API_WORKERS, else 1)", min=1),
    ] = None,
) -> None:
    """Serve the API. In development, an empty database is migrated, seeded and published first.

    SIGTERM stops it gracefully: no new connections, requests in flight answered (for up to
    CONTENT_API_SHUTDOWN_TIMEOUT seconds), the webhook batch in hand finished, then exit 0."""
    import uvicorn

    from service.observability import configure_logging
    from service.server import ContentHttpProtocol

    settings = load_settings()
    if settings.is_production:
        require_current_schema(settings)
        if not run(_latest_release(settings)):
            fail(
                "no release is published, and production does not publish the seed content "
                "on start: seed, have the revisions reviewed, then run `contentapi publish`"
            )
    else:
        upgrade_database(settings.database_url)
        release = run(bootstrap_development(settings))
        if release is not None:
            out.print(
                f"Empty database: seeded {settings.seed_path} and published release {release.id} "
                "(approved automatically, development only)."
            )
    listen_host, listen_port = host or settings.host, port or settings.port
    processes = workers or settings.workers
    configure_logging(settings)
    metrics_folder = None
    if processes > 1:
        # each process keeps its metrics in files here, so /metrics of any one adds up all
        metrics_folder = tempfile.mkdtemp(prefix="contentapi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_folder
    # uvicorn drains on SIGTERM, then raises it again: by then stopping is a success
    signal.signal(signal.SIGTERM, _stopped)
    workers_note = f" ({processes} worker processes)" if processes > 1 else ""
    out.print(f"Serving on http://{listen_host}:{listen_port}/graphql{workers_note}")
    try:
        # an import string and a factory: each worker process builds its own application
        uvicorn.run(
            "service.app:app_from_environment",
            factory=True,
            http=ContentHttpProtocol,
            host=listen_host,
            port=listen_port,
            workers=processes,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            timeout_graceful_shutdown=max(1, math.ceil(settings.shutdown_timeout)),
        )
    finally:
        if metrics_folder is not None:
            shutil.rmtree(metrics_folder, ignore_errors=True)


def _stopped(signum: int, frame: FrameType | None) -> NoReturn:
    raise SystemExit(0)


@app.command()
def healthcheck(
    url: Annotated[
        str | None, typer.Option(help="Default: http://127.0.0.1:CONTENT_API_PORT/healthz")
    ] = None,
) -> None:
    """Exit 0 when the server answers its health check (a container's HEALTHCHECK)."""
    import httpx2 as httpx

    settings = load_settings()
    target = url or f"http://127.0.0.1:{settings.port}/healthz"
    try:
        response = httpx.get(target, timeout=5)
    except httpx.HTTPError as exc:
        fail(f"{target}: {_one_line(exc) or type(exc).__name__}", EXIT_CONFIG_ERROR)
    if response.status_code != 200:
        fail(f"{target} answered {response.status_code}")
    out.print(f"{target}: ok", markup=False)


@app.command("schema")
def export_schema(
    write: Annotated[
        bool, typer.Option("--write", help="Write schema/schema.graphql instead of printing")
    ] = False,
) -> None:
    """Print the GraphQL schema (SDL) generated from the code."""
    from service.graphql.schema import SCHEMA_FILE, schema_sdl

    if write:
        SCHEMA_FILE.write_text(schema_sdl(), encoding="utf-8")
        out.print(f"Wrote {SCHEMA_FILE}")
    else:
        out.print(schema_sdl(), end="", markup=False)


@app.command()
def export(
    folder: Annotated[Path, typer.Option("--out", help="The folder to write into")],
    locale: Annotated[str, typer.Option(help="A BCP 47 tag, e.g. fr-FR")],
    release: Annotated[
        int | None, typer.Option(help="The release number (default: the latest)", min=1)
    ] = None,
    market: Annotated[
        str | None, typer.Option(help="Only content cleared for this market, e.g. US")
    ] = None,
    entries: Annotated[
        bool,
        typer.Option("--entries", help="Also one file per entry: OUT/LOCALE/snippets/KEY.json"),
    ] = False,
) -> None:
    """Write a release bundle: byte for byte what GET /bundles/RELEASE/LOCALE.json serves."""
    from service.content.reading import parse_locale
    from service.delivery.export import read_bundle, write_export

    settings = load_settings()
    try:
        parse_locale(locale, settings.default_locale)
    except ContentError as exc:
        fail(f"--locale: {exc.message}", EXIT_CONFIG_ERROR)
    require_current_schema(settings)
    bundle = run(read_bundle(settings, release, locale, market))
    written = write_export(bundle, folder, entries=entries)
    out.print(
        f"Exported release {bundle.key.release} ({bundle.key.name}) to {written[0]}: "
        f"{len(written) - 1 if entries else 0} entry files, sha256 {bundle.content_hash}",
        markup=False,
    )


async def _latest_release(settings: Settings) -> int:
    return await in_transaction(settings, lambda s: ContentRepository(s).latest_release_id())


# the workflow's, the webhooks' and the documents' commands register themselves on `app`
from service import cli_documents, cli_vetting, cli_webhooks  # noqa: E402, F401


def main() -> None:
    app(prog_name="contentapi")


if __name__ == "__main__":
    # `python -m service.cli`: this module runs as __main__, while the other command modules
    # registered themselves on the app of `service.cli`, imported under its own name
    from service.cli import main as main_with_every_command

    main_with_every_command()
