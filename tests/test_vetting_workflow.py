"""The editorial workflow through the `contentapi` commands: staff keys, four eyes, every
transition and refusal, withdrawal, rollback, re-review, history, diff and the audit log."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from service.app import create_app
from service.config import Environment, Settings
from service.content.models import utcnow
from service.db import create_sync_engine
from tests.helpers import data, invoke, query, scalar, table_counts
from tests.vetting_helpers import DISCLAIMERS, add_staff, approve_all, make_team, small_seed

SNIPPET_QUERY = 'query ($release: Int) { snippet(key: "gut-skin-axis", release: $release) { version body { text } } }'


def audit_count(settings: Settings) -> int:
    return int(scalar(settings.database_url, "SELECT count(*) FROM audit_events"))


def decisions(settings: Settings, key: str) -> list[tuple[int, str, str]]:
    return query(
        settings.database_url,
        "SELECT number, decision, reviewer FROM review_decisions d "
        "JOIN revisions r ON r.id = d.revision_id JOIN entries e ON e.id = r.entry_id "
        "WHERE e.key = :key AND r.locale = 'en-US' ORDER BY d.id",
        key=key,
    )


@pytest.fixture
def small(tmp_path: Path) -> Path:
    return small_seed(tmp_path / "seed")


# --- staff and keys -----------------------------------------------------------------------


def test_staff_keys_are_shown_once_and_stored_only_as_hash_and_prefix(
    cli: CliRunner, settings: Settings
) -> None:
    refused = invoke(cli, "staff", "add", "eve", "--role", "editor")
    assert refused.exit_code == 1
    assert "the first staff member must have the admin role" in refused.output

    key = add_staff(cli, "ada", "admin")

    assert key.startswith("gsk_s_")
    assert len(key) == 42
    stored = query(settings.database_url, "SELECT prefix, secret_hash FROM api_keys")
    assert len(stored) == 1
    prefix, secret_hash = stored[0]
    assert key.startswith(prefix)
    assert len(prefix) == 14
    assert key not in secret_hash
    listing = invoke(cli, "staff", "list")
    assert prefix in listing.output
    assert key not in listing.output
    assert "admin" in listing.output


def test_only_an_admin_adds_staff_once_there_is_one(cli: CliRunner, settings: Settings) -> None:
    team = make_team(cli)
    before = table_counts(settings.database_url)

    refused = invoke(cli, "staff", "add", "mallory", "--role", "admin", "--key", team.editor)

    assert refused.exit_code == 1
    assert "eve may not manage staff and keys: that needs the admin role" in refused.output
    assert table_counts(settings.database_url) == before
    assert scalar(settings.database_url, "SELECT count(*) FROM staff") == 4


def test_mistyped_unknown_and_revoked_keys_are_refused_with_the_reason(
    cli: CliRunner, settings: Settings
) -> None:
    team = make_team(cli)
    typo = team.editor[:-1] + ("A" if team.editor[-1] != "A" else "B")
    mistyped = invoke(cli, "review", "submit", "--all", "--key", typo)
    assert mistyped.exit_code == 1
    assert "checksum does not match: it was mistyped or truncated" in mistyped.output
    assert (
        "not an API key of this service"
        in invoke(cli, "review", "submit", "--all", "--key", "hunter2").output
    )

    revoked = invoke(cli, "staff", "revoke", "eve", "--key", team.admin)
    assert revoked.exit_code == 0, revoked.output
    after = invoke(cli, "review", "submit", "--all", "--key", team.editor)
    assert after.exit_code == 1
    assert "has been revoked" in after.output


def test_revoking_one_key_leaves_the_others_working(cli: CliRunner, settings: Settings) -> None:
    team = make_team(cli)
    second = invoke(cli, "staff", "key", "eve", "--key", team.editor).stdout.splitlines()[-1]
    prefix = team.editor[:14]

    assert invoke(cli, "staff", "revoke", prefix, "--key", team.admin).exit_code == 0

    assert (
        "has been revoked" in invoke(cli, "review", "submit", "--all", "--key", team.editor).output
    )
    assert invoke(cli, "review", "submit", "--all", "--key", second).exit_code == 0


# --- four eyes and transitions -------------------------------------------------------------


def test_nobody_approves_a_revision_they_wrote_whatever_their_roles(
    cli: CliRunner, settings: Settings, small: Path
) -> None:
    admin = add_staff(cli, "ada", "admin")
    everything = add_staff(cli, "sam", "editor", "reviewer", "publisher", "admin", key=admin)
    assert invoke(cli, "seed", str(small), "--key", everything).exit_code == 0
    assert invoke(cli, "review", "submit", "--all", "--key", everything).exit_code == 0
    before = table_counts(settings.database_url)

    result = invoke(
        cli, "review", "approve", "gut-skin-axis", "--note", "mine", "--key", everything
    )

    assert result.exit_code == 1
    assert "sam wrote revision 1 of gut-skin-axis (en-US), so cannot approve it: four eyes" in (
        result.output
    )
    assert table_counts(settings.database_url) == before
    assert decisions(settings, "gut-skin-axis") == [(1, "submitted", "sam")]
    # and in development the local identity is the author's name too
    local = invoke(cli, "review", "approve", "gut-skin-axis", "--note", "x", env={"USER": "sam"})
    assert "four eyes" in local.output or "cannot approve" in local.output


def test_invalid_transitions_are_refused_and_change_nothing(
    cli: CliRunner, settings: Settings, small: Path
) -> None:
    team = make_team(cli)
    invoke(cli, "seed", str(small), "--key", team.editor)
    start = (table_counts(settings.database_url), audit_count(settings))

    draft = invoke(cli, "review", "approve", "gut-skin-axis", "--note", "x", "--key", team.reviewer)
    assert draft.exit_code == 1
    assert "cannot be approved: it is a draft: submit it for review first" in draft.output
    no_role = invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.reviewer)
    assert "rob may not submit revisions for review: that needs the editor role" in no_role.output
    reason = invoke(
        cli, "review", "reject", "gut-skin-axis", "--reason", " ", "--key", team.reviewer
    )
    assert "a rejection needs a reason" in reason.output
    assert (table_counts(settings.database_url), audit_count(settings)) == start

    assert invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.editor).exit_code == 0
    twice = invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.editor)
    assert "is in review: only a draft can be submitted" in twice.output
    approve = ["review", "approve", "gut-skin-axis", "--note", "ok", "--key", team.reviewer]
    assert invoke(cli, *approve).exit_code == 0
    again = invoke(cli, *approve)
    assert again.exit_code == 1
    assert "is approved already; its review is due on" in again.output
    assert [d for _, d, _ in decisions(settings, "gut-skin-axis")] == ["submitted", "approved"]


def test_a_rejected_revision_is_final_and_never_published(
    cli: CliRunner, settings: Settings, small: Path
) -> None:
    team = make_team(cli)
    invoke(cli, "seed", str(small), "--key", team.editor)
    approve_all(cli, small, team)
    rejected = invoke(
        cli,
        "review",
        "reject",
        "gut-skin-axis",
        "--reason",
        "cites too little",
        "--key",
        team.reviewer,
    )
    assert rejected.exit_code == 0, rejected.output
    assert "now rejected" in rejected.output

    result = invoke(cli, "publish", "--note", "first", "--key", team.publisher)

    assert result.exit_code == 0, result.output
    live = query(
        settings.database_url,
        "SELECT e.key FROM release_items i JOIN entries e ON e.id = i.entry_id ORDER BY e.key",
    )
    assert ("gut-skin-axis",) not in live
    resubmit = invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.editor)
    assert "is rejected: only a draft can be submitted" in resubmit.output
    approve = invoke(
        cli, "review", "approve", "gut-skin-axis", "--note", "x", "--key", team.reviewer
    )
    assert "it was rejected, which is final: write a new revision" in approve.output


def test_only_publishers_publish(cli: CliRunner, settings: Settings, small: Path) -> None:
    team = make_team(cli)
    invoke(cli, "seed", str(small), "--key", team.editor)
    approve_all(cli, small, team)

    refused = invoke(cli, "publish", "--note", "first", "--key", team.reviewer)

    assert refused.exit_code == 1
    assert "rob may not publish, withdraw and roll back" in refused.output
    assert scalar(settings.database_url, "SELECT count(*) FROM releases") == 0


# --- production: from a seed file to a partner's page, with two people ----------------------


def test_production_goes_from_an_edited_seed_file_to_a_partner_page_with_two_people(
    cli: CliRunner, settings: Settings, small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENT_API_ENV", "production")
    admin = add_staff(cli, "ada", "admin")  # the first account needs no key, even in production
    editor = add_staff(cli, "eve", "editor", key=admin)
    reviewer = add_staff(cli, "rob", "reviewer", "publisher", key=admin)
    anonymous = invoke(cli, "seed", str(small))
    assert anonymous.exit_code == 1
    assert "production refuses anonymous writes" in anonymous.output
    assert (
        "adding staff needs an admin's key"
        in invoke(cli, "staff", "add", "x", "--role", "admin").output
    )

    assert invoke(cli, "seed", str(small), "--key", editor).exit_code == 0
    assert invoke(cli, "review", "submit", "--all", "--key", editor).exit_code == 0
    for key in ("gut-skin-axis", *DISCLAIMERS):
        result = invoke(cli, "review", "approve", key, "--note", "checked", "--key", reviewer)
        assert result.exit_code == 0, result.output
    assert (
        "Published release 1"
        in invoke(cli, "publish", "--note", "launch", "--key", reviewer).output
    )

    snippet = small / "snippets/gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text() + "\nMore controlled trials in people are needed.\n")
    assert invoke(cli, "seed", str(small), "--key", editor).exit_code == 0
    assert invoke(cli, "review", "submit", "gut-skin-axis", "--key", editor).exit_code == 0
    approve = ["review", "approve", "gut-skin-axis", "--note", "ok", "--key", reviewer]
    assert invoke(cli, *approve).exit_code == 0
    assert (
        "Published release 2"
        in invoke(cli, "publish", "--note", "trials", "--key", reviewer).output
    )

    created = invoke(
        cli, "keys", "create", "--partner", "Acme", "--markets", "US", "--locales", "en-US",
        "--key", admin,
    )  # fmt: skip
    partner = created.stdout.strip().splitlines()[-1]
    production = Settings(database_url=settings.database_url, env=Environment.PRODUCTION)
    with TestClient(create_app(production)) as client:
        client.headers["authorization"] = f"Bearer {partner}"
        latest = data(client, SNIPPET_QUERY)["snippet"]
        pinned = data(client, SNIPPET_QUERY, {"release": 1})["snippet"]
    assert latest["version"] == 2
    assert "More controlled trials in people are needed." in latest["body"]["text"]
    assert pinned["version"] == 1
    assert query(settings.database_url, "SELECT id, published_by FROM releases") == [
        (1, "rob"),
        (2, "rob"),
    ]
    assert query(settings.database_url, "SELECT author FROM revisions WHERE number = 2") == [
        ("eve",)
    ]


# --- withdrawal and rollback ---------------------------------------------------------------


@pytest.fixture
def two_releases(cli: CliRunner, settings: Settings, small: Path) -> tuple[Path, object]:
    """Release 1 with revision 1 of gut-skin-axis, release 2 with its revision 2."""
    team = make_team(cli)
    invoke(cli, "seed", str(small), "--key", team.editor)
    approve_all(cli, small, team)
    invoke(cli, "publish", "--note", "one", "--key", team.publisher)
    snippet = small / "snippets/gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text().replace("two-way connection", "two-way link"))
    invoke(cli, "seed", str(small), "--key", team.editor)
    invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.editor)
    invoke(cli, "review", "approve", "gut-skin-axis", "--note", "ok", "--key", team.reviewer)
    assert "release 2" in invoke(cli, "publish", "--note", "two", "--key", team.publisher).output
    return small, team


def _served(settings: Settings, release: int | None = None) -> dict[str, object] | None:
    with TestClient(create_app(settings)) as client:
        answer: dict[str, object] | None = data(client, SNIPPET_QUERY, {"release": release})[
            "snippet"
        ]
    return answer


def test_rollback_publishes_an_earlier_revision_again_and_keeps_history(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    _, team = two_releases
    key = team.publisher  # type: ignore[attr-defined]

    result = invoke(
        cli, "rollback", "gut-skin-axis", "--to-revision", "1", "--reason", "wording", "--key", key
    )

    assert result.exit_code == 0, result.output
    assert "Published release 3: gut-skin-axis (en-US) shows revision 1 again." in result.output
    assert _served(settings)["version"] == 1  # type: ignore[index]
    assert _served(settings, 2)["version"] == 2  # type: ignore[index]
    assert scalar(settings.database_url, "SELECT count(*) FROM revisions WHERE number = 2") == 1
    # the rollback holds: revision 2 is not published again by the next release
    assert "Nothing to publish" in invoke(cli, "publish", "--note", "x", "--key", key).output
    history = invoke(cli, "history", "gut-skin-axis", "--locale", "en-US")
    assert "revision 1: published" in history.output
    assert "revision 2: superseded" in history.output

    live = invoke(
        cli, "rollback", "gut-skin-axis", "--to-revision", "1", "--reason", "x", "--key", key
    )
    assert "is live already" in live.output
    back = invoke(
        cli, "rollback", "gut-skin-axis", "--to-revision", "2", "--reason", "ok", "--key", key
    )
    assert back.exit_code == 0, back.output
    assert _served(settings)["version"] == 2  # type: ignore[index]


def test_rollback_only_returns_to_a_published_revision(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    small, team = two_releases
    snippet = small / "snippets/gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text() + "\nA third version.\n")
    invoke(cli, "seed", str(small), "--key", team.editor)  # type: ignore[attr-defined]
    before = table_counts(settings.database_url)

    result = invoke(
        cli, "rollback", "gut-skin-axis", "--to-revision", "3", "--reason", "x",
        "--key", team.publisher,  # type: ignore[attr-defined]
    )  # fmt: skip

    assert result.exit_code == 1
    assert "revision 3 of gut-skin-axis (en-US) was never published" in result.output
    assert table_counts(settings.database_url) == before


def test_withdraw_removes_an_entry_from_the_latest_release_only(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    _, team = two_releases
    key = team.publisher  # type: ignore[attr-defined]

    result = invoke(cli, "withdraw", "gut-skin-axis", "--reason", "under review", "--key", key)

    assert result.exit_code == 0, result.output
    assert "Published release 3: withdrew gut-skin-axis." in result.output
    assert _served(settings) is None
    assert _served(settings, 2)["version"] == 2  # type: ignore[index]
    assert query(
        settings.database_url, "SELECT revision_id FROM release_items WHERE release_id = 3"
    ) == [(None,)]
    assert "Nothing to publish" in invoke(cli, "publish", "--note", "x", "--key", key).output
    again = invoke(cli, "withdraw", "gut-skin-axis", "--reason", "again", "--key", key)
    assert "gut-skin-axis is not live: there is nothing to withdraw" in again.output
    history = invoke(cli, "history", "gut-skin-axis")
    assert "withdrawn" in history.output


def test_a_disclaimer_that_live_content_requires_cannot_be_withdrawn(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    _, team = two_releases
    before = table_counts(settings.database_url)

    result = invoke(
        cli, "withdraw", "not-medical-advice", "--reason", "x",
        "--key", team.publisher,  # type: ignore[attr-defined]
    )  # fmt: skip

    assert result.exit_code == 1
    assert "gut-skin-axis requires not-medical-advice" in result.output
    assert table_counts(settings.database_url) == before


# --- re-review, history, diff, audit ---------------------------------------------------------


def test_approvals_expire_and_due_reviews_can_be_approved_again(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    _, team = two_releases
    assert "No review is due within 30 days." in invoke(cli, "review", "due").output
    assert "gut-skin-axis" in invoke(cli, "review", "due", "--within", "400").output
    # the disclaimer's latest approval is thirteen months old
    engine = create_sync_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO review_decisions (revision_id, decision, reviewer, reason, created_at) "
                "SELECT r.id, 'approved', 'old-reviewer', 'checked', :at FROM revisions r "
                "JOIN entries e ON e.id = r.entry_id WHERE e.key = 'not-medical-advice'"
            ),
            {"at": utcnow() - timedelta(days=400)},
        )
    engine.dispose()
    due = invoke(cli, "review", "due", "--within", "0")
    assert "not-medical-advice (en-US) revision 1" in due.output

    again = invoke(
        cli, "review", "approve", "not-medical-advice", "--note", "re-reviewed",
        "--key", team.reviewer,  # type: ignore[attr-defined]
    )  # fmt: skip

    assert again.exit_code == 0, again.output
    assert "now published" in again.output
    assert "No review is due within 0 days." in invoke(cli, "review", "due", "--within", "0").output


def test_diff_shows_changed_words_and_fields(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    small, team = two_releases
    snippet = small / "snippets/gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text().replace("evidence: limited", "evidence: emerging"))
    invoke(cli, "seed", str(small), "--key", team.editor)  # type: ignore[attr-defined]

    words = invoke(cli, "diff", "gut-skin-axis", "1", "2")
    fields = invoke(cli, "diff", "gut-skin-axis", "2", "3")

    assert words.exit_code == 0, words.output
    assert "[-connection -]" in words.output
    assert "{+link +}" in words.output
    assert "evidence: 'limited' → 'emerging'" in fields.output
    assert "No difference." in invoke(cli, "diff", "gut-skin-axis", "2", "2").output
    missing = invoke(cli, "diff", "gut-skin-axis", "1", "9")
    assert missing.exit_code == 1
    assert "revision 9 of gut-skin-axis in en-US does not exist" in missing.output


def test_every_action_is_in_the_append_only_audit_log(
    cli: CliRunner, settings: Settings, two_releases: tuple[Path, object]
) -> None:
    _, team = two_releases
    admin = team.admin  # type: ignore[attr-defined]

    log = json.loads(invoke(cli, "audit", "--format", "json", "--api-key", admin).stdout)
    mine = json.loads(
        invoke(cli, "audit", "--format", "json", "--actor", "rob", "--api-key", admin).stdout
    )
    entry = invoke(cli, "audit", "--key", "gut-skin-axis", "--api-key", admin)

    actions = [event["action"] for event in log]
    assert actions.count("staff.add") == 4
    assert actions.count("revision.create") == 5  # four files, then one edit
    assert actions.count("revision.submit") == 5
    assert actions.count("revision.approve") == 5
    assert actions.count("release.publish") == 2 + 5  # a release event and one per item
    assert {event["actor"] for event in mine} == {"rob"}
    assert all(event["action"] == "revision.approve" for event in mine)
    assert "rob revision.approve gut-skin-axis (en-US): ok" in entry.output
    refused = invoke(cli, "audit", "--api-key", team.reviewer)  # type: ignore[attr-defined]
    assert "rob may not read the audit log: that needs the admin role" in refused.output

    engine = create_sync_engine(settings.database_url)
    try:
        for statement in (
            "UPDATE audit_events SET actor = 'nobody'",
            "DELETE FROM audit_events",
            "UPDATE revisions SET body_markdown = 'rewritten'",
            "DELETE FROM release_items",
        ):
            with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
                connection.execute(text(statement))
    finally:
        engine.dispose()
    assert audit_count(settings) == len(log)


# --- compliance findings and waivers --------------------------------------------------------

DRUG_CLAIM = "This supplement cures acne in two weeks."


def test_compliance_errors_block_submission_until_an_admin_waives_them(
    cli: CliRunner, settings: Settings, small: Path
) -> None:
    team = make_team(cli)
    snippet = small / "snippets/gut-skin-axis.en-US.md"
    snippet.write_text(snippet.read_text() + "\n" + DRUG_CLAIM + "\n")
    invoke(cli, "seed", str(small), "--key", team.editor)
    before = (table_counts(settings.database_url), audit_count(settings))

    blocked = invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.editor)

    assert blocked.exit_code == 1
    assert "cannot be submitted: 1 compliance error" in blocked.output
    assert "drug-claim" in blocked.output
    assert "'cures acne'" in blocked.output
    assert (table_counts(settings.database_url), audit_count(settings)) == before
    shown = invoke(cli, "review", "show", "gut-skin-axis")
    fingerprint = shown.output.split("finding ")[1].split()[0]
    assert fingerprint.startswith("drug-claim:")

    not_admin = invoke(
        cli,
        "review",
        "waive",
        "gut-skin-axis",
        fingerprint,
        "--reason",
        "x",
        "--key",
        team.reviewer,
    )
    assert "rob may not waive compliance findings: that needs the admin role" in not_admin.output
    no_reason = invoke(
        cli, "review", "waive", "gut-skin-axis", fingerprint, "--reason", "", "--key", team.admin
    )
    assert "a waiver needs a reason" in no_reason.output
    unknown = invoke(
        cli,
        "review",
        "waive",
        "gut-skin-axis",
        "drug-claim:0:0",
        "--reason",
        "x",
        "--key",
        team.admin,
    )
    assert f"has no finding 'drug-claim:0:0'; its findings: {fingerprint}" in unknown.output
    assert (table_counts(settings.database_url), audit_count(settings)) == before

    waived = invoke(
        cli, "review", "waive", "gut-skin-axis", fingerprint,
        "--reason", "quoted from a regulator's warning letter", "--key", team.admin,
    )  # fmt: skip
    assert waived.exit_code == 0, waived.output
    again = invoke(
        cli, "review", "waive", "gut-skin-axis", fingerprint, "--reason", "x", "--key", team.admin
    )
    assert "is waived already" in again.output
    assert invoke(cli, "review", "submit", "gut-skin-axis", "--key", team.editor).exit_code == 0
    queue = json.loads(invoke(cli, "review", "queue", "--format", "json").stdout)
    assert queue[0]["findings"][0]["rule"] == "drug-claim"
    assert queue[0]["findings"][0]["waived"] is True
    approved = invoke(
        cli, "review", "approve", "gut-skin-axis", "--note", "ok", "--key", team.reviewer
    )
    assert approved.exit_code == 0, approved.output
    log = invoke(cli, "audit", "--key", "gut-skin-axis", "--api-key", team.admin).output
    assert (
        "ada finding.waive gut-skin-axis (en-US): quoted from a regulator's warning letter" in log
    )


def test_the_queue_filters_by_kind_locale_market_and_rule(
    cli: CliRunner, settings: Settings, small: Path
) -> None:
    team = make_team(cli)
    invoke(cli, "seed", str(small), "--key", team.editor)
    invoke(cli, "review", "submit", "--all", "--key", team.editor)

    def keys(*options: str) -> list[str]:
        result = invoke(cli, "review", "queue", "--format", "json", *options)
        return [item["key"] for item in json.loads(result.stdout)]

    assert sorted(keys()) == sorted(["gut-skin-axis", *DISCLAIMERS])
    assert keys("--kind", "snippet") == ["gut-skin-axis"]
    assert keys("--locale", "fr-FR") == []
    assert "gut-skin-axis" in keys("--market", "US")
    assert keys("--rule", "drug-claim") == []
