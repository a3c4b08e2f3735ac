"""GraphQL documents by the SHA-256 of their text: automatic persisted queries (APQ, as Apollo
Client's persisted-queries link speaks them) and trusted documents, shared by every instance
through the database and held in process in front of it.

A document's key is the hash of its text, so a copy held in memory can never be stale: only
whether staff trust it can change, and that is looked up in the database whenever a caller
depends on it and this process does not know it yet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    parse,
    validate,
)
from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from service import generations
from service.access.principal import Permission, Principal
from service.config import PROJECT_ROOT, Settings
from service.content.errors import BadInput, ContentError, Forbidden, Problem
from service.db import is_unavailable
from service.delivery.document_repository import (
    REMOVED,
    DocumentRepository,
    NewDocument,
    RegisteredDocument,
    StoredDocument,
)
from service.delivery.models import DocumentSource
from service.vetting import audit

logger = logging.getLogger("service.delivery.documents")

APQ_VERSION = 1
# the documents partners were given with the schema: trusted by every instance from start-up
OPERATIONS_DIR = PROJECT_ROOT / "schema" / "operations"
# what each process keeps of the documents clients registered (trusted ones are always kept):
# far more than the operations of every partner's pages, and at most a few MiB of text
MAX_CACHED_DOCUMENTS = 5_000
MAX_CACHED_BYTES = 16 * 1024 * 1024

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
BAD_REQUEST = "BAD_REQUEST"
# the exact message Apollo Client's link (and every APQ client) answers by sending the document
NOT_FOUND_MESSAGE = "PersistedQueryNotFound"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_EXAMPLE = '{"persistedQuery": {"version": 1, "sha256Hash": "<64 lower-case hex digits>"}}'


def sha256_hex(text: str) -> str:
    """The lower-case hex SHA-256 of the UTF-8 text: a document's key."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class DocumentRefused(Exception):
    """A request whose document cannot run as sent; `code` is stable, `message` for a person."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def persisted_hash(extensions: Mapping[str, Any] | None) -> str | None:
    """The hash named by `extensions.persistedQuery`, None when there is none; a malformed one
    or another protocol version is refused."""
    persisted = (extensions or {}).get("persistedQuery")
    if persisted is None:
        return None
    if not isinstance(persisted, dict):
        raise DocumentRefused(BAD_REQUEST, f"`extensions.persistedQuery` must be {_EXAMPLE}.")
    version = persisted.get("version")
    if isinstance(version, bool) or version != APQ_VERSION:
        raise DocumentRefused(
            BAD_REQUEST,
            f"Unsupported persisted query version {json.dumps(version)}: this API speaks "
            f"version {APQ_VERSION}, as Apollo Client's persisted-queries link sends it.",
        )
    sha256 = persisted.get("sha256Hash")
    if not isinstance(sha256, str) or _SHA256_HEX.fullmatch(sha256) is None:
        raise DocumentRefused(
            BAD_REQUEST,
            "`extensions.persistedQuery.sha256Hash` must be the SHA-256 of the document's "
            "UTF-8 text as 64 lower-case hexadecimal digits.",
        )
    return sha256


def operation_names(document: DocumentNode) -> tuple[str, ...]:
    return tuple(
        definition.name.value
        for definition in document.definitions
        if isinstance(definition, OperationDefinitionNode) and definition.name is not None
    )


def _names_of(text: str) -> tuple[str, ...]:
    """The operation names of a document that ran, for people reading `documents list`."""
    try:
        return operation_names(parse(text, no_location=True))
    except GraphQLError:
        return ()


@dataclass(frozen=True)
class Resolution:
    """What to run for one operation: the document's text (None: the request sent none), and
    the hash to register it under once it has parsed and validated."""

    query: str | None
    register: str | None = None


class _LeastRecentlyUsed:
    """Documents by hash, the least recently used dropped first once either bound is passed."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, tuple[str, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: str) -> str | None:
        found = self._items.get(key)
        if found is None:
            return None
        self._items.move_to_end(key)
        return found[0]

    def put(self, key: str, text: str) -> None:
        size = len(text.encode("utf-8"))
        if key in self._items or size > self.max_bytes:
            return  # the same text (the key is its hash), or too large to keep at all
        self._items[key] = (text, size)
        self.bytes += size
        while len(self._items) > self.max_items or self.bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def pop(self, key: str) -> None:
        found = self._items.pop(key, None)
        if found is not None:
            self.bytes -= found[1]


_UNSEEN = object()  # no removal mark read yet: the database did not answer at start-up


class DocumentStore:
    """The documents one process knows, in front of the database every instance shares.

    `known` and `is_trusted` answer from memory alone, for hot paths; `lookup`, `register` and
    `resolve` read or write the database when memory does not know. Used from the event loop
    only.
    """

    def __init__(
        self,
        *,
        persisted_queries: bool = True,
        trusted_documents: bool = False,
        operations_dir: Path = OPERATIONS_DIR,
        max_documents: int = MAX_CACHED_DOCUMENTS,
        max_bytes: int = MAX_CACHED_BYTES,
    ) -> None:
        self.persisted_queries = persisted_queries
        self.trusted_documents = trusted_documents
        self.operations_dir = operations_dir
        # trusted documents are few and decide what a partner may run: always kept
        self._trusted: dict[str, str] = {}
        self._shipped: frozenset[str] = frozenset()  # the hashes of schema/operations/
        # what says a trusted document was removed: this process's removals
        # (generations.DOCUMENTS), and the database's mark as the freshness check polls it
        self._generation = generations.DOCUMENTS.value
        self._removals: int | object | None = _UNSEEN
        self._epoch = 0
        self._registered = _LeastRecentlyUsed(max_documents, max_bytes)
        self._sessionmaker: async_sessionmaker[AsyncSession] | None = None

    @classmethod
    def for_settings(cls, settings: Settings) -> DocumentStore:
        return cls(
            persisted_queries=settings.persisted_queries,
            trusted_documents=settings.trusted_documents,
        )

    # --- from memory, no I/O ---------------------------------------------------------------

    def known(self, sha256_hex: str) -> str | None:
        """The document's text when this process holds it; None says nothing about the
        database."""
        self.current_epoch()
        trusted = self._trusted.get(sha256_hex)
        return trusted if trusted is not None else self._registered.get(sha256_hex)

    def is_trusted(self, sha256_hex: str) -> bool:
        """Whether this process knows the document as trusted (one trusted on another machine
        a moment ago is found by `lookup`)."""
        self.current_epoch()
        return sha256_hex in self._trusted

    # --- trust withdrawn ---------------------------------------------------------------------

    def current_epoch(self) -> int:
        """The count of times the trusted documents held were forgotten: what was planned or
        learned for a document under an earlier count may no longer be allowed."""
        if generations.DOCUMENTS.value != self._generation:
            self._generation = generations.DOCUMENTS.value
            self._forget_trusted()
        return self._epoch

    def removals_seen(self, mark: int | None) -> None:
        """The database's mark of removals (the latest one's audit event), as polled: a new
        one forgets the trusted documents held, which are read again when next asked for. So
        does the first mark when start-up could not read one: what was read since may be gone."""
        if mark != self._removals:
            self._removals = mark
            self._forget_trusted()

    def _forget_trusted(self) -> None:
        self._trusted = {sha: text for sha, text in self._trusted.items() if sha in self._shipped}
        self._epoch += 1

    # --- start-up ----------------------------------------------------------------------------

    async def load(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        """Trust schema/operations/ and the trusted documents of the database. A database that
        does not answer yet delays nothing: each document is looked up when first asked for."""
        self._sessionmaker = sessionmaker
        operations = operations_in(self.operations_dir)
        if not operations and self.trusted_documents:
            logger.warning(
                "%s holds no .graphql documents: partners may run only those staff added with "
                "`contentapi documents add`",
                self.operations_dir,
            )
        for operation in operations:
            self._trusted[operation.sha256] = operation.body
        self._shipped = frozenset(operation.sha256 for operation in operations)
        try:
            async with sessionmaker() as session:
                repository = DocumentRepository(session)
                # the mark first: a removal after it is seen by the next poll
                removals = await repository.removal_mark()
                stored = await repository.trusted()
        except (DBAPIError, PoolTimeout) as exc:
            if not is_unavailable(exc):
                raise
            logger.warning("trusted documents not loaded: the database did not answer")
            return
        for document in stored:
            self._keep(document)
        self._removals = removals

    # --- from the database when memory does not know -----------------------------------------

    def _keep(self, document: StoredDocument) -> None:
        if document.trusted:
            self._trusted[document.sha256] = document.body
            self._registered.pop(document.sha256)
        else:
            self._registered.put(document.sha256, document.body)

    @asynccontextmanager
    async def _using(self, session: AsyncSession | None) -> AsyncIterator[AsyncSession]:
        """The caller's session as it is, or one of this store's own, closed after use."""
        if session is not None:
            yield session
            return
        if self._sessionmaker is None:
            raise RuntimeError("DocumentStore.load() has not run: it has no database yet")
        async with self._sessionmaker() as own:
            yield own

    async def _from_database(self, sha256: str, session: AsyncSession | None) -> str | None:
        async with self._using(session) as using:
            stored = await DocumentRepository(using).by_sha256(sha256)
        if stored is None:
            return None
        self._keep(stored)
        return stored.body

    async def lookup(self, sha256_hex: str, session: AsyncSession | None = None) -> str | None:
        """The document's text: from memory, else from the database in one statement; None
        when no instance has it."""
        text = self.known(sha256_hex)
        return text if text is not None else await self._from_database(sha256_hex, session)

    async def trusted_text(
        self, sha256_hex: str, session: AsyncSession | None = None
    ) -> str | None:
        """The document's text when it is trusted: from memory, else from the database in one
        statement (staff may have trusted it since this process last looked)."""
        if self.is_trusted(sha256_hex):
            return self._trusted[sha256_hex]
        text = await self._from_database(sha256_hex, session)
        return text if self.is_trusted(sha256_hex) else None

    async def register(
        self,
        sha256_hex: str,
        text: str,
        *,
        added_by: str | None,
        session: AsyncSession | None = None,
    ) -> None:
        """Keep a document a client sent with its hash (which the caller checked), so that every
        instance finds it from now on: in the caller's transaction when given one (a request's,
        committed before its answer is sent), else in one of its own."""
        if self.known(sha256_hex) is not None:
            return
        document = NewDocument(sha256_hex, text, _names_of(text))
        if session is not None:
            # The request's own transaction, not a second one beside it: on SQLite a second
            # connection would wait for the write lock this request may hold (a key's
            # last-used time, a staff mutation) until the request ends, which it never would.
            await DocumentRepository(session).register(document, added_by=added_by)
        else:
            async with self._using(None) as own, own.begin():
                await DocumentRepository(own).register(document, added_by=added_by)
        self._registered.put(sha256_hex, text)

    # --- one operation of a request ----------------------------------------------------------

    async def resolve(
        self,
        query: str | None,
        extensions: Mapping[str, Any] | None,
        *,
        staff: bool,
        session: AsyncSession | None = None,
    ) -> Resolution:
        """The document to run for an operation as sent: its `query`, or the one its
        `extensions.persistedQuery` names. In trusted mode only trusted documents run for
        partners and anonymous callers; staff may send any."""
        restricted = self.trusted_documents and not staff
        sha256 = persisted_hash(extensions)
        if sha256 is None:
            if (
                restricted
                and query is not None
                and await self.trusted_text(sha256_hex(query), session) is None
            ):
                raise _not_in_list()
            return Resolution(query)
        if query is not None and sha256_hex(query) != sha256:
            raise DocumentRefused(
                PERSISTED_QUERY_HASH_MISMATCH,
                f"`extensions.persistedQuery.sha256Hash` is {sha256}, but the SHA-256 of the "
                f"`query` sent is {sha256_hex(query)}: hash the document's exact UTF-8 text, "
                "as sent, and write the digest as lower-case hex.",
            )
        if restricted or not self.persisted_queries:
            # only trusted documents run by hash: for partners in trusted mode, and for
            # everyone when clients may not register documents of their own
            text = await self.trusted_text(sha256, session) if self.trusted_documents else None
            if text is not None:
                return Resolution(text)
            if restricted:
                raise _not_in_list()
            raise DocumentRefused(
                PERSISTED_QUERY_NOT_SUPPORTED,
                "Persisted queries are off on this API (CONTENT_API_PERSISTED_QUERIES): send "
                "the document as `query`, without `extensions.persistedQuery`.",
            )
        if query is not None:
            return Resolution(query, register=sha256)
        text = await self.lookup(sha256, session)
        if text is None:
            raise DocumentRefused(PERSISTED_QUERY_NOT_FOUND, NOT_FOUND_MESSAGE)
        return Resolution(text)


def _not_in_list() -> DocumentRefused:
    return DocumentRefused(
        PERSISTED_QUERY_NOT_IN_LIST,
        "This API runs only trusted documents for partners (CONTENT_API_TRUSTED_DOCUMENTS): "
        "send one of schema/operations/ or another document staff have trusted, by its hash "
        "or as its exact text. To have a document trusted, send it (a .graphql file, or an "
        "Apollo persisted query manifest) to the API's staff, who run `contentapi documents "
        "add FILE`.",
    )


# --- document files: schema/operations/ and `contentapi documents add` ------------------------


def operations_in(folder: Path) -> list[NewDocument]:
    """The .graphql files of a folder, each trusted as the text it holds, byte for byte."""
    documents = []
    for path in sorted(folder.glob("*.graphql")):
        raw = path.read_bytes()
        documents.append(
            NewDocument(hashlib.sha256(raw).hexdigest(), raw.decode("utf-8"), (path.stem,))
        )
    return documents


class DocumentFilesInvalid(ContentError):
    """Document files that cannot be trusted as they are; nothing was added."""

    code = "DOCUMENTS_INVALID"

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems  # file by file, in the order given
        count = len(self.problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the document files; nothing was added"
        )


class _ManifestOperation(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    id: str
    name: str
    type: Literal["query", "mutation", "subscription"]
    body: str


class _Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    format: Literal["apollo-persisted-query-manifest"]
    version: Literal[1]
    operations: list[_ManifestOperation]


MANIFEST_SHAPE = (
    '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": '
    '[{"id", "name", "type", "body"}]}'
)


def _checked(body: str, schema: GraphQLSchema) -> tuple[DocumentNode | None, list[tuple[int, str]]]:
    """The parsed document, and what is wrong with it against the schema by line of `body`."""
    try:
        document = parse(body)
    except GraphQLError as exc:
        return None, [_at_line(exc)]
    problems = [_at_line(error) for error in validate(schema, document)]
    if not any(isinstance(d, OperationDefinitionNode) for d in document.definitions):
        problems.append((1, "holds no operation, only fragments"))
    return document, problems


def _at_line(error: GraphQLError) -> tuple[int, str]:
    return (error.locations[0].line if error.locations else 1), error.message


def _graphql_file(
    path: Path, text: str, schema: GraphQLSchema
) -> tuple[NewDocument | None, list[Problem]]:
    document, problems = _checked(text, schema)
    if document is None or problems:
        return None, [Problem(str(path), line, message) for line, message in problems]
    names = operation_names(document) or (path.stem,)
    return NewDocument(sha256_hex(text), text, names, str(path)), []


def _manifest_file(
    path: Path, text: str, schema: GraphQLSchema
) -> tuple[list[NewDocument], list[Problem]]:
    where = str(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [Problem(where, exc.lineno, f"not JSON: {exc.msg}")]
    if not isinstance(raw, dict):
        return [], [
            Problem(where, 1, f"expected an Apollo persisted query manifest, {MANIFEST_SHAPE}")
        ]
    try:
        manifest = _Manifest.model_validate(raw)
    except ValidationError as exc:
        return [], [
            Problem(where, 0, f"{_location(error['loc'])}: {error['msg']}")
            for error in exc.errors()
        ] + [Problem(where, 0, f"an Apollo persisted query manifest is {MANIFEST_SHAPE}")]
    if not manifest.operations:
        return [], [Problem(where, 0, "the manifest lists no operations")]
    documents, problems = [], []
    for index, operation in enumerate(manifest.operations):
        label = f"operations[{index}] ({operation.name})"
        digest = sha256_hex(operation.body)
        if operation.id != digest:
            problems.append(
                Problem(
                    where,
                    0,
                    f"{label}: `id` is {operation.id!r}, not the SHA-256 of its `body` "
                    f"({digest}); this API names a document by that hash (the manifest "
                    "generator's default)",
                )
            )
            continue
        _, found = _checked(operation.body, schema)
        if found:
            problems.extend(
                Problem(where, 0, f"{label}, line {line} of its body: {message}")
                for line, message in found
            )
            continue
        documents.append(NewDocument(digest, operation.body, (operation.name,), where))
    return documents, problems


def _location(loc: Sequence[int | str]) -> str:
    parts = [f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc]
    return "".join(parts).lstrip(".") or "the manifest"


def read_document_files(paths: Iterable[Path], schema: GraphQLSchema) -> list[NewDocument]:
    """The documents of .graphql files (one each, its hash that of the file's text) and of
    Apollo persisted query manifests (.json), each checked against the schema. Any problem in
    any file refuses them all (DocumentFilesInvalid), so nothing is half-added."""
    documents: dict[str, NewDocument] = {}
    problems: list[Problem] = []
    for path in paths:
        where = str(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            problems.append(Problem(where, 0, "no such file"))
            continue
        except IsADirectoryError:
            problems.append(Problem(where, 0, "a folder: name the files (e.g. folder/*.graphql)"))
            continue
        except OSError as exc:
            problems.append(Problem(where, 0, f"cannot be read: {exc.strerror or exc}"))
            continue
        except UnicodeDecodeError:
            problems.append(Problem(where, 0, "not UTF-8 text"))
            continue
        suffix = path.suffix.lower()
        if suffix in {".graphql", ".gql"}:
            document, found = _graphql_file(path, text, schema)
            read = [document] if document is not None else []
        elif suffix == ".json":
            read, found = _manifest_file(path, text, schema)
        else:
            read, found = (
                [],
                [
                    Problem(
                        where,
                        0,
                        "expected a .graphql file (one document) or an Apollo persisted query "
                        "manifest (.json)",
                    )
                ],
            )
        problems.extend(found)
        for document in read:
            earlier = documents.get(document.sha256)
            names = (*earlier.names, *document.names) if earlier else document.names
            documents[document.sha256] = NewDocument(
                document.sha256, document.body, tuple(dict.fromkeys(names)), document.origin
            )
    if problems:
        raise DocumentFilesInvalid(problems)
    return list(documents.values())


@dataclass(frozen=True)
class TrustReport:
    """What `contentapi documents add` did to each document: new, or trusted now after a client
    registered it, or trusted already (left as it was)."""

    new: list[NewDocument]
    from_clients: list[NewDocument]
    already: list[NewDocument]


async def trust_documents(
    session: AsyncSession, documents: Sequence[NewDocument], *, by: Principal
) -> TrustReport:
    """Trust documents, in the caller's transaction, with an audit event: admins only, since
    in trusted mode they decide what partners may run."""
    if not by.can(Permission.MANAGE_STAFF):
        raise Forbidden(
            f"{by.name} may not trust documents: in trusted mode they decide what partners may "
            "run, which is for admins, as partner keys are"
        )
    repository = DocumentRepository(session)
    before = await repository.sources_of([document.sha256 for document in documents])
    await repository.trust(documents, added_by=by.name)
    report = TrustReport(
        new=[d for d in documents if d.sha256 not in before],
        from_clients=[d for d in documents if before.get(d.sha256) == DocumentSource.APQ.value],
        already=[d for d in documents if before.get(d.sha256) == DocumentSource.TRUSTED.value],
    )
    changed = [*report.new, *report.from_clients]
    if changed:
        await audit.record(
            session,
            [
                audit.event(
                    by,
                    "documents.add",
                    after={
                        "documents": [{"sha256": d.sha256, "names": list(d.names)} for d in changed]
                    },
                )
            ],
        )
    return report


async def prune_registered(
    session: AsyncSession, *, before: datetime, by: Principal, dry_run: bool = False
) -> list[RegisteredDocument]:
    """Remove the documents clients registered before `before`, in the caller's transaction,
    with an audit event; trusted documents stay. A client that sends a removed one by its hash
    is answered PersistedQueryNotFound and sends it again with its text, as automatic
    persisted queries do: what is removed costs a partner one round trip, never an answer.
    With `dry_run`, what would be removed, and nothing is."""
    if not by.can(Permission.MANAGE_STAFF):
        raise Forbidden(
            f"{by.name} may not prune documents: what is stored for partners' clients is for "
            "admins, as trusting documents is"
        )
    repository = DocumentRepository(session)
    found = await repository.registered_before(before)
    if dry_run or not found:
        return found
    await repository.remove([document.sha256 for document in found], registered_before=before)
    await audit.record(
        session,
        [
            audit.event(
                by,
                "documents.prune",
                after={"registered_before": before.isoformat(), "removed": len(found)},
            )
        ],
    )
    return found


# hex digits of a hash that name a document for removal: `documents list` shows 12
MIN_PREFIX = 8


@dataclass(frozen=True)
class RemovedDocument:
    sha256: str
    names: tuple[str, ...]
    source: str


async def remove_documents(
    session: AsyncSession,
    prefixes: Sequence[str],
    *,
    by: Principal,
    shipped: Sequence[NewDocument],
) -> list[RemovedDocument]:
    """Remove stored documents named by their hash or a prefix of it, in the caller's
    transaction, with an audit event: a trusted one stops running for partners in trusted mode
    (on every instance within one freshness poll, this process's at once), one a client
    registered is forgotten. Each name must find one document, and none may be one of `shipped`
    (schema/operations/, trusted by the service's own files); any problem removes nothing."""
    if not by.can(Permission.MANAGE_STAFF):
        raise Forbidden(
            f"{by.name} may not remove documents: in trusted mode they decide what partners "
            "may run, which is for admins, as partner keys are"
        )
    repository = DocumentRepository(session)
    problems: list[str] = []
    found: dict[str, RemovedDocument] = {}
    for given in prefixes:
        prefix = given.strip().lower()
        if not re.fullmatch(f"[0-9a-f]{{{MIN_PREFIX},64}}", prefix):
            problems.append(
                f"{given!r}: not a document's SHA-256 or the start of one (at least "
                f"{MIN_PREFIX} hex digits; `contentapi documents list` shows 12)"
            )
            continue
        files = [document for document in shipped if document.sha256.startswith(prefix)]
        if files:
            problems.append(
                f"{given}: {_names_list(files)} ships with the service (schema/operations/): "
                "remove the file and deploy to stop trusting it"
            )
            continue
        matches = await repository.with_prefix(prefix)
        if not matches:
            problems.append(
                f"{given}: no stored document's hash starts with it (`contentapi documents list`)"
            )
        elif len(matches) > 1:
            problems.append(f"{given}: more than one document's hash starts with it: give more")
        else:
            match = matches[0]
            found[match.sha256] = RemovedDocument(match.sha256, tuple(match.names), match.source)
    if problems:
        raise BadInput("\n".join([*problems, "nothing was removed"]))
    removed = list(found.values())
    await repository.remove([document.sha256 for document in removed])
    await audit.record(
        session,
        [
            audit.event(
                by,
                REMOVED,
                before={
                    "documents": [
                        {"sha256": d.sha256, "names": list(d.names), "source": d.source}
                        for d in removed
                    ]
                },
            )
        ],
    )
    generations.DOCUMENTS.after_commit(session)
    return removed


def _names_list(documents: Sequence[NewDocument]) -> str:
    return ", ".join(name for document in documents for name in document.names)
