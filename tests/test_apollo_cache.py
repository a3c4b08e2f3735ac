"""Apollo Client 4 (pinned in tests/js) against the real service: its default normalised cache
keeps each pinned release's answer apart, because an id names one immutable version."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.config import Settings
from service.content.operations import bootstrap_development
from tests.helpers import JS_DIR, free_port, invoke, require_node, start_serve, stop, wait_until_up

APOLLO_SCRIPT = JS_DIR / "apollo-cache.mjs"
OLD_TITLE = "The Gut Microbiome as a Major Regulator of the Gut-Skin Axis"
NEW_TITLE = "The gut microbiome as a major regulator of the gut–skin axis"


@pytest.fixture(scope="module")
def node() -> str:
    return require_node("@apollo/client")


def test_apollo_cache_still_reads_release_1_after_fetching_release_2(
    node: str, cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    asyncio.run(bootstrap_development(settings.model_copy(update={"seed_path": seed_copy})))
    # release 2 corrects the title of a citation that gut-skin-axis cites, while the snippet's
    # own revision stays the same; a reworded snippet elsewhere gives the release something to
    # publish
    citations = seed_copy / "catalog/citations.yaml"
    assert OLD_TITLE in citations.read_text()
    citations.write_text(citations.read_text().replace(OLD_TITLE, NEW_TITLE))
    probiotics = seed_copy / "snippets/probiotics.en-US.md"
    probiotics.write_text(probiotics.read_text() + "\nA sentence added in release 2.\n")
    assert invoke(cli, "seed", str(seed_copy), "--approve").exit_code == 0
    assert "Published release 2" in invoke(cli, "publish", "--note", "two").output

    port = free_port()
    process = start_serve(settings.database_url, "development", port)
    try:
        wait_until_up(process, port)
        url = f"http://127.0.0.1:{port}/graphql"
        run = subprocess.run(
            [node, str(APOLLO_SCRIPT), url, "gut-skin-axis", "1", "2"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        stop(process)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout)

    def titles(answer: dict[str, dict[str, list[dict[str, str]]]]) -> list[str]:
        return [citation["title"] for citation in answer["snippet"]["citations"]]

    assert OLD_TITLE in titles(result["fetched"]["1"])
    assert NEW_TITLE in titles(result["fetched"]["2"])
    # read back from the cache after release 2 was fetched: release 1 exactly as it was served
    assert result["cached"]["1"] == result["fetched"]["1"]
    assert OLD_TITLE in titles(result["cached"]["1"])
    assert result["cached"]["2"] == result["fetched"]["2"]
