"""`contentapi seed`: idempotent, all-or-nothing, safe to run twice at once, on both databases."""

from __future__ import annotations

import os
import pty
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from benchmarks.seedgen import generate, snippet_text
from service.config import Settings
from tests.conftest import SEED
from tests.helpers import invoke, query, scalar, table_counts

ENTRY_FILES = (
    len(list(SEED.glob("snippets/*.md")))
    + len(list(SEED.glob("disclaimers/*.md")))
    + len(list(SEED.glob("takeaways/*.yaml")))
)


def summary_row(output: str, kind: str) -> list[str]:
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.replace("│", "|").split("|") if cell.strip()]
        if cells and cells[0] == kind:
            return cells[1:]
    raise AssertionError(f"no summary row for {kind} in:\n{output}")


def test_first_seed_writes_one_revision_per_file_and_summarises(
    cli: CliRunner, settings: Settings
) -> None:
    result = invoke(cli, "seed", str(SEED))
    assert result.exit_code == 0, result.output
    snippets = len(list(SEED.glob("snippets/*.md")))
    assert summary_row(result.output, "snippet") == [str(snippets), "0", "0"]
    assert f"Wrote {ENTRY_FILES} new revisions." in result.output

    url = settings.database_url
    assert scalar(url, "SELECT count(*) FROM revisions") == ENTRY_FILES
    assert scalar(url, "SELECT max(number) FROM revisions") == 1
    assert scalar(url, "SELECT count(*) FROM releases") == 0  # seeding never publishes
    assert scalar(url, "SELECT count(*) FROM review_decisions") == 0
    html, text = query(
        url,
        "SELECT body_html, body_text FROM revisions JOIN entries ON entries.id = entry_id "
        "WHERE key = 'microbiome-basics' AND locale = 'en-US'",
    )[0]
    assert "<strong>" in html
    assert "<ul>" in html
    assert "<" not in text


def test_second_seed_run_writes_nothing_and_says_so(cli: CliRunner, settings: Settings) -> None:
    invoke(cli, "seed", str(SEED))
    before = table_counts(settings.database_url)
    result = invoke(cli, "seed", str(SEED))
    assert result.exit_code == 0
    assert "Nothing to write: the database already matches the seed files." in result.output
    assert summary_row(result.output, "takeaway") == [
        "0",
        str(len(list(SEED.glob("takeaways/*")))),
        "0",
    ]
    assert table_counts(settings.database_url) == before


def test_changing_one_file_writes_exactly_one_revision_numbered_one_higher(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    invoke(cli, "seed", str(seed_copy))
    path = seed_copy / "snippets/probiotics.en-US.md"
    path.write_text(path.read_text().replace("change_note: First vetted version.", "change_note: Clarified.")
                    + "\nA sentence added by a writer.\n")  # fmt: skip
    result = invoke(cli, "seed", str(seed_copy), "--author", "alice")
    assert result.exit_code == 0, result.output
    assert "Wrote 1 new revisions." in result.output
    rows = query(
        settings.database_url,
        "SELECT number, author, change_note FROM revisions JOIN entries ON entries.id = entry_id "
        "WHERE key = 'probiotics' AND locale = 'en-US' ORDER BY number",
    )
    assert rows[0][0] == 1
    assert rows[1] == (2, "alice", "Clarified.")
    assert scalar(settings.database_url, "SELECT count(*) FROM revisions") == ENTRY_FILES + 1


def test_changing_only_the_change_note_writes_nothing(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    invoke(cli, "seed", str(seed_copy))
    path = seed_copy / "snippets/prebiotics.en-US.md"
    path.write_text(path.read_text().replace("First vetted version.", "Only the note changed."))
    result = invoke(cli, "seed", str(seed_copy))
    assert "Nothing to write" in result.output
    assert scalar(settings.database_url, "SELECT count(*) FROM revisions") == ENTRY_FILES


def test_dry_run_lists_the_plan_and_writes_nothing(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    invoke(cli, "seed", str(seed_copy))
    path = seed_copy / "snippets/secretome.en-US.md"
    path.write_text(path.read_text() + "\nOne more sentence.\n")
    before = table_counts(settings.database_url)
    result = invoke(cli, "seed", str(seed_copy), "--dry-run")
    assert result.exit_code == 0
    assert "Dry run: nothing written" in result.output
    assert "would write snippet secretome (en-US): revision 2" in result.output
    assert table_counts(settings.database_url) == before


def test_invalid_files_exit_non_zero_and_leave_the_database_unchanged(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    invoke(cli, "seed", str(seed_copy))
    before = table_counts(settings.database_url)
    valid_change = seed_copy / "snippets/prebiotics.en-US.md"
    valid_change.write_text(valid_change.read_text() + "\nA valid change.\n")
    broken = seed_copy / "snippets/secretome.en-US.md"
    broken.write_text(broken.read_text().replace("evidence: emerging", "evidence: proven"))
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 1
    assert "seed/snippets/secretome.en-US.md:" in result.output
    assert "evidence: Input should be" in result.output
    assert "nothing was written" in result.output
    assert summary_row(result.output, "snippet") == ["0", "-", "1"]
    assert summary_row(result.output, "takeaway") == ["0", "-", "0"]
    assert table_counts(settings.database_url) == before


def test_an_entry_cannot_change_kind(cli: CliRunner, settings: Settings, seed_copy: Path) -> None:
    invoke(cli, "seed", str(seed_copy))
    before = table_counts(settings.database_url)
    moved = seed_copy / "snippets/prebiotics.en-US.md"
    text = moved.read_text()
    moved.unlink()
    (seed_copy / "disclaimers/prebiotics.en-US.md").write_text(
        "---\nkey: prebiotics\nlocale: en-US\nkind: cosmetic\ntitle: T\nmarkets: [US]\n---\nText.\n"
    )
    (seed_copy / "snippets/other.en-US.md").write_text(
        text.replace("key: prebiotics", "key: other")
    )
    result = invoke(cli, "seed", str(seed_copy))
    assert result.exit_code == 1
    assert (
        "seed/disclaimers/prebiotics.en-US.md:2: key 'prebiotics' already names a snippet; "
        "an entry keeps its kind, so choose another key"
    ) in result.output
    assert table_counts(settings.database_url) == before


def test_seed_on_an_unmigrated_database_says_to_migrate(
    cli: CliRunner, empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENT_API_DATABASE_URL", empty_database_url)
    result = invoke(cli, "seed", str(SEED))
    assert result.exit_code == 1
    assert "run `contentapi migrate` first" in result.output
    assert invoke(cli, "migrate").exit_code == 0
    assert invoke(cli, "seed", str(SEED)).exit_code == 0


def test_approve_is_refused_in_production(
    cli: CliRunner, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    result = invoke(cli, "seed", str(SEED), "--approve")
    assert result.exit_code == 1
    assert "seed --approve is refused in production" in result.output
    assert scalar(settings.database_url, "SELECT count(*) FROM revisions") == 0


def test_a_bad_setting_names_the_variable(cli: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENT_API_ENV", "staging")
    result = invoke(cli, "migrate")
    assert result.exit_code == 2
    assert "CONTENT_API_ENV: Input should be 'development' or 'production'" in result.output


# --- concurrent and interrupted runs, as separate processes ----------------------------------


def _seed_process(settings: Settings, root: Path) -> subprocess.Popen[str]:
    env = os.environ | {"CONTENT_API_DATABASE_URL": settings.database_url}
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "seed", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_two_runs_at_once_never_duplicate_or_skip_revision_numbers(
    settings: Settings, tmp_path: Path
) -> None:
    root = generate(tmp_path / "seed", 400)
    first = _seed_process(settings, root)
    second = _seed_process(settings, root)
    outputs = [process.communicate(timeout=300)[0] for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    # one run wrote everything; the other queued behind it and found nothing left to write
    assert sorted("Nothing to write" in output for output in outputs) == [False, True]

    for n in (0, 1, 2):
        (root / f"snippets/generated-{n:05d}.en-US.md").write_text(snippet_text(n, revision=2))
    third, fourth = _seed_process(settings, root), _seed_process(settings, root)
    for process in (third, fourth):
        process.communicate(timeout=300)
        assert process.returncode == 0
    numbers = query(
        settings.database_url,
        "SELECT entry_id, locale, count(*), min(number), max(number) FROM revisions "
        "GROUP BY entry_id, locale",
    )
    assert len(numbers) == 400 + len(list(root.glob("disclaimers/*")))
    for _, _, count, low, high in numbers:
        assert (low, high) == (1, count)  # gapless, no duplicates
    assert sum(count for *_, count, _, _ in numbers) == len(numbers) + 3


def _writer_holds_the_lock(database_url: str) -> bool:
    if database_url.startswith("sqlite"):
        connection = sqlite3.connect(database_url.removeprefix("sqlite:///"), timeout=0)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.rollback()
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            connection.close()
    with psycopg.connect(database_url) as connection:
        try:
            connection.execute("SELECT 1 FROM content_locks FOR UPDATE NOWAIT")
            return False
        except psycopg.errors.LockNotAvailable:
            return True


def test_a_run_killed_halfway_leaves_the_database_as_it_was(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    root = generate(tmp_path / "seed", 3000)
    before = table_counts(settings.database_url)
    process = _seed_process(settings, root)
    deadline = time.monotonic() + 120
    while not _writer_holds_the_lock(settings.database_url):
        assert process.poll() is None, "the run finished before it could be interrupted"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.3)  # well into the transaction's writes
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL

    assert table_counts(settings.database_url) == before
    # and the next run starts cleanly, with revision 1 for every file
    result = invoke(cli, "seed", str(root))
    assert result.exit_code == 0, result.output
    assert scalar(settings.database_url, "SELECT max(number) FROM revisions") == 1


def test_a_long_run_in_a_terminal_shows_a_progress_bar(settings: Settings, tmp_path: Path) -> None:
    root = generate(tmp_path / "seed", 600)
    controller, terminal = pty.openpty()
    env = os.environ | {"CONTENT_API_DATABASE_URL": settings.database_url, "COLUMNS": "100"}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "seed", str(root)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=120) == 0
    text = shown.decode(errors="replace")
    assert "Seeding" in text
    assert "━" in text  # the bar itself
    assert "Wrote 605 new revisions." in text
