"""Release bundles over HTTP and as a static export: immutable, content-addressed, canonical
JSON, byte for byte the same from the route, the command and either database."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import event
from typer.testing import CliRunner

from service.app import create_app
from service.config import PROJECT_ROOT, Settings
from tests.conftest import SEED, fresh_database
from tests.helpers import invoke

SCHEMA = json.loads((PROJECT_ROOT / "schema/bundle.schema.json").read_text(encoding="utf-8"))
IMMUTABLE = "public, max-age=31536000, immutable"


def canonical(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def hash_of(document: dict[str, Any]) -> str:
    unhashed = {name: value for name, value in document.items() if name != "contentHash"}
    return hashlib.sha256(canonical(unhashed)).hexdigest()


def validate(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(document)


def by_key(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["key"]: item for item in items}


# --- over HTTP --------------------------------------------------------------------------------


def test_a_bundle_is_canonical_json_named_by_its_hash_and_cached_for_ever(
    client: TestClient,
) -> None:
    response = client.get("/bundles/1/fr-FR.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == IMMUTABLE
    document = response.json()
    assert response.content == canonical(document)
    assert document["contentHash"] == hash_of(document)
    assert response.headers["etag"] == f'"{document["contentHash"]}"'
    assert (document["formatVersion"], document["locale"], document["market"]) == (1, "fr-FR", None)
    assert document["release"]["number"] == 1
    assert document["release"]["publishedAt"].endswith("Z")
    # lists by key; each item says which locale it was served in, after fallback
    for collection in ("snippets", "takeaways", "disclaimers", "topics", "citations"):
        keys = [item["key"] for item in document[collection]]
        assert keys == sorted(keys), collection
    snippets = by_key(document["snippets"])
    assert snippets["probiotics"]["locale"] == "fr-FR"
    assert snippets["secretome"]["locale"] == "en-US"
    assert by_key(document["topics"])["gut-skin-axis"]["name"] == "Axe intestin–peau"
    assert client.get("/bundles/1/fr-FR.json").content == response.content


def test_bundle_items_read_as_the_graphql_api_serves_them(client: TestClient) -> None:
    bundle = client.get("/bundles/1/fr-FR.json").json()
    query = """{ snippet(key: "probiotics", locale: "fr-FR", release: 1) {
        key locale version title summary evidence tags markets contentHash reviewedAt
        body { markdown html text } topics { key } conditions { key } citations { key }
        release { number } } }"""
    served = client.post("/graphql", json={"query": query}).json()["data"]["snippet"]
    item = by_key(bundle["snippets"])["probiotics"]
    for field in ("key", "locale", "version", "title", "summary", "evidence", "tags", "markets"):
        assert item[field] == served[field], field
    assert item["contentHash"] == served["contentHash"]
    assert item["body"] == served["body"]
    assert item["release"] == served["release"]["number"]
    assert item["topics"] == [topic["key"] for topic in served["topics"]]
    assert item["citations"] == [citation["key"] for citation in served["citations"]]
    reviewed = datetime.fromisoformat(served["reviewedAt"])
    assert item["reviewedAt"] == reviewed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_if_none_match_answers_304_without_building_the_bundle_again(
    published: Settings,
) -> None:
    with TestClient(create_app(published)) as client:
        etag = client.get("/bundles/1/en-US.json?market=US").headers["etag"]
        engine = client.app.state.engine.sync_engine  # type: ignore[attr-defined]
        statements: list[str] = []

        def counted(*args: Any) -> None:
            statements.append(args[2])

        event.listen(engine, "before_cursor_execute", counted)
        for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
            response = client.get(
                "/bundles/1/en-US.json?market=US", headers={"if-none-match": header}
            )
            assert response.status_code == 304, header
            assert response.content == b""
            assert response.headers["etag"] == etag
            assert response.headers["cache-control"] == IMMUTABLE
        event.remove(engine, "before_cursor_execute", counted)
        assert statements == []
        other = client.get("/bundles/1/en-US.json", headers={"if-none-match": etag})
        assert other.status_code == 200
        assert other.headers["etag"] != etag
    # a fresh instance builds the bundle once, then answers 304 all the same
    with TestClient(create_app(published)) as client:
        fresh = client.get("/bundles/1/en-US.json?market=US", headers={"if-none-match": etag})
        assert fresh.status_code == 304


def test_latest_redirects_to_the_numbered_bundle_for_a_minute(client: TestClient) -> None:
    response = client.get("/bundles/latest/fr-fr.json?market=FR", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"] == "/bundles/1/fr-FR.json?market=FR"
    assert response.headers["cache-control"] == "public, max-age=60"
    followed = client.get("/bundles/latest/fr-FR.json?market=FR")
    assert followed.status_code == 200
    assert followed.json()["market"] == "FR"


@pytest.mark.parametrize(
    ("path", "status", "code", "message"),
    [
        ("/bundles/2/en-US.json", 404, "NOT_FOUND", "release 2 does not exist; the latest is 1"),
        ("/bundles/0/en-US.json", 404, "NOT_FOUND", "no release '0'"),
        ("/bundles/first/en-US.json", 404, "NOT_FOUND", "no release 'first'"),
        ("/bundles/1/en_US.json", 400, "BAD_USER_INPUT", "malformed locale 'en_US'"),
        ("/bundles/latest/xx-YY-ZZ-1.json", 400, "BAD_USER_INPUT", "malformed locale"),
        ("/bundles/1/en-US.json?market=XX", 400, "BAD_USER_INPUT", "unknown market 'XX'"),
        ("/bundles/latest/en-US.json?market=XX", 400, "BAD_USER_INPUT", "unknown market 'XX'"),
    ],
)
def test_unknown_releases_and_bad_arguments_are_json_errors_never_cached(
    client: TestClient, path: str, status: int, code: str, message: str
) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == status
    assert response.headers["cache-control"] == "no-store"
    error = response.json()["error"]
    assert error["code"] == code
    assert message in error["message"]


def test_a_market_narrows_the_bundle_to_what_may_be_shown_there(client: TestClient) -> None:
    everywhere = client.get("/bundles/1/en-US.json").json()
    eu = client.get("/bundles/1/en-US.json?market=EU").json()
    us = client.get("/bundles/1/en-US.json?market=US").json()
    assert eu["market"] == "EU"
    assert "fda-structure-function" in by_key(everywhere["disclaimers"])
    assert "fda-structure-function" in by_key(us["disclaimers"])
    assert "fda-structure-function" not in by_key(eu["disclaimers"])
    for document in (eu, us):
        for collection in ("snippets", "takeaways", "disclaimers"):
            assert all(document["market"] in item["markets"] for item in document[collection])


@pytest.mark.parametrize(
    "path",
    ["/bundles/1/en-US.json", "/bundles/1/fr-FR.json?market=FR", "/bundles/1/de-DE.json"],
)
def test_bundles_match_their_json_schema(client: TestClient, path: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    document = client.get(path).json()
    validate(document)
    # the schema holds the bundle to its shape: a field too many or a wrong value fails
    snippet = document["snippets"][0]
    for broken in (
        {**snippet, "unexpected": 1},
        {**snippet, "evidence": "STRONG"},
        {k: v for k, v in snippet.items() if k != "body"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate({**document, "snippets": [broken]})


# --- the static export ------------------------------------------------------------------------


def export(cli: CliRunner, *args: str) -> str:
    result = invoke(cli, "export", *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_export_is_the_http_bundle_byte_for_byte_and_the_same_every_run(
    cli: CliRunner, published: Settings, client: TestClient, tmp_path: Path
) -> None:
    env = {"CONTENT_API_DATABASE_URL": published.database_url, "CONTENT_API_ENV": "development"}
    first, second = tmp_path / "first", tmp_path / "second"
    for folder in (first, second):
        result = invoke(
            cli, "export", "--release", "1", "--locale", "fr-FR", "--market", "FR",
            "--out", str(folder), "--entries", env=env,
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "Exported release 1 (fr-FR.FR)" in result.output
    body = client.get("/bundles/1/fr-FR.json?market=FR").content
    assert (first / "fr-FR.FR.json").read_bytes() == body
    assert files(first) == files(second)
    document = json.loads(body)
    assert "sha256 " + document["contentHash"] in result.output
    for collection in ("snippets", "takeaways", "disclaimers"):
        for item in document[collection]:
            path = first / "fr-FR.FR" / collection / f"{item['key']}.json"
            assert path.read_bytes() == canonical(item)
    # without a market, the file is named by the locale alone
    plain = invoke(cli, "export", "--locale", "en-US", "--out", str(first), env=env)
    assert plain.exit_code == 0, plain.output
    assert (first / "en-US.json").read_bytes() == client.get("/bundles/1/en-US.json").content


def test_export_refuses_bad_arguments_and_writes_nothing(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    nothing = invoke(cli, "export", "--locale", "en-US", "--out", str(out))
    assert nothing.exit_code == 1
    assert "no release has been published yet" in nothing.output
    assert invoke(cli, "seed", "--approve").exit_code == 0
    assert invoke(cli, "publish", "--note", "one").exit_code == 0
    cases = [
        (["--release", "2", "--locale", "en-US"], 1, "release 2 does not exist; the latest is 1"),
        (["--locale", "en_US"], 2, "--locale: unknown or malformed locale 'en_US'"),
        (["--locale", "en-US", "--market", "XX"], 1, "unknown market 'XX'"),
        (["--release", "0", "--locale", "en-US"], 2, "Usage:"),  # the option's own range
    ]
    for args, code, message in cases:
        result = invoke(cli, "export", *args, "--out", str(out))
        assert result.exit_code == code, result.output
        assert message in result.output
    assert not out.exists()


def test_export_entries_drop_files_the_release_no_longer_holds(
    cli: CliRunner, settings: Settings, seed_copy: Path, tmp_path: Path
) -> None:
    assert invoke(cli, "seed", str(seed_copy), "--approve").exit_code == 0
    assert invoke(cli, "publish", "--note", "one").exit_code == 0
    assert invoke(cli, "withdraw", "secretome", "--reason", "Outdated").exit_code == 0
    out = tmp_path / "out"
    (out / "en-US").mkdir(parents=True)
    keep = out / "en-US" / "notes.txt"
    keep.write_text("the partner's own file")
    export(cli, "--release", "1", "--locale", "en-US", "--out", str(out), "--entries")
    assert (out / "en-US/snippets/secretome.json").is_file()
    export(cli, "--release", "2", "--locale", "en-US", "--out", str(out), "--entries")
    assert not (out / "en-US/snippets/secretome.json").exists()
    assert (out / "en-US/snippets/probiotics.json").is_file()
    assert keep.read_text() == "the partner's own file"
    document = json.loads((out / "en-US.json").read_bytes())
    assert document["release"]["number"] == 2
    assert "secretome" not in by_key(document["snippets"])


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.postgres
def test_the_same_content_exports_the_same_bytes_from_sqlite_and_postgresql(
    request: pytest.FixtureRequest,
    cli: CliRunner,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Seeded and published alike, with the same clock, the two databases export equal bytes."""
    request.getfixturevalue("postgres_server")
    monkeypatch.setenv("CONTENT_API_ENV", "development")
    exports = {}
    for kind in ("sqlite", "postgresql"):
        seed = tmp_path / kind / "seed"
        shutil.copytree(SEED, seed)
        with fresh_database(request, kind, tmp_path / kind) as url:
            monkeypatch.setenv("CONTENT_API_DATABASE_URL", url)
            with time_machine.travel(
                datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC), tick=False
            ):
                assert invoke(cli, "seed", str(seed), "--approve").exit_code == 0
                assert invoke(cli, "publish", "--note", "Première version").exit_code == 0
            probiotics = seed / "snippets/probiotics.fr-FR.md"
            probiotics.write_text(probiotics.read_text() + "\nUne phrase ajoutée.\n")
            with time_machine.travel(datetime(2026, 4, 2, 17, 0, 0, 1, tzinfo=UTC), tick=False):
                assert invoke(cli, "seed", str(seed), "--approve").exit_code == 0
                assert invoke(cli, "publish", "--note", "Deux").exit_code == 0
                assert invoke(cli, "withdraw", "secretome", "--reason", "x").exit_code == 0
            out = tmp_path / kind / "out"
            for release in ("1", "3"):
                export(cli, "--release", release, "--locale", "fr-FR", "--out", str(out / release))
                export(
                    cli, "--release", release, "--locale", "en-US", "--market", "US",
                    "--out", str(out / release), "--entries",
                )  # fmt: skip
            exports[kind] = files(out)
    assert exports["sqlite"] == exports["postgresql"]
    assert len(exports["sqlite"]) > 20
    latest = json.loads(exports["sqlite"]["3/fr-FR.json"])
    assert latest["release"]["publishedAt"] == "2026-04-02T17:00:00.000001Z"
    assert by_key(latest["snippets"])["probiotics"]["reviewedAt"] == "2026-04-02T17:00:00.000001Z"
    assert (
        by_key(latest["snippets"])["gut-skin-axis"]["reviewedAt"] == "2026-03-01T09:30:00.123456Z"
    )
    validate(latest)
