"""Fixtures: every database test runs on SQLite and on PostgreSQL, each in a fresh database.

Each test gets its own database copied from a migrated template (a file copy on SQLite,
CREATE DATABASE ... TEMPLATE on PostgreSQL). Tests drive the CLI and concurrent writers,
which commit, so isolation by rolled-back transaction would not hold them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.config import PROJECT_ROOT, Environment, Settings
from service.content.operations import bootstrap_development
from service.db import upgrade_database

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
SEED = PROJECT_ROOT / "seed"
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def _postgres_answers() -> bool:
    try:
        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as connection:
        connection.execute(sql)  # type: ignore[arg-type]


def pg_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(scope="session")
def postgres_server() -> bool:
    if _postgres_answers():
        return True
    if os.environ.get("CI"):
        pytest.fail("PostgreSQL does not answer at 127.0.0.1:5432, and CI must test on it")
    pytest.skip("PostgreSQL does not answer at 127.0.0.1:5432")


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_server: bool) -> Iterator[str]:
    with postgres_database() as url:
        upgrade_database(url)
        yield url.rsplit("/", 1)[1]


@contextmanager
def fresh_database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        path = tmp_path / "content.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with postgres_database(template=request.getfixturevalue("postgres_template")) as url:
        yield url


@contextmanager
def postgres_database(template: str | None = None) -> Iterator[str]:
    """A new PostgreSQL database (a copy of `template` when given), dropped afterwards."""
    name = f"contentapi_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    _admin(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield pg_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=DATABASES)
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of each kind with no schema at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    request.getfixturevalue("postgres_server")
    with postgres_database() as url:
        yield url


@pytest.fixture(params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind, dropped after the test."""
    with fresh_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=DATABASES)
def published(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A database of each kind with the seed content published as release 1, shared by the
    tests of a module, which only read it."""
    with fresh_database(request, request.param, tmp_path_factory.mktemp("published")) as url:
        settings = Settings(database_url=url, env=Environment.DEVELOPMENT)
        asyncio.run(bootstrap_development(settings))
        yield settings


@pytest.fixture(scope="module")
def client(published: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(published)) as test_client:
        yield test_client


@pytest.fixture
def settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings for the test database; the CLI, reading the environment, sees the same."""
    monkeypatch.setenv("CONTENT_API_DATABASE_URL", database_url)
    monkeypatch.setenv("CONTENT_API_ENV", "development")
    monkeypatch.delenv("CONTENT_API_SEED_PATH", raising=False)
    return Settings(database_url=database_url)


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    """A writable copy of the project's seed folder, for tests that edit files."""
    target = tmp_path / "seed"
    shutil.copytree(SEED, target)
    return target


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()
