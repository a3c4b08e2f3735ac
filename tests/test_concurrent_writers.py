"""Twenty writers at once, through the same services the CLI and GraphQL call: editors seeding
different edits of one snippet, reviewers approving, publishers publishing. Nothing may be lost
or doubled: revision numbers gapless per entry and locale, releases numbered 1, 2, 3 ... with
every one of them consistent, and exactly one audit row per action."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from service.access.service import acting_principal
from service.config import Settings
from service.content.errors import Conflict
from service.content.operations import in_transaction, publish_release, seed_from_files
from service.content.service import NothingToPublish
from service.vetting.service import RevisionRef, VettingService
from tests.helpers import invoke, query
from tests.vetting_helpers import Team, approve_all, make_team, small_seed

SEEDERS, REVIEWERS, PUBLISHERS = 8, 7, 5  # twenty writers
NEW_SNIPPETS = [f"conc-{number}" for number in range(1, REVIEWERS)]
NEW_DISCLAIMER = "conc-notice"  # required by the last new snippet, approved concurrently


def _new_entries(seed: Path) -> None:
    """Six new snippets and a new disclaimer the last of them requires, all awaiting review."""
    snippet = (seed / "snippets" / "gut-skin-axis.en-US.md").read_text()
    for key in NEW_SNIPPETS:
        text = snippet.replace("key: gut-skin-axis", f"key: {key}").replace(
            "title: The gut–skin axis", f"title: The gut–skin axis ({key})"
        )
        if key == NEW_SNIPPETS[-1]:
            text = text.replace("disclaimers: [", f"disclaimers: [{NEW_DISCLAIMER}, ")
        (seed / "snippets" / f"{key}.en-US.md").write_text(text)
    notice = (seed / "disclaimers" / "not-medical-advice.en-US.md").read_text()
    (seed / "disclaimers" / f"{NEW_DISCLAIMER}.en-US.md").write_text(
        notice.replace("key: not-medical-advice", f"key: {NEW_DISCLAIMER}").replace(
            "title: Not medical advice", "title: A notice for the new snippets"
        )
    )


def _edit(base: Path, target: Path, number: int) -> Path:
    shutil.copytree(base, target)
    path = target / "snippets" / "gut-skin-axis.en-US.md"
    path.write_text(path.read_text() + f"\nConcurrent edit number {number}.\n")
    return target


async def _approve(settings: Settings, key: str, entry: str) -> None:
    async def work(session: AsyncSession) -> None:
        reviewer = await acting_principal(session, key, production=False)
        await VettingService(session).approve(
            RevisionRef(entry, "en-US", None), note="checked", by=reviewer
        )

    await in_transaction(settings, work)


def test_twenty_concurrent_writers_lose_nothing(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    team: Team = make_team(cli)
    base = small_seed(tmp_path / "base")
    assert invoke(cli, "seed", str(base), "--key", team.editor).exit_code == 0
    approve_all(cli, base, team)
    assert invoke(cli, "publish", "--note", "first", "--key", team.publisher).exit_code == 0
    extended = tmp_path / "extended"
    shutil.copytree(base, extended)
    _new_entries(extended)
    assert invoke(cli, "seed", str(extended), "--key", team.editor).exit_code == 0
    assert invoke(cli, "review", "submit", "--all", "--key", team.editor).exit_code == 0
    folders = [_edit(base, tmp_path / f"edit-{n}", n) for n in range(SEEDERS)]

    start = threading.Barrier(SEEDERS + REVIEWERS + PUBLISHERS)
    outcomes: dict[str, list[Any]] = {"seed": [], "approve": [], "publish": []}

    def writer(kind: str, action: Any) -> None:
        start.wait()
        try:
            outcomes[kind].append(asyncio.run(action()))
        except (NothingToPublish, Conflict) as exc:
            # a publisher that found nothing new, or a snippet approved before the
            # disclaimer it needs: refused whole, nothing written
            outcomes[kind].append(exc)

    def publish_a_few(number: int) -> Any:
        async def attempts() -> list[Any]:
            published: list[Any] = []
            for attempt in range(3):
                try:
                    release = await publish_release(
                        settings, note=f"publisher {number}.{attempt}", key=team.publisher
                    )
                    published.append(release.id)
                except (NothingToPublish, Conflict) as exc:
                    published.append(exc.code)
                await asyncio.sleep(0.05)
            return published

        return attempts

    threads = [
        threading.Thread(
            target=writer,
            args=("seed", lambda folder=folder: seed_from_files(settings, folder, key=team.editor)),
        )
        for folder in folders
    ]
    threads += [
        threading.Thread(
            target=writer,
            args=("approve", lambda entry=entry: _approve(settings, team.reviewer, entry)),
        )
        for entry in [*NEW_SNIPPETS, NEW_DISCLAIMER]
    ]
    threads += [
        threading.Thread(target=writer, args=("publish", publish_a_few(number)))
        for number in range(PUBLISHERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=240)
    assert not any(thread.is_alive() for thread in threads)

    # every writer finished: each seeder wrote its one revision, each approval held
    assert len(outcomes["seed"]) == SEEDERS
    assert [report.revisions_created for report in outcomes["seed"]] == [1] * SEEDERS
    assert outcomes["approve"] == [None] * REVIEWERS
    assert len(outcomes["publish"]) == PUBLISHERS
    published = [r for attempts in outcomes["publish"] for r in attempts if isinstance(r, int)]
    assert published  # at least one publisher published during the run
    assert invoke(cli, "publish", "--note", "last", "--key", team.publisher).exit_code == 0
    url = settings.database_url

    # revisions: gapless numbers per entry and locale, each edit exactly once
    numbers: dict[tuple[str, str], list[int]] = {}
    for key, locale, number in query(
        url,
        "SELECT e.key, r.locale, r.number FROM revisions r JOIN entries e ON e.id = r.entry_id "
        "ORDER BY e.key, r.locale, r.number",
    ):
        numbers.setdefault((key, locale), []).append(number)
    assert all(found == list(range(1, len(found) + 1)) for found in numbers.values()), numbers
    assert numbers[("gut-skin-axis", "en-US")] == list(range(1, SEEDERS + 2))
    bodies = [
        body
        for (body,) in query(
            url,
            "SELECT r.body_markdown FROM revisions r JOIN entries e ON e.id = r.entry_id "
            "WHERE e.key = 'gut-skin-axis' AND r.locale = 'en-US'",
        )
    ]
    for number in range(SEEDERS):
        assert sum(f"Concurrent edit number {number}." in body for body in bodies) == 1

    # releases: 1, 2, 3 ... with no gap, in time order; each one's published ids as told
    releases = query(url, "SELECT id, created_at FROM releases ORDER BY id")
    ids = [release_id for release_id, _ in releases]
    assert ids == list(range(1, len(ids) + 1))
    assert [created for _, created in releases] == sorted(created for _, created in releases)
    assert sorted(published) == sorted(set(published))
    assert set(published) <= set(ids)

    # every release consistent: each live snippet's required disclaimers live beside it
    for release_id in ids:
        live = _live(url, release_id)
        live_keys = {key for key, locale in live if locale == "en-US"}
        required = query(
            url,
            "SELECT e.key, d.disclaimer_key FROM revision_disclaimers d "
            "JOIN revisions r ON r.id = d.revision_id JOIN entries e ON e.id = r.entry_id "
            f"WHERE r.id IN ({','.join(str(rid) for rid in live.values()) or 'NULL'})",
        )
        missing = {(snippet, needed) for snippet, needed in required if needed not in live_keys}
        assert not missing, (release_id, missing)
    final = _live(url, ids[-1])
    assert {("conc-6", "en-US"), (NEW_DISCLAIMER, "en-US")} <= set(final)

    # exactly one audit row per action
    created = Counter(
        (
            key,
            locale,
            json.loads(after)["revision"] if isinstance(after, str) else after["revision"],
        )
        for key, locale, after in query(
            url,
            "SELECT entry_key, locale, after FROM audit_events WHERE action = 'revision.create'",
        )
    )
    assert created == Counter(
        (key, locale, number) for (key, locale), found in numbers.items() for number in found
    )
    for decision, action in [("submitted", "revision.submit"), ("approved", "revision.approve")]:
        decided = query(
            url,
            "SELECT revision_id FROM review_decisions WHERE decision = :decision "
            "ORDER BY revision_id",
            decision=decision,
        )
        audited = query(
            url,
            "SELECT revision_id FROM audit_events WHERE action = :action ORDER BY revision_id",
            action=action,
        )
        assert audited == decided
    for release_id in ids:
        whole = query(
            url,
            "SELECT count(*) FROM audit_events WHERE action = 'release.publish' "
            "AND release_id = :release AND entry_key IS NULL",
            release=release_id,
        )
        items = query(
            url,
            "SELECT (SELECT count(*) FROM audit_events WHERE action = 'release.publish' "
            "AND release_id = :release AND entry_key IS NOT NULL), "
            "(SELECT count(*) FROM release_items WHERE release_id = :release)",
            release=release_id,
        )
        assert whole == [(1,)]
        assert items[0][0] == items[0][1]


def _live(url: str, release_id: int) -> dict[tuple[str, str], int]:
    """What release `release_id` shows: per entry and locale, the newest item up to it."""
    rows = query(
        url,
        "SELECT e.key, i.locale, i.revision_id FROM release_items i "
        "JOIN entries e ON e.id = i.entry_id "
        "JOIN (SELECT entry_id, locale, max(release_id) AS newest FROM release_items "
        "      WHERE release_id <= :release GROUP BY entry_id, locale) n "
        "  ON n.entry_id = i.entry_id AND n.locale = i.locale AND n.newest = i.release_id",
        release=release_id,
    )
    return {(key, locale): rid for key, locale, rid in rows if rid is not None}
