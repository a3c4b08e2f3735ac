"""`contentapi serve`: a newcomer sees published content at once; production never skips review."""

from __future__ import annotations

import asyncio

import pytest

from service.config import Environment, Settings
from service.content.errors import Forbidden
from service.content.operations import bootstrap_development
from service.content.service import DEVELOPMENT_REVIEWER
from tests.helpers import free_port, query, scalar, start_serve, stop, wait_until_up


def test_development_serve_on_an_empty_database_migrates_seeds_and_publishes(
    empty_database_url: str,
) -> None:
    port = free_port()
    process = start_serve(empty_database_url, "development", port)
    try:
        wait_until_up(process, port)
    finally:
        output = stop(process)
    assert "Empty database: seeded" in output
    assert "published release 1" in output
    assert query(empty_database_url, "SELECT id, published_by FROM releases") == [
        (1, DEVELOPMENT_REVIEWER)
    ]
    reviewers = query(empty_database_url, "SELECT DISTINCT reviewer FROM review_decisions")
    assert reviewers == [(DEVELOPMENT_REVIEWER,)]
    assert scalar(empty_database_url, "SELECT count(*) FROM release_items") > 20


def test_development_bootstrap_runs_once(settings: Settings) -> None:
    first = asyncio.run(bootstrap_development(settings))
    second = asyncio.run(bootstrap_development(settings))
    assert first is not None
    assert first.id == 1
    assert second is None
    assert scalar(settings.database_url, "SELECT count(*) FROM releases") == 1


def test_production_serve_refuses_to_publish_unreviewed_seed_content(database_url: str) -> None:
    process = start_serve(database_url, "production", free_port())
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1
    assert "no release is published, and production does not publish the seed content" in output
    assert scalar(database_url, "SELECT count(*) FROM revisions") == 0


def test_production_serve_refuses_an_unmigrated_database(empty_database_url: str) -> None:
    process = start_serve(empty_database_url, "production", free_port())
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 1
    assert "run `contentapi migrate` first" in output


def test_development_bootstrap_is_refused_in_production(settings: Settings) -> None:
    production = settings.model_copy(update={"env": Environment.PRODUCTION})
    with pytest.raises(Forbidden, match="refused in production"):
        asyncio.run(bootstrap_development(production))
