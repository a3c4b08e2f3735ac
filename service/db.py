"""Engines and session factories; SQLite pragmas so the same code runs on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# A writer waits this long for another writer's transaction before giving up.
SQLITE_BUSY_TIMEOUT_MS = 60_000


def sync_url(database_url: str) -> URL:
    """The URL with the synchronous driver (Alembic, scripts)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+pysqlite")
    return url.set(drivername="postgresql+psycopg")


def async_url(database_url: str) -> URL:
    """The URL with the asyncio driver (the service and the CLI commands)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return url.set(drivername="sqlite+aiosqlite")
    return url.set(drivername="postgresql+psycopg")


def _ensure_sqlite_directory(url: URL) -> None:
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # SQLite leaves foreign keys off unless asked, per connection.
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers go on while one writer seeds or publishes.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _configure(engine: Engine) -> None:
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _on_sqlite_connect)


def _sqlite_driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    connection.exec_driver_sql("BEGIN")


def create_sync_engine(database_url: str, *, echo: bool = False) -> Engine:
    url = sync_url(database_url)
    _ensure_sqlite_directory(url)
    engine = create_engine(url, echo=echo)
    _configure(engine)
    if engine.dialect.name == "sqlite":
        # pysqlite commits before DDL on its own; SQLAlchemy's recipe makes migrations
        # all-or-nothing: the driver never begins, SQLAlchemy emits BEGIN itself
        event.listen(engine, "connect", _sqlite_driver_autocommit)
        event.listen(engine, "begin", _sqlite_begin)
    return engine


def create_engine_for(database_url: str, *, echo: bool = False) -> AsyncEngine:
    url = async_url(database_url)
    _ensure_sqlite_directory(url)
    options: dict[str, Any] = {"echo": echo}
    if url.get_backend_name() == "postgresql":
        options |= {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}
    engine = create_async_engine(url, **options)
    _configure(engine.sync_engine)
    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# --- schema migrations ------------------------------------------------------------------------


def alembic_config(database_url: str) -> Any:
    from alembic.config import Config

    from service.config import PROJECT_ROOT

    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    """Bring the database to `revision` with Alembic, the only way the schema changes."""
    from alembic import command

    command.upgrade(alembic_config(database_url), revision)


def schema_status(database_url: str) -> tuple[str | None, str]:
    """(the database's Alembic revision or None when unmigrated, the code's head revision)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()
    return current, head or ""
