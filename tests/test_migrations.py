"""Migrations and ORM models agree; upgrade, downgrade, upgrade again works; on both databases."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from pytest_alembic.tests import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import Engine, inspect, text

from service.db import alembic_config as service_alembic_config
from service.db import create_sync_engine, schema_status, upgrade_database
from tests.helpers import scalar

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_config() -> Any:
    return service_alembic_config("sqlite://")


@pytest.fixture
def alembic_engine(empty_database_url: str) -> Iterator[Engine]:
    engine = create_sync_engine(empty_database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _tables(database_url: str) -> set[str]:
    engine = create_sync_engine(database_url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_again(empty_database_url: str) -> None:
    upgrade_database(empty_database_url)
    created = _tables(empty_database_url)
    assert {"entries", "revisions", "releases", "release_items", "review_decisions"} <= created
    assert schema_status(empty_database_url)[0] == schema_status(empty_database_url)[1]

    command.downgrade(service_alembic_config(empty_database_url), "base")
    assert _tables(empty_database_url) == set()
    assert schema_status(empty_database_url)[0] is None

    upgrade_database(empty_database_url)
    assert _tables(empty_database_url) == created
    # the writers' lock row is part of the schema, not of the data
    assert scalar(empty_database_url, "SELECT count(*) FROM content_locks") == 1


def test_releases_published_before_catalog_snapshots_get_one(empty_database_url: str) -> None:
    config = service_alembic_config(empty_database_url)
    command.upgrade(config, "0001")
    engine = create_sync_engine(empty_database_url)
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO topics (key, names, descriptions) VALUES ('microbiome', :n, :d)"),
            {"n": json.dumps({"en-US": "Microbiome"}), "d": json.dumps({})},
        )
        connection.execute(
            text(
                "INSERT INTO releases (id, note, published_by, created_at) "
                "VALUES (1, 'old', 'someone', CURRENT_TIMESTAMP)"
            )
        )
    engine.dispose()

    upgrade_database(empty_database_url)
    snapshot = scalar(empty_database_url, "SELECT catalog FROM releases WHERE id = 1")
    catalog = json.loads(snapshot) if isinstance(snapshot, str) else snapshot
    assert catalog["topics"] == [
        {"key": "microbiome", "names": {"en-US": "Microbiome"}, "descriptions": {}}
    ]
    assert catalog["citations"] == []
