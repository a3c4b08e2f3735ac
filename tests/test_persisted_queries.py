"""Documents by hash: automatic persisted queries (APQ) as Apollo Client's link speaks them, shared
by every instance through the database; trusted documents, which alone run for partners and
anonymous callers in trusted mode; `contentapi documents add`, `list`, `remove` and `prune`."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from typer.testing import CliRunner

from service.app import create_app
from service.config import PROJECT_ROOT, Settings
from service.content.operations import bootstrap_development
from service.db import create_engine_for, create_sessionmaker, create_sync_engine
from service.delivery.documents import DocumentStore
from tests.helpers import (
    JS_DIR,
    free_port,
    invoke,
    query,
    require_node,
    scalar,
    start_serve,
    stop,
    wait_until_up,
)
from tests.vetting_helpers import make_team

APOLLO_SCRIPT = JS_DIR / "apollo-persisted.mjs"
OPERATIONS = PROJECT_ROOT / "schema" / "operations"
GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
NOT_FOUND_BODY = {
    "errors": [
        {"message": "PersistedQueryNotFound", "extensions": {"code": "PERSISTED_QUERY_NOT_FOUND"}}
    ]
}
TITLE = "Probiotics: what they are and what research suggests for the skin"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def persisted(sha: str, version: Any = 1) -> dict[str, Any]:
    return {"persistedQuery": {"version": version, "sha256Hash": sha}}


def snippet_title(name: str) -> str:
    """A document of its own per test, so that the tests sharing a database stay apart."""
    return f'query {name} {{ snippet(key: "probiotics") {{ title }} }}'


def by_hash_get(
    client: TestClient,
    sha: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    params = {"extensions": json.dumps(persisted(sha))}
    if variables is not None:
        params["variables"] = json.dumps(variables)
    return client.get("/graphql", params=params, headers=headers or {})


def post(
    client: TestClient, body: dict[str, Any], headers: dict[str, str] | None = None
) -> httpx.Response:
    return client.post("/graphql", json=body, headers=headers or {})


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def code_of(response: httpx.Response) -> str:
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    code: str = errors[0]["extensions"]["code"]
    return code


def stored(database_url: str) -> dict[str, str]:
    """The persisted documents of the database: source by hash."""
    rows = query(database_url, "SELECT sha256, source FROM persisted_documents")
    return {str(sha): str(source) for sha, source in rows}


def audited(database_url: str, action: str, side: str) -> list[dict[str, Any]]:
    """The `before` or `after` of each audit event of an action, oldest first."""
    rows = query(
        database_url, f"SELECT {side} FROM audit_events WHERE action = :a ORDER BY id", a=action
    )
    # SQLite hands JSON back as text
    return [json.loads(value) if isinstance(value, str) else value for (value,) in rows]


@dataclass(frozen=True)
class Keys:
    staff: str
    partner: str


@pytest.fixture(scope="module")
def keys(published: Settings) -> Keys:
    env = {"CONTENT_API_DATABASE_URL": published.database_url, "CONTENT_API_ENV": "development"}
    runner = CliRunner()

    def last_line(*args: str) -> str:
        result = invoke(runner, *args, env=env)
        assert result.exit_code == 0, result.output
        return str(result.stdout).strip().splitlines()[-1]

    return Keys(
        staff=last_line("staff", "add", "ada", "--role", "admin"),
        partner=last_line(
            "keys", "create", "--partner", "Acme", "--markets", "US", "--locales", "en-US,fr-FR"
        ),
    )


def serving(settings: Settings, **changes: Any) -> TestClient:
    return TestClient(create_app(settings.model_copy(update=changes)))


@pytest.fixture(scope="module")
def trusted_client(published: Settings) -> Iterator[TestClient]:
    with serving(published, trusted_documents=True) as client:
        yield client


# --- automatic persisted queries ---------------------------------------------------------------


def test_an_unknown_hash_is_not_found_then_registered_then_run_by_hash_over_get(
    client: TestClient, published: Settings
) -> None:
    document = snippet_title("ApqOverGet")
    sha = sha256(document)

    missing = by_hash_get(client, sha)
    # exactly what Apollo Client's link answers by sending the document
    assert missing.status_code == 200
    assert missing.json() == NOT_FOUND_BODY
    assert missing.headers["cache-control"] == "no-store"

    registered = post(client, {"query": document, "extensions": persisted(sha)})
    assert registered.status_code == 200
    assert registered.json() == {"data": {"snippet": {"title": TITLE}}}
    assert stored(published.database_url)[sha] == "apq"

    again = by_hash_get(client, sha)
    assert again.status_code == 200
    assert again.json() == {"data": {"snippet": {"title": TITLE}}}


def test_the_same_round_trip_over_post(client: TestClient) -> None:
    document = "query ApqOverPost($key: String!) { snippet(key: $key) { title } }"
    sha = sha256(document)
    hashed = {"variables": {"key": "probiotics"}, "extensions": persisted(sha)}

    assert post(client, hashed).json() == NOT_FOUND_BODY
    assert post(client, {"query": document, **hashed}).json()["data"]["snippet"]["title"] == TITLE
    assert post(client, hashed).json() == {"data": {"snippet": {"title": TITLE}}}


def test_not_found_under_graphql_response_json_is_a_404_without_data(client: TestClient) -> None:
    missing = by_hash_get(
        client, sha256(snippet_title("ApqNewMediaType")), headers={"accept": GRAPHQL_RESPONSE_JSON}
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith(GRAPHQL_RESPONSE_JSON)
    assert missing.json() == NOT_FOUND_BODY


def test_a_hash_that_is_not_the_documents_is_refused_and_registers_nothing(
    client: TestClient, published: Settings
) -> None:
    document = snippet_title("ApqMismatch")
    wrong = sha256(document + " ")
    refused = post(client, {"query": document, "extensions": persisted(wrong)})
    assert refused.status_code == 400
    assert code_of(refused) == "PERSISTED_QUERY_HASH_MISMATCH"
    assert sha256(document) in refused.json()["errors"][0]["message"]
    assert wrong not in stored(published.database_url)
    assert by_hash_get(client, wrong).json() == NOT_FOUND_BODY


def test_only_a_document_that_parses_and_validates_is_registered(
    client: TestClient, published: Settings
) -> None:
    invalid = 'query ApqInvalid { snippet(key: "probiotics") { nope } }'
    answer = post(client, {"query": invalid, "extensions": persisted(sha256(invalid))})
    assert code_of(answer) == "GRAPHQL_VALIDATION_FAILED"
    assert by_hash_get(client, sha256(invalid)).json() == NOT_FOUND_BODY

    # a document whose variables were missing is sound: kept, and run with them next time
    needs_key = "query ApqNeedsKey($key: String!) { snippet(key: $key) { title } }"
    sha = sha256(needs_key)
    answer = post(client, {"query": needs_key, "extensions": persisted(sha)})
    assert code_of(answer) == "BAD_USER_INPUT"
    assert stored(published.database_url)[sha] == "apq"
    assert by_hash_get(client, sha, {"key": "probiotics"}).json()["data"]["snippet"]["title"] == (
        TITLE
    )


def test_another_protocol_version_or_a_malformed_hash_is_refused_clearly(
    client: TestClient,
) -> None:
    sha = sha256(snippet_title("ApqVersion"))
    version = post(client, {"extensions": persisted(sha, version=2)})
    assert version.status_code == 400
    assert code_of(version) == "BAD_REQUEST"
    assert "Unsupported persisted query version 2" in version.json()["errors"][0]["message"]

    for bad in (sha.upper(), sha[:40], 12):
        malformed = post(
            client, {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": bad}}}
        )
        assert malformed.status_code == 400
        assert "64 lower-case hexadecimal digits" in malformed.json()["errors"][0]["message"]


def test_with_persisted_queries_off_hashes_are_not_supported(published: Settings) -> None:
    document = snippet_title("ApqOff")
    with serving(published, persisted_queries=False) as client:
        hashed = post(client, {"extensions": persisted(sha256(document))})
        assert hashed.status_code == 200  # so that Apollo's link retries without the hash
        assert code_of(hashed) == "PERSISTED_QUERY_NOT_SUPPORTED"
        both = post(client, {"query": document, "extensions": persisted(sha256(document))})
        assert code_of(both) == "PERSISTED_QUERY_NOT_SUPPORTED"
        plain = post(client, {"query": document})
        assert plain.json() == {"data": {"snippet": {"title": TITLE}}}
    assert sha256(document) not in stored(published.database_url)


def test_a_staff_mutation_sent_with_its_hash_is_registered_in_its_own_transaction(
    cli: CliRunner, settings: Settings
) -> None:
    # the mutation writes, so on SQLite its transaction holds the write lock until the request
    # ends: the registration must join that transaction, not wait beside it
    asyncio.run(bootstrap_development(settings))
    team = make_team(cli)
    mutation = 'mutation Withdraw { withdrawEntry(key: "secretome", reason: "test") { number } }'
    sha = sha256(mutation)
    with serving(settings) as client:
        answer = post(
            client, {"query": mutation, "extensions": persisted(sha)}, bearer(team.publisher)
        )
    assert answer.json() == {"data": {"withdrawEntry": {"number": 2}}}
    assert query(
        settings.database_url,
        "SELECT source, added_by FROM persisted_documents WHERE sha256 = :sha",
        sha=sha,
    ) == [("apq", "pat")]


def test_a_document_registered_on_one_instance_runs_by_hash_on_another(
    published: Settings,
) -> None:
    document = snippet_title("ApqShared")
    sha = sha256(document)
    with serving(published) as first, serving(published) as second:
        assert by_hash_get(second, sha).json() == NOT_FOUND_BODY
        assert post(first, {"query": document, "extensions": persisted(sha)}).status_code == 200

        statements: list[str] = []

        def counted(*args: Any) -> None:
            statements.append(args[2])

        engine = second.app.state.engine.sync_engine  # type: ignore[attr-defined]
        event.listen(engine, "before_cursor_execute", counted)
        missing = by_hash_get(second, sha256(snippet_title("ApqNeverSent")))
        event.remove(engine, "before_cursor_execute", counted)
        assert missing.json() == NOT_FOUND_BODY
        # a hash this process does not know costs one look in the database
        assert len(statements) == 1
        assert "persisted_documents" in statements[0]

        assert by_hash_get(second, sha).json() == {"data": {"snippet": {"title": TITLE}}}
        assert second.app.state.documents.known(sha) == document  # type: ignore[attr-defined]


def test_each_process_keeps_a_bounded_number_of_documents_the_database_keeps_them_all(
    database_url: str,
) -> None:
    documents = [snippet_title(f"Bounded{n}") for n in range(3)]

    async def scenario() -> None:
        engine = create_engine_for(database_url)
        try:
            store = DocumentStore(max_documents=2, max_bytes=10_000)
            await store.load(create_sessionmaker(engine))
            for document in documents:
                await store.register(sha256(document), document, added_by=None)
            # the least recently used one is dropped from memory, not from the database
            assert store.known(sha256(documents[0])) is None
            assert [store.known(sha256(d)) for d in documents[1:]] == documents[1:]
            assert await store.lookup(sha256(documents[0])) == documents[0]
            assert store.known(sha256(documents[1])) is None

            tiny = DocumentStore(max_documents=10, max_bytes=len(documents[0]) + 1)
            await tiny.load(create_sessionmaker(engine))
            for document in documents:
                assert await tiny.lookup(sha256(document)) == document
            assert tiny.known(sha256(documents[2])) == documents[2]
            assert tiny.known(sha256(documents[1])) is None  # bounded by bytes as well
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    assert set(stored(database_url)) == {sha256(d) for d in documents}


def test_a_new_process_trusts_what_staff_added_before_any_request(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    document = snippet_title("TrustedAtStart")
    path = tmp_path / "TrustedAtStart.graphql"
    path.write_text(document)
    assert invoke(cli, "documents", "add", str(path)).exit_code == 0
    product_page = (OPERATIONS / "ProductPage.graphql").read_bytes()

    with serving(settings, trusted_documents=True) as client:
        store = client.app.state.documents  # type: ignore[attr-defined]
        assert store.is_trusted(sha256(document))
        assert store.known(sha256(document)) == document
        assert store.is_trusted(hashlib.sha256(product_page).hexdigest())
        assert not store.is_trusted(sha256(snippet_title("NeverAdded")))


# --- trusted documents ---------------------------------------------------------------------------


def operation(name: str) -> tuple[str, dict[str, Any]]:
    text = (OPERATIONS / f"{name}.graphql").read_bytes().decode("utf-8")
    variables = json.loads((OPERATIONS / f"{name}.variables.json").read_text())
    return text, variables


def test_trusted_mode_refuses_partners_and_anonymous_callers_anything_untrusted(
    trusted_client: TestClient, keys: Keys, published: Settings
) -> None:
    document = snippet_title("FreeForm")
    for headers in ({}, bearer(keys.partner)):
        free_form = post(trusted_client, {"query": document}, headers)
        assert free_form.status_code == 403
        assert code_of(free_form) == "PERSISTED_QUERY_NOT_IN_LIST"
        assert "contentapi documents add" in free_form.json()["errors"][0]["message"]

        unknown = by_hash_get(trusted_client, sha256(document), headers=headers)
        assert code_of(unknown) == "PERSISTED_QUERY_NOT_IN_LIST"

        register = post(
            trusted_client, {"query": document, "extensions": persisted(sha256(document))}, headers
        )
        assert code_of(register) == "PERSISTED_QUERY_NOT_IN_LIST"
    assert sha256(document) not in stored(published.database_url)


def test_trusted_mode_runs_schema_operations_by_hash_or_as_their_text(
    trusted_client: TestClient, keys: Keys
) -> None:
    text, variables = operation("SnippetByKey")
    by_hash = by_hash_get(trusted_client, sha256(text), variables, bearer(keys.partner))
    assert by_hash.status_code == 200, by_hash.text
    assert by_hash.json()["data"]["snippet"]["key"] == variables["key"]

    text, variables = operation("DisclaimersForMarket")
    as_text = post(trusted_client, {"query": text, "variables": variables})
    assert as_text.status_code == 200, as_text.text
    assert as_text.json()["data"]["disclaimers"]
    both = post(
        trusted_client,
        {"query": text, "variables": variables, "extensions": persisted(sha256(text))},
        bearer(keys.partner),
    )
    assert both.json() == as_text.json()


def test_trusted_mode_lets_a_staff_key_send_any_document(
    trusted_client: TestClient, keys: Keys, published: Settings
) -> None:
    document = snippet_title("StaffFreeForm")
    staff = bearer(keys.staff)
    assert post(trusted_client, {"query": document}, staff).json() == {
        "data": {"snippet": {"title": TITLE}}
    }
    hashed = post(
        trusted_client, {"query": document, "extensions": persisted(sha256(document))}, staff
    )
    assert hashed.status_code == 200
    assert stored(published.database_url)[sha256(document)] == "apq"
    assert by_hash_get(trusted_client, sha256(document), headers=staff).status_code == 200
    # registered by staff, but not trusted: partners still may not run it
    refused = by_hash_get(trusted_client, sha256(document), headers=bearer(keys.partner))
    assert code_of(refused) == "PERSISTED_QUERY_NOT_IN_LIST"


def test_a_document_trusted_while_instances_run_runs_for_partners_at_once(
    trusted_client: TestClient, keys: Keys, published: Settings, tmp_path: Path
) -> None:
    document = snippet_title("TrustedLater")
    path = tmp_path / "TrustedLater.graphql"
    path.write_text(document)
    assert code_of(post(trusted_client, {"query": document})) == "PERSISTED_QUERY_NOT_IN_LIST"

    env = {"CONTENT_API_DATABASE_URL": published.database_url, "CONTENT_API_ENV": "development"}
    assert invoke(CliRunner(), "documents", "add", str(path), env=env).exit_code == 0

    answer = by_hash_get(trusted_client, sha256(document), headers=bearer(keys.partner))
    assert answer.json() == {"data": {"snippet": {"title": TITLE}}}
    assert trusted_client.app.state.documents.is_trusted(sha256(document))  # type: ignore[attr-defined]


# --- contentapi documents add / list -------------------------------------------------------------


def test_documents_add_trusts_a_graphql_file_as_its_exact_text(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    text = "# the hash covers every byte, comments too\r\n" + snippet_title("FromFile") + "\n"
    path = tmp_path / "FromFile.graphql"
    path.write_bytes(text.encode("utf-8"))
    sha = hashlib.sha256(path.read_bytes()).hexdigest()

    added = invoke(cli, "documents", "add", str(path))
    assert added.exit_code == 0, added.output
    assert f"{sha[:12]}  FromFile  new" in added.output
    assert stored(settings.database_url) == {sha: "trusted"}
    assert scalar(settings.database_url, "SELECT body FROM persisted_documents") == text

    listing = invoke(cli, "documents", "list").output
    line = next(line for line in listing.splitlines() if line.startswith(sha[:12]))
    assert "FromFile  trusted  added " in line
    # the operations that come with the service are listed as trusted too
    assert "ProductPage  trusted  with the service" in listing

    again = invoke(cli, "documents", "add", str(path))
    assert f"{sha[:12]}  FromFile  trusted already" in again.output


def test_documents_add_reads_an_apollo_persisted_query_manifest(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    bodies = {
        "ManifestTitle": snippet_title("ManifestTitle"),
        "ManifestTakeaways": 'query ManifestTakeaways { takeaways(topic: "gut-skin-axis") { text } }',
    }
    manifest = {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [
            {"id": sha256(body), "name": name, "type": "query", "body": body}
            for name, body in bodies.items()
        ],
    }
    path = tmp_path / "persisted-query-manifest.json"
    path.write_text(json.dumps(manifest))

    added = invoke(cli, "documents", "add", str(path))
    assert added.exit_code == 0, added.output
    assert "Trusted 2 documents: 2 new" in added.output
    assert stored(settings.database_url) == {sha256(body): "trusted" for body in bodies.values()}
    listing = invoke(cli, "documents", "list").output
    for name, body in bodies.items():
        assert f"{sha256(body)[:12]}  {name}  trusted" in listing


def test_a_document_a_client_registered_becomes_trusted(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    document = snippet_title("RegisteredFirst")
    with serving(settings) as client:
        sha = sha256(document)
        assert post(client, {"query": document, "extensions": persisted(sha)}).status_code == 200
    assert stored(settings.database_url) == {sha: "apq"}
    path = tmp_path / "RegisteredFirst.graphql"
    path.write_text(document)

    added = invoke(cli, "documents", "add", str(path))
    assert "registered by a client before, trusted now" in added.output
    assert stored(settings.database_url) == {sha: "trusted"}


def test_documents_add_refuses_every_file_when_one_has_a_problem(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    good = tmp_path / "Good.graphql"
    good.write_text(snippet_title("Good"))
    syntax = tmp_path / "Syntax.graphql"
    syntax.write_text('query Syntax {\n  snippet(key: "probiotics") { title\n')
    invalid = tmp_path / "Invalid.graphql"
    invalid.write_text('query Invalid {\n  snippet(key: "probiotics") { nope }\n}\n')
    wrong_shape = tmp_path / "manifest.json"
    wrong_shape.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": "abc", "name": "NoBody", "type": "query"}],
            }
        )
    )
    wrong_id = tmp_path / "wrong-id.json"
    wrong_id.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [
                    {"id": "abc", "name": "WrongId", "type": "query", "body": snippet_title("W")}
                ],
            }
        )
    )
    missing = tmp_path / "Missing.graphql"

    result = invoke(
        cli, "documents", "add", str(good), str(syntax), str(invalid), str(wrong_shape),
        str(wrong_id), str(missing),
    )  # fmt: skip
    assert result.exit_code == 1
    output = result.output
    assert f"{syntax}:3: Syntax Error: Expected Name, found <EOF>." in output
    assert f"{invalid}:2: Cannot query field 'nope' on type 'Snippet'." in output
    assert f"{wrong_shape}:0: operations[0].body: Field required" in output
    assert "apollo-persisted-query-manifest" in output
    assert f"{wrong_id}:0: operations[0] (WrongId): `id` is 'abc', not the SHA-256" in output
    assert f"{missing}:0: no such file" in output
    assert "6 problems in the document files; nothing was added" in output
    assert stored(settings.database_url) == {}


@pytest.mark.parametrize(
    "manifest",
    [
        [],
        {"format": "something-else", "version": 1, "operations": []},
        {"format": "apollo-persisted-query-manifest", "version": 2, "operations": []},
    ],
    ids=["not-an-object", "format", "version"],
)
def test_a_manifest_of_the_wrong_shape_is_refused(
    cli: CliRunner, settings: Settings, tmp_path: Path, manifest: Any
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    result = invoke(cli, "documents", "add", str(path))
    assert result.exit_code == 1
    assert "apollo-persisted-query-manifest" in result.output
    assert "nothing was added" in result.output
    assert stored(settings.database_url) == {}


def test_in_production_only_an_admins_key_trusts_documents(
    cli: CliRunner, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(cli)
    path = tmp_path / "Production.graphql"
    path.write_text(snippet_title("Production"))
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    monkeypatch.setenv("CONTENT_API_CONSOLE_ENABLED", "false")

    anonymous = invoke(cli, "documents", "add", str(path))
    assert anonymous.exit_code == 1
    assert "production refuses anonymous writes" in anonymous.output
    editor = invoke(cli, "documents", "add", str(path), "--key", team.editor)
    assert editor.exit_code == 1
    assert "eve may not trust documents" in editor.output
    assert stored(settings.database_url) == {}

    admin = invoke(cli, "documents", "add", str(path), "--key", team.admin)
    assert admin.exit_code == 0, admin.output
    assert "Production  new" in admin.output
    assert list(stored(settings.database_url).values()) == ["trusted"]
    audit = query(
        settings.database_url, "SELECT actor FROM audit_events WHERE action = 'documents.add'"
    )
    assert audit == [("ada",)]


# --- contentapi documents remove -----------------------------------------------------------------


def trusted_and_kept(
    client: TestClient, keys: Keys, published: Settings, folder: Path, name: str
) -> tuple[str, dict[str, str]]:
    """A document `documents add` trusted, then asked for by a partner until the fast lane
    repeats it; its hash, and the environment of the CLI for this database."""
    path = folder / f"{name}.graphql"
    path.write_text(snippet_title(name))
    env = {"CONTENT_API_DATABASE_URL": published.database_url, "CONTENT_API_ENV": "development"}
    assert invoke(CliRunner(), "documents", "add", str(path), env=env).exit_code == 0
    sha = sha256(snippet_title(name))
    for _ in range(3):  # planned, kept, then repeated by the fast lane
        answer = by_hash_get(client, sha, headers=bearer(keys.partner))
        assert answer.json() == {"data": {"snippet": {"title": TITLE}}}
    return sha, env


def test_a_trusted_document_removed_is_refused_to_partners_from_the_next_request(
    trusted_client: TestClient, keys: Keys, published: Settings, tmp_path: Path
) -> None:
    sha, env = trusted_and_kept(trusted_client, keys, published, tmp_path, "RemovedLater")

    removed = invoke(CliRunner(), "documents", "remove", sha[:12], env=env)
    assert removed.exit_code == 0, removed.output
    assert f"{sha[:12]}  RemovedLater  trusted  removed" in removed.output
    assert "Removed 1 document." in removed.output

    refused = by_hash_get(trusted_client, sha, headers=bearer(keys.partner))
    assert code_of(refused) == "PERSISTED_QUERY_NOT_IN_LIST"
    as_text = post(
        trusted_client, {"query": snippet_title("RemovedLater")}, headers=bearer(keys.partner)
    )
    assert code_of(as_text) == "PERSISTED_QUERY_NOT_IN_LIST"
    assert sha not in stored(published.database_url)
    # the operations that ship with the service still run
    product_page = OPERATIONS / "ProductPage.graphql"
    still = by_hash_get(
        trusted_client,
        hashlib.sha256(product_page.read_bytes()).hexdigest(),
        json.loads((OPERATIONS / "ProductPage.variables.json").read_text()),
        headers=bearer(keys.partner),
    )
    assert still.status_code == 200
    assert "errors" not in still.json()


def test_a_trusted_document_removed_on_another_instance_is_refused_within_a_poll(
    trusted_client: TestClient, keys: Keys, published: Settings, tmp_path: Path
) -> None:
    sha, env = trusted_and_kept(trusted_client, keys, published, tmp_path, "RemovedElsewhere")

    # another instance's removal, in a process of its own: nothing in this one is told
    other = subprocess.run(
        [sys.executable, "-m", "service.cli", "documents", "remove", sha[:12]],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert other.returncode == 0, other.stdout + other.stderr
    deadline = time.monotonic() + 5  # the freshness poll runs every 0.25 s
    while True:
        answer = by_hash_get(trusted_client, sha, headers=bearer(keys.partner))
        if answer.status_code != 200 or "errors" in answer.json():
            break
        assert time.monotonic() < deadline, "still answered 5 s after the removal"
        time.sleep(0.05)
    assert code_of(answer) == "PERSISTED_QUERY_NOT_IN_LIST"


def test_documents_remove_needs_one_stored_document_per_name_or_removes_nothing(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    paths = []
    for name in ("KeepMe", "AlsoKept"):
        path = tmp_path / f"{name}.graphql"
        path.write_text(snippet_title(name))
        paths.append(str(path))
    assert invoke(cli, "documents", "add", *paths).exit_code == 0
    engine = create_sync_engine(settings.database_url)
    try:
        with engine.begin() as connection:
            for last in "12":  # two hashes that share their first 60 digits
                connection.execute(
                    text(
                        "INSERT INTO persisted_documents (sha256, body, names, source, added_at)"
                        " VALUES (:sha, '{ __typename }', '[]', 'apq', :at)"
                    ),
                    {"sha": "ab" * 30 + "000" + last, "at": datetime.now(UTC)},
                )
    finally:
        engine.dispose()
    before = stored(settings.database_url)
    keep = sha256(snippet_title("KeepMe"))
    product_page = hashlib.sha256((OPERATIONS / "ProductPage.graphql").read_bytes()).hexdigest()

    result = invoke(
        cli, "documents", "remove", keep[:12], "abc", "0" * 12, "ab" * 30, product_page[:10],
    )  # fmt: skip
    assert result.exit_code == 1
    output = result.output
    assert "'abc': not a document's SHA-256 or the start of one (at least 8 hex digits" in output
    assert f"{'0' * 12}: no stored document's hash starts with it" in output
    assert f"{'ab' * 30}: more than one document's hash starts with it" in output
    assert f"{product_page[:10]}: ProductPage ships with the service (schema/operations/)" in output
    assert "nothing was removed" in output
    assert stored(settings.database_url) == before

    removed = invoke(cli, "documents", "remove", keep[:8], "ab" * 30 + "0002")
    assert removed.exit_code == 0, removed.output
    assert "Removed 2 documents." in removed.output
    after = stored(settings.database_url)
    assert set(before) - set(after) == {keep, "ab" * 30 + "0002"}
    (logged,) = audited(settings.database_url, "documents.remove", "before")
    assert {d["sha256"]: d["source"] for d in logged["documents"]} == {
        keep: "trusted",
        "ab" * 30 + "0002": "apq",
    }


def test_in_production_only_an_admins_key_removes_documents(
    cli: CliRunner, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = make_team(cli)
    path = tmp_path / "AdminOnly.graphql"
    path.write_text(snippet_title("AdminOnly"))
    assert invoke(cli, "documents", "add", str(path)).exit_code == 0
    sha = sha256(snippet_title("AdminOnly"))
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    monkeypatch.setenv("CONTENT_API_CONSOLE_ENABLED", "false")

    editor = invoke(cli, "documents", "remove", sha[:12], "--key", team.editor)
    assert editor.exit_code == 1
    assert "eve may not remove documents" in editor.output
    assert sha in stored(settings.database_url)
    admin = invoke(cli, "documents", "remove", sha[:12], "--key", team.admin)
    assert admin.exit_code == 0, admin.output
    assert sha not in stored(settings.database_url)


# --- contentapi documents prune ------------------------------------------------------------------


def registered_days_ago(database_url: str, sha: str, days: int) -> None:
    engine = create_sync_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE persisted_documents SET added_at = :at WHERE sha256 = :sha"),
                {"at": datetime.now(UTC) - timedelta(days=days), "sha": sha},
            )
    finally:
        engine.dispose()


def test_documents_prune_removes_what_clients_registered_long_ago_and_keeps_trusted_ones(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    old, recent, trusted = (snippet_title(name) for name in ("PruneOld", "PruneRecent", "Kept"))
    with serving(settings) as client:
        for document in (old, recent, trusted):
            body = {"query": document, "extensions": persisted(sha256(document))}
            assert post(client, body).status_code == 200
    path = tmp_path / "Kept.graphql"
    path.write_text(trusted)
    assert invoke(cli, "documents", "add", str(path)).exit_code == 0
    registered_days_ago(settings.database_url, sha256(old), 40)
    registered_days_ago(settings.database_url, sha256(trusted), 400)
    registered_days_ago(settings.database_url, sha256(recent), 20)

    looked = invoke(cli, "documents", "prune", "--older-than", "30", "--dry-run")
    assert looked.exit_code == 0, looked.output
    assert f"{sha256(old)[:12]}  PruneOld  apq  added " in looked.output
    assert "PruneRecent" not in looked.output
    assert "Would remove 1 document registered by clients before " in looked.output
    assert len(stored(settings.database_url)) == 3

    pruned = invoke(cli, "documents", "prune", "--older-than", "30")
    assert pruned.exit_code == 0, pruned.output
    assert "Removed 1 document registered by clients before " in pruned.output
    assert stored(settings.database_url) == {sha256(recent): "apq", sha256(trusted): "trusted"}
    (after,) = audited(settings.database_url, "documents.prune", "after")
    assert after["removed"] == 1

    # a client sending the pruned hash is asked for the text, and registers it again
    with serving(settings) as client:
        assert by_hash_get(client, sha256(old)).json() == NOT_FOUND_BODY
        body = {"query": old, "extensions": persisted(sha256(old))}
        assert post(client, body).json()["data"] is not None
        assert by_hash_get(client, sha256(recent)).status_code == 200
    assert stored(settings.database_url)[sha256(old)] == "apq"

    nothing = invoke(cli, "documents", "prune", "--older-than", "30")
    assert "Removed 0 documents registered by clients before " in nothing.output


def test_documents_prune_asks_for_a_number_of_days_and_an_admin(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = invoke(cli, "documents", "prune")
    assert missing.exit_code == 2
    assert "--older-than" in missing.output
    zero = invoke(cli, "documents", "prune", "--older-than", "0")
    assert zero.exit_code == 2
    assert "greater than or equal to 1" in zero.output

    team = make_team(cli)
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    monkeypatch.setenv("CONTENT_API_CONSOLE_ENABLED", "false")
    editor = invoke(cli, "documents", "prune", "--older-than", "30", "--key", team.editor)
    assert editor.exit_code == 1
    assert "eve may not prune documents" in editor.output
    admin = invoke(cli, "documents", "prune", "--older-than", "30", "--key", team.admin)
    assert admin.exit_code == 0, admin.output


# --- the real client -----------------------------------------------------------------------------


def test_apollo_clients_persisted_query_link_registers_once_then_sends_only_the_hash(
    settings: Settings,
) -> None:
    node = require_node("@apollo/client")
    port = free_port()
    process = start_serve(settings.database_url, "development", port)
    try:
        wait_until_up(process, port)
        run = subprocess.run(
            [node, str(APOLLO_SCRIPT), f"http://127.0.0.1:{port}/graphql", "probiotics"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop(process)
    assert run.returncode == 0, run.stdout + run.stderr
    results = json.loads(run.stdout)

    for accept, miss_status in (("default", 404), ("application/json", 200)):
        first, second = results[accept]["first"], results[accept]["second"]
        sha = first["requests"][0]["sha256Hash"]
        assert len(sha) == 64
        # the first request is a GET with the hash only; the miss makes the link POST the
        # document with its hash, which registers it
        assert [(r["method"], r["hasQuery"], r["status"]) for r in first["requests"]] == [
            ("GET", False, miss_status),
            ("POST", True, 200),
        ]
        assert first["requests"][1]["sha256Hash"] == sha
        # another client (another build, its own cache) is answered by hash alone
        assert [(r["method"], r["hasQuery"], r["status"]) for r in second["requests"]] == [
            ("GET", False, 200)
        ]
        assert second["requests"][0]["sha256Hash"] == sha
        assert first["data"]["snippet"]["title"] == TITLE
        assert second["data"] == first["data"]
        assert stored(settings.database_url)[sha] == "apq"
