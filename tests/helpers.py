"""Small helpers the tests share: running the CLI and the service, and reading the database as a
user would."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any, NoReturn

import httpx2 as httpx
import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from service.cli import app
from service.config import PROJECT_ROOT
from service.db import create_sync_engine

JS_DIR = PROJECT_ROOT / "tests" / "js"
# Debian's chromium, driven by Playwright (which never downloads a browser of its own here)
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE_SCRIPT = JS_DIR / "node_modules" / "axe-core" / "axe.min.js"


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


# --- the real service, as `contentapi serve` runs it -----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_serve(
    database_url: str,
    env_name: str,
    port: int,
    *args: str,
    env: dict[str, str] | None = None,
    log: IO[str] | None = None,
) -> subprocess.Popen[str]:
    """`contentapi serve` as a user starts it. A busy server's log goes to `log`, an open file: a pipe
    nobody reads until the end would fill and stall it."""
    environment = (
        os.environ
        | {"CONTENT_API_DATABASE_URL": database_url, "CONTENT_API_ENV": env_name}
        | (env or {})
    )
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *args],
        env=environment,
        stdout=subprocess.PIPE if log is None else log,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_up(process: subprocess.Popen[str], port: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.communicate()[0])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the service did not start in time")


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGINT)
    return process.communicate(timeout=30)[0]


# --- Node.js clients (tests/js) and a real browser, run against the real service ---------------


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI must run the Node.js client and browser tests")
    pytest.skip(reason)


def require_node(package: str) -> str:
    """The `node` executable, once `package` is installed in tests/js; skipped without them
    locally, a failure under CI=true."""
    found = shutil.which("node")
    if found is None:
        _unavailable("node is not installed")
    if not (JS_DIR / "node_modules" / package / "package.json").is_file():
        _unavailable(f"{package} is not installed: run `npm ci --prefix tests/js`")
    return found


def require_chromium() -> Path:
    """Debian's chromium and the axe-core script the browser tests inject; skipped without
    them locally, a failure under CI=true."""
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    if not AXE_SCRIPT.is_file():
        _unavailable("axe-core is not installed: run `npm ci --prefix tests/js`")
    return CHROMIUM
