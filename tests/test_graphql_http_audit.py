"""The GraphQL-over-HTTP reference audits (graphql-http's serverAudits, pinned in tests/js)
against the real service: every MUST and every SHOULD of the specification holds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import JS_DIR, free_port, require_node, start_serve, stop, wait_until_up

AUDIT_SCRIPT = JS_DIR / "audit.js"


@pytest.fixture(scope="module")
def node() -> str:
    return require_node("graphql-http")


def test_service_passes_every_graphql_over_http_audit(node: str, tmp_path: Path) -> None:
    port = free_port()
    # development on an empty database: serve migrates, seeds and publishes release 1 itself
    process = start_serve(f"sqlite:///{tmp_path / 'content.db'}", "development", port)
    try:
        wait_until_up(process, port)
        audit = subprocess.run(
            [node, str(AUDIT_SCRIPT), f"http://127.0.0.1:{port}/graphql"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop(process)
    report = audit.stdout + audit.stderr
    summary = audit.stdout.strip().splitlines()[-1] if audit.stdout.strip() else ""
    assert summary.endswith(" 0 warnings, 0 errors"), report
    assert audit.returncode == 0, report
    assert int(summary.split()[0]) > 0, report  # the audits ran, not an empty list
