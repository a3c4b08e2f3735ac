"""The checked-in schema matches the code, and the example operations run against the seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.graphql.schema import SCHEMA_FILE, schema_sdl
from tests.helpers import data, invoke

OPERATIONS = sorted((SCHEMA_FILE.parent / "operations").glob("*.graphql"))


def test_checked_in_schema_is_generated_from_the_code() -> None:
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_sdl(), (
        "schema/schema.graphql is stale: run `contentapi schema --write` and commit it"
    )


def test_the_schema_command_prints_the_schema() -> None:
    result = invoke(CliRunner(), "schema")
    assert result.exit_code == 0
    assert result.output == schema_sdl()


def test_the_partner_operations_are_there() -> None:
    assert [path.stem for path in OPERATIONS] == [
        "ChangesSince", "DisclaimersForMarket", "ProductPage", "SnippetByKey", "TakeawaysForTopic",
    ]  # fmt: skip


def run(client: TestClient, operation: Path) -> Any:
    variables = json.loads(operation.with_suffix(".variables.json").read_text())
    return data(client, operation.read_text(), variables)


def test_product_page_operation(client: TestClient) -> None:
    page = run(client, SCHEMA_FILE.parent / "operations/ProductPage.graphql")["productPage"]
    assert page["release"]["number"] == 1
    assert page["snippets"]
    for snippet in page["snippets"]:
        assert snippet["body"]["html"].startswith("<p>")
        assert snippet["citations"]
        assert all(c["url"].startswith("https://") for c in snippet["citations"])
    assert [t["position"] for t in page["takeaways"]] == sorted(
        t["position"] for t in page["takeaways"]
    )
    assert {d["kind"] for d in page["disclaimers"]} == {
        "NOT_MEDICAL_ADVICE",
        "FDA_STRUCTURE_FUNCTION",
    }


def test_snippet_by_key_operation(client: TestClient) -> None:
    snippet = run(client, SCHEMA_FILE.parent / "operations/SnippetByKey.graphql")["snippet"]
    assert (snippet["key"], snippet["locale"], snippet["version"]) == ("probiotics", "fr-FR", 1)
    assert {"markdown", "html", "text"} == set(snippet["body"])
    assert [d["kind"] for d in snippet["disclaimers"]] == [
        "NOT_MEDICAL_ADVICE",
        "FDA_STRUCTURE_FUNCTION",
    ]
    assert snippet["topics"][0]["name"] == "Probiotiques"


def test_takeaways_for_topic_operation(client: TestClient) -> None:
    takeaways = run(client, SCHEMA_FILE.parent / "operations/TakeawaysForTopic.graphql")[
        "takeaways"
    ]
    assert [t["position"] for t in takeaways] == [1, 2, 3, 4]
    assert all(t["text"] and t["citations"] for t in takeaways)


def test_disclaimers_for_market_operation(client: TestClient) -> None:
    disclaimers = run(client, SCHEMA_FILE.parent / "operations/DisclaimersForMarket.graphql")[
        "disclaimers"
    ]
    assert {d["kind"] for d in disclaimers} == {"NOT_MEDICAL_ADVICE", "FDA_STRUCTURE_FUNCTION"}
    assert all("US" in d["markets"] for d in disclaimers)


def test_changes_since_operation(client: TestClient) -> None:
    changes = run(client, SCHEMA_FILE.parent / "operations/ChangesSince.graphql")["changes"]
    assert changes["nextSince"] == 1
    assert changes["totalCount"] == len(changes["edges"]) > 0
    assert {edge["node"]["type"] for edge in changes["edges"]} == {"CREATED"}
    served = {edge["node"]["key"]: edge["node"]["item"]["locale"] for edge in changes["edges"]}
    assert served["probiotics"] == "fr-FR"


@pytest.mark.parametrize("operation", OPERATIONS, ids=[path.stem for path in OPERATIONS])
def test_operations_also_run_over_get(client: TestClient, operation: Path) -> None:
    variables = operation.with_suffix(".variables.json").read_text()
    response = client.get(
        "/graphql", params={"query": operation.read_text(), "variables": variables}
    )
    assert response.status_code == 200
    assert "errors" not in response.json()
