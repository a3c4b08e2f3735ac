"""The `contentapi documents` commands: the GraphQL documents partners may run in trusted mode,
and those clients registered by hash. Registered on the app of `service.cli`, whose error
mapping they use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

# the module, not its names: `python -m service.cli` imports this one while cli_vetting is
# still being imported
from service import cli_vetting
from service.cli import app, err, fail, out, plural
from service.content.models import utcnow
from service.delivery.document_repository import (
    DocumentRepository,
    NewDocument,
    RegisteredDocument,
)
from service.delivery.documents import (
    OPERATIONS_DIR,
    DocumentFilesInvalid,
    RemovedDocument,
    operations_in,
    prune_registered,
    read_document_files,
    remove_documents,
    trust_documents,
)
from service.delivery.models import DocumentSource, PersistedDocument

documents_app = typer.Typer(
    help="GraphQL documents by hash: the trusted ones partners may run, those clients registered.",
    no_args_is_help=True,
)
app.add_typer(documents_app, name="documents")

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--key", "--api-key", envvar="CONTENT_API_KEY", show_envvar=True, help="Your staff API key"
    ),
]
PREFIX = 12  # hex digits of a hash shown: plenty to tell documents apart, short enough to read


def _when(moment: datetime) -> str:
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; they were written in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _names(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(names) or "(anonymous)"


@documents_app.command("add")
def documents_add(
    files: Annotated[
        list[Path],
        typer.Argument(
            metavar="FILE",
            help=".graphql files (one document each) or Apollo persisted query manifests (.json)",
        ),
    ],
    key: ApiKey = None,
) -> None:
    """Trust documents, which partners may then run in trusted mode (admins).

    Each file is checked against the schema first; a single problem adds nothing."""
    from service.graphql.schema import schema

    try:
        documents = read_document_files(files, schema._schema)
    except DocumentFilesInvalid as exc:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        fail(escape(exc.message))
    report = cli_vetting.as_actor(
        key, lambda service, by: trust_documents(service.session, documents, by=by)
    )

    def show(found: list[NewDocument], state: str) -> None:
        for document in found:
            out.print(
                f"{document.sha256[:PREFIX]}  {_names(document.names)}  {state}", markup=False
            )

    show(report.new, "new")
    show(report.from_clients, "registered by a client before, trusted now")
    show(report.already, "trusted already")
    out.print(
        f"Trusted {plural(len(documents), 'document')}: {len(report.new)} new, "
        f"{len(report.from_clients)} registered by a client before, "
        f"{len(report.already)} trusted already."
    )


@documents_app.command("list")
def documents_list() -> None:
    """Documents by hash: prefix, names, source (trusted or apq), when added."""
    stored: list[PersistedDocument] = cli_vetting.reading(
        lambda service: DocumentRepository(service.session).listing()
    )
    held = {document.sha256 for document in stored}
    for operation in operations_in(OPERATIONS_DIR):
        if operation.sha256 not in held:
            out.print(
                f"{operation.sha256[:PREFIX]}  {_names(operation.names)}  "
                f"{DocumentSource.TRUSTED.value}  with the service (schema/operations/)",
                markup=False,
            )
    for document in stored:
        by = f" by {document.added_by}" if document.added_by else ""
        out.print(
            f"{document.sha256[:PREFIX]}  {_names(document.names)}  {document.source}  "
            f"added {_when(document.added_at)}{by}",
            markup=False,
        )
    if not stored:
        out.print(
            "No other document yet: staff trust more with `contentapi documents add FILE`; "
            "clients register theirs by hash (automatic persisted queries)."
        )


@documents_app.command("remove")
def documents_remove(
    hashes: Annotated[
        list[str],
        typer.Argument(
            metavar="HASH",
            help="A document's SHA-256, or its first 8 or more hex digits (`documents list`)",
        ),
    ],
    key: ApiKey = None,
) -> None:
    """Stop trusting documents, or forget ones clients registered (admins).

    In trusted mode partners are refused a removed document from then on: every instance sees
    the removal within CONTENT_API_FRESHNESS_INTERVAL seconds. Answers already in a CDN's or a
    partner's cache stay there until they expire. A name that finds no document, or more than
    one, removes nothing."""
    shipped = operations_in(OPERATIONS_DIR)
    removed: list[RemovedDocument] = cli_vetting.as_actor(
        key,
        lambda service, by: remove_documents(service.session, hashes, by=by, shipped=shipped),
    )
    for document in removed:
        out.print(
            f"{document.sha256[:PREFIX]}  {_names(document.names)}  {document.source}  removed",
            markup=False,
        )
    out.print(
        f"Removed {plural(len(removed), 'document')}. In trusted mode partners are refused "
        "them from now on, on every instance within CONTENT_API_FRESHNESS_INTERVAL seconds."
    )


@documents_app.command("prune")
def documents_prune(
    older_than: Annotated[
        int,
        typer.Option(
            "--older-than",
            metavar="DAYS",
            min=1,
            help="Remove what clients registered more than DAYS days ago",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be removed; remove nothing")
    ] = False,
    key: ApiKey = None,
) -> None:
    """Remove documents clients registered by hash long ago (admins); trusted ones stay.

    A client that sends a removed document's hash is answered PersistedQueryNotFound and sends
    the document again (Apollo's persisted-queries link does so itself): one round trip."""
    before = utcnow() - timedelta(days=older_than)
    found: list[RegisteredDocument] = cli_vetting.as_actor(
        key,
        lambda service, by: prune_registered(
            service.session, before=before, by=by, dry_run=dry_run
        ),
    )
    for document in found:
        by = f" by {document.added_by}" if document.added_by else ""
        out.print(
            f"{document.sha256[:PREFIX]}  {_names(document.names)}  "
            f"{DocumentSource.APQ.value}  added {_when(document.added_at)}{by}",
            markup=False,
        )
    counted = plural(len(found), "document")
    since = f"registered by clients before {_when(before)} UTC"
    if dry_run:
        out.print(f"Would remove {counted} {since}; nothing was removed (--dry-run).")
    else:
        out.print(f"Removed {counted} {since}. Trusted documents are kept.")
