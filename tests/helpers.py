"""Small helpers the tests share: running the CLI and reading the database as a user would."""

from __future__ import annotations

from typing import Any

from click.testing import Result
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
