"""`contentapi publish`: approved revisions only, one append-only release at a time."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from service.config import Settings
from service.content.operations import in_transaction
from service.content.repository import ContentRepository
from service.db import create_sync_engine
from tests.conftest import SEED
from tests.helpers import invoke, query, scalar, table_counts
from tests.test_seed_command import ENTRY_FILES


def live(settings: Settings, release: int) -> dict[tuple[str, str], int]:
    """(key, locale) -> revision number shown as of `release`."""

    async def read(session: AsyncSession) -> dict[tuple[int, str], int]:
        return await ContentRepository(session).live_revisions(release)

    shown = asyncio.run(in_transaction(settings, read))
    numbers = {
        revision_id: (key, locale, number)
        for revision_id, key, locale, number in query(
            settings.database_url,
            "SELECT revisions.id, key, locale, number FROM revisions "
            "JOIN entries ON entries.id = entry_id",
        )
    }
    return {numbers[rid][:2]: numbers[rid][2] for rid in shown.values()}


def test_nothing_is_published_before_approval(cli: CliRunner, settings: Settings) -> None:
    invoke(cli, "seed", str(SEED))
    result = invoke(cli, "publish", "--note", "first")
    assert result.exit_code == 0
    assert "Nothing to publish: no revision has been approved yet." in result.output
    assert scalar(settings.database_url, "SELECT count(*) FROM releases") == 0


def test_publish_makes_release_one_with_every_approved_revision(
    cli: CliRunner, settings: Settings
) -> None:
    invoke(cli, "seed", str(SEED), "--approve")
    result = invoke(cli, "publish", "--note", "Launch content", "--by", "carol")
    assert result.exit_code == 0, result.output
    assert "Published release 1: Launch content" in result.output
    assert query(settings.database_url, "SELECT id, note, published_by FROM releases") == [
        (1, "Launch content", "carol")
    ]
    assert len(live(settings, 1)) == ENTRY_FILES
    assert set(live(settings, 1).values()) == {1}

    again = invoke(cli, "publish", "--note", "again")
    assert "Nothing to publish: release 1 already shows every approved revision." in again.output
    assert scalar(settings.database_url, "SELECT count(*) FROM releases") == 1


def test_a_new_release_changes_only_what_changed_and_old_releases_stay_as_they_were(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    invoke(cli, "seed", str(seed_copy), "--approve")
    invoke(cli, "publish", "--note", "one")
    path = seed_copy / "snippets/probiotics.en-US.md"
    path.write_text(path.read_text() + "\nA clarification.\n")

    invoke(cli, "seed", str(seed_copy))  # a new revision, not yet approved
    assert "Nothing to publish" in invoke(cli, "publish", "--note", "two").output

    path.write_text(path.read_text() + "\nAnother clarification.\n")
    invoke(cli, "seed", str(seed_copy), "--approve")
    assert "Published release 2" in invoke(cli, "publish", "--note", "two").output
    assert (
        scalar(settings.database_url, "SELECT count(*) FROM release_items WHERE release_id = 2")
        == 1
    )
    assert live(settings, 1)[("probiotics", "en-US")] == 1
    assert live(settings, 2)[("probiotics", "en-US")] == 3  # revision 2 was never approved
    assert {k: v for k, v in live(settings, 2).items() if k != ("probiotics", "en-US")} == {
        k: v for k, v in live(settings, 1).items() if k != ("probiotics", "en-US")
    }


def test_a_snippet_cannot_go_live_without_its_required_disclaimers(
    cli: CliRunner, settings: Settings
) -> None:
    invoke(cli, "seed", str(SEED))
    url = settings.database_url
    # approve the snippets only, as a reviewer might by mistake
    snippet_revisions = [
        row[0]
        for row in query(
            url,
            "SELECT revisions.id FROM revisions JOIN entries ON entries.id = entry_id "
            "WHERE kind = 'snippet'",
        )
    ]
    engine = create_sync_engine(url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO review_decisions (revision_id, decision, reviewer, reason, created_at) "
                "VALUES (:rid, 'approved', 'dana', '', CURRENT_TIMESTAMP)"
            ),
            [{"rid": rid} for rid in snippet_revisions],
        )
    engine.dispose()
    before = table_counts(url)
    result = invoke(cli, "publish", "--note", "snippets only")
    assert result.exit_code == 1
    assert "these disclaimers would not be live; approve them first:" in result.output
    assert "probiotics requires fda-structure-function" in result.output
    assert table_counts(url) == before


def test_publish_needs_a_note(cli: CliRunner, settings: Settings) -> None:
    result = invoke(cli, "publish", "--note", "  ")
    assert result.exit_code == 2
    assert "--note must say why this release exists" in result.output
    assert scalar(settings.database_url, "SELECT count(*) FROM releases") == 0


def test_approving_in_development_covers_revisions_written_by_an_earlier_run(
    cli: CliRunner, settings: Settings
) -> None:
    invoke(cli, "seed", str(SEED))
    result = invoke(cli, "seed", str(SEED), "--approve")
    assert "Nothing to write" in result.output
    assert f"Approved {ENTRY_FILES} revisions as the development reviewer." in result.output
    assert "Published release 1" in invoke(cli, "publish", "--note", "one").output
    again = invoke(cli, "seed", str(SEED), "--approve")
    assert "Approved" not in again.output  # nothing left undecided
