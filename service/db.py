"""Engines and session factories; SQLite pragmas so the same code runs on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import Pool

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


def create_engine_for(
    database_url: str,
    *,
    echo: bool = False,
    timeout: float | None = None,
    poolclass: type[Pool] | None = None,
    pool_size: int | None = None,
) -> AsyncEngine:
    """The asyncio engine. With `timeout` (the service's), no wait on PostgreSQL is unbounded:
    connecting, each statement, and the wait for a pooled connection each give up after it,
    so a database that is away turns into an error to answer, never a request that hangs."""
    url = async_url(database_url)
    _ensure_sqlite_directory(url)
    options: dict[str, Any] = {"echo": echo}
    if poolclass is not None:
        options["poolclass"] = poolclass
    elif pool_size is not None:
        options |= {"pool_size": pool_size, "max_overflow": 0}
    if url.get_backend_name() == "postgresql":
        if poolclass is None:
            # pre-ping finds the connections a database restart or failover cut; the first
            # disconnect seen also discards every older pooled connection at once
            options |= {"pool_size": 10, "max_overflow": 10, "pool_pre_ping": True}
            if pool_size is not None:
                options |= {"pool_size": pool_size, "max_overflow": 0}
            if timeout is not None:
                options["pool_timeout"] = timeout
        if timeout is not None:
            options["connect_args"] = _postgres_timeouts(timeout)
    engine = create_async_engine(url, **options)
    _configure(engine.sync_engine)
    return engine


def _postgres_timeouts(timeout: float) -> dict[str, Any]:
    milliseconds = int(timeout * 1000)
    return {
        # libpq counts whole seconds, at least 2
        "connect_timeout": max(2, math.ceil(timeout)),
        # the server ends a statement (or a wait for a lock) that runs longer
        "options": f"-c statement_timeout={milliseconds} -c lock_timeout={milliseconds}",
        # a peer that vanished without closing (a host down, a network partition): the kernel
        # gives up on unacknowledged data after the timeout, and probes idle connections
        "tcp_user_timeout": milliseconds,
        "keepalives": 1,
        "keepalives_idle": max(1, math.ceil(timeout)),
        "keepalives_interval": max(1, math.ceil(timeout / 3)),
        "keepalives_count": 3,
    }


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database cannot answer now (unreachable, restarting, too slow
    or too busy), as opposed to a fault in the statement: a request meeting one is worth
    retrying in a moment."""
    if isinstance(exc, PoolTimeout):
        return True  # every pooled connection busy for the whole timeout
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    original = exc.orig
    if isinstance(original, psycopg.OperationalError):
        # connection failures, a cancelled (timed-out) statement, an administrator's shutdown;
        # a missing table or a bad statement are ProgrammingError instead
        return True
    if isinstance(original, sqlite3.OperationalError):
        message = str(original)
        return "database is locked" in message or "unable to open database" in message
    return False


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
