"""Alembic environment: runs migrations synchronously on SQLite or PostgreSQL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, Engine

from service.config import Settings
from service.db import create_sync_engine
from service.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    return str(url) if url else Settings().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place; batch mode copies the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _migrate(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # batch mode rebuilds a table by copy, drop and rename; with foreign keys on, the drop
        # fails while other tables point at it. They are checked again once the rebuild is done.
        # (outside any transaction, where SQLite ignores this pragma)
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()
    if sqlite:
        broken = connection.connection.driver_connection.execute(  # type: ignore[union-attr]
            "PRAGMA foreign_key_check"
        ).fetchall()
        if broken:
            raise RuntimeError(f"the migration left broken foreign keys: {broken[:5]}")
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def run_migrations_online() -> None:
    # a caller (pytest-alembic, a script) may hand over its own connection or engine
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        _migrate(given)
        return
    engine = given if isinstance(given, Engine) else create_sync_engine(_database_url())
    try:
        with engine.connect() as connection:
            _migrate(connection)
    finally:
        if given is None:
            engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
