"""Small helpers the tests share: running the CLI and reading the database as a user would."""

from __future__ import annotations

import json
from typing import Any

from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from service.cli import app
from service.db import create_sync_engine


def invoke(cli: CliRunner, *args: str, env: dict[str, str] | None = None) -> Result:
    return cli.invoke(app, list(args), env=env, catch_exceptions=False)


def query(database_url: str, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def scalar(database_url: str, sql: str, **params: Any) -> Any:
    return query(database_url, sql, **params)[0][0]


def table_counts(database_url: str) -> dict[str, int]:
    tables = [
        "entries", "revisions", "revision_topics", "revision_citations", "review_decisions",
        "releases", "release_items", "topics", "citations", "markets",
    ]  # fmt: skip
    return {table: scalar(database_url, f"SELECT count(*) FROM {table}") for table in tables}


def gql(
    client: TestClient, query: str, variables: dict[str, Any] | None = None, *, get: bool = False
) -> dict[str, Any]:
    """Send a GraphQL operation as a partner would; the decoded JSON body."""
    if get:
        params = {"query": query} | ({"variables": json.dumps(variables)} if variables else {})
        response = client.get("/graphql", params=params)
    else:
        response = client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.headers["content-type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    return body


def data(client: TestClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    """The data of an operation that must succeed."""
    body = gql(client, query, variables)
    assert "errors" not in body, body["errors"]
    return body["data"]


def error(
    client: TestClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one error of an operation that must fail: message and extensions.code."""
    body = gql(client, query, variables)
    assert len(body.get("errors", [])) == 1, body
    found: dict[str, Any] = body["errors"][0]
    return {"message": found["message"], "code": found["extensions"]["code"]}
