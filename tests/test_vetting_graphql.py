"""The editorial workflow over GraphQL: staff keys in `Authorization`, the same rules as the
commands, each refusal a clear error with its code and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from service.app import create_app
from service.config import Settings
from service.content.models import utcnow
from service.db import create_sync_engine
from tests.helpers import invoke, table_counts
from tests.vetting_helpers import DISCLAIMERS, Team, add_staff, make_team, small_seed

SUBMIT = """mutation ($key: String!) {
  submitRevision(revision: {key: $key}) { key number status author findings { rule } } }"""
APPROVE = """mutation ($key: String!, $note: String!) {
  approveRevision(revision: {key: $key}, note: $note) {
    status decisions { decision by reason } approvedAt reviewDueAt } }"""
REJECT = """mutation ($key: String!, $reason: String!) {
  rejectRevision(revision: {key: $key}, reason: $reason) { status } }"""
PUBLISH = "mutation ($note: String!) { publishRelease(note: $note) { number note } }"
QUEUE = "{ reviewQueue { key locale number author status } }"


def ask(
    client: TestClient, query: str, variables: dict[str, Any] | None = None, *, key: str | None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    response = client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    body: dict[str, Any] = response.json()
    return body


def ok(client: TestClient, query: str, variables: dict[str, Any] | None = None, *, key: str) -> Any:
    body = ask(client, query, variables, key=key)
    assert "errors" not in body, body["errors"]
    return body["data"]


def refused(
    client: TestClient, query: str, variables: dict[str, Any] | None = None, *, key: str | None
) -> tuple[str, str]:
    body = ask(client, query, variables, key=key)
    assert len(body["errors"]) == 1, body
    return body["errors"][0]["extensions"]["code"], body["errors"][0]["message"]


@pytest.fixture
def team(cli: CliRunner, settings: Settings, tmp_path: Path) -> Team:
    seed = small_seed(tmp_path / "seed")
    team = make_team(cli)
    assert invoke(cli, "seed", str(seed), "--key", team.editor).exit_code == 0
    return team


@pytest.fixture
def client(settings: Settings, team: Team) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def submit_and_approve_all(client: TestClient, team: Team) -> None:
    for key in ("gut-skin-axis", *DISCLAIMERS):
        ok(client, SUBMIT, {"key": key}, key=team.editor)
        ok(client, APPROVE, {"key": key, "note": "checked"}, key=team.reviewer)


def test_staff_fields_and_mutations_need_a_staff_key(client: TestClient, team: Team) -> None:
    code, message = refused(client, SUBMIT, {"key": "gut-skin-axis"}, key=None)
    assert code == "UNAUTHENTICATED"
    assert "Authorization: Bearer <key>" in message
    assert refused(client, QUEUE, key=None)[0] == "UNAUTHENTICATED"
    assert refused(client, QUEUE, key="gsk_s_nonsense")[0] == "UNAUTHENTICATED"
    # reading published content stays open in development
    public = client.post("/graphql", json={"query": "{ releases: release { number } }"}).json()
    assert "errors" not in public


def test_review_path_with_the_rules_of_the_commands(
    client: TestClient, team: Team, settings: Settings
) -> None:
    submitted = ok(client, SUBMIT, {"key": "gut-skin-axis"}, key=team.editor)["submitRevision"]
    assert submitted == {
        "key": "gut-skin-axis",
        "number": 1,
        "status": "IN_REVIEW",
        "author": "eve",
        "findings": [],
    }
    queue = ok(client, QUEUE, key=team.reviewer)["reviewQueue"]
    assert [(item["key"], item["status"]) for item in queue] == [("gut-skin-axis", "IN_REVIEW")]

    code, message = refused(client, APPROVE, {"key": "gut-skin-axis", "note": "x"}, key=team.editor)
    assert code == "FORBIDDEN"
    assert "needs the reviewer role" in message
    approved = ok(
        client, APPROVE, {"key": "gut-skin-axis", "note": "sources checked"}, key=team.reviewer
    )
    assert approved["approveRevision"]["status"] == "APPROVED"
    assert approved["approveRevision"]["decisions"][-1] == {
        "decision": "approved",
        "by": "rob",
        "reason": "sources checked",
    }
    assert approved["approveRevision"]["reviewDueAt"] > approved["approveRevision"]["approvedAt"]
    before = table_counts(settings.database_url)
    code, message = refused(
        client, APPROVE, {"key": "gut-skin-axis", "note": "x"}, key=team.reviewer
    )
    assert code == "CONFLICT"
    assert "approved already" in message
    code, _ = refused(client, REJECT, {"key": "gut-skin-axis", "reason": " "}, key=team.reviewer)
    assert code == "BAD_USER_INPUT"
    assert table_counts(settings.database_url) == before

    for key in DISCLAIMERS:
        ok(client, SUBMIT, {"key": key}, key=team.editor)
        ok(client, APPROVE, {"key": key, "note": "ok"}, key=team.reviewer)
    assert refused(client, PUBLISH, {"note": "launch"}, key=team.reviewer)[0] == "FORBIDDEN"
    release = ok(client, PUBLISH, {"note": "launch"}, key=team.publisher)["publishRelease"]
    assert release == {"number": 1, "note": "launch"}
    page = client.post("/graphql", json={"query": '{ snippet(key: "gut-skin-axis") { version } }'})
    assert page.json()["data"]["snippet"] == {"version": 1}


def test_four_eyes_holds_over_graphql(
    cli: CliRunner, settings: Settings, team: Team, tmp_path: Path
) -> None:
    sam = add_staff(cli, "sam", "editor", "reviewer", key=team.admin)
    seed = small_seed(tmp_path / "sam")
    path = seed / "snippets/gut-skin-axis.en-US.md"
    path.write_text(path.read_text() + "\nSam's addition.\n")
    invoke(cli, "seed", str(seed), "--key", sam)
    with TestClient(create_app(settings)) as client:
        ok(client, SUBMIT, {"key": "gut-skin-axis"}, key=sam)
        code, message = refused(client, APPROVE, {"key": "gut-skin-axis", "note": "x"}, key=sam)
    assert code == "FORBIDDEN"
    assert "sam wrote revision 2 of gut-skin-axis (en-US), so cannot approve it" in message


def test_history_diff_withdraw_rollback_and_audit_over_graphql(
    client: TestClient, team: Team, cli: CliRunner, tmp_path: Path
) -> None:
    submit_and_approve_all(client, team)
    ok(client, PUBLISH, {"note": "one"}, key=team.publisher)
    withdrawn = ok(
        client,
        'mutation { withdrawEntry(key: "gut-skin-axis", reason: "checking a source") { number } }',
        key=team.publisher,
    )
    assert withdrawn == {"withdrawEntry": {"number": 2}}
    assert client.post(
        "/graphql", json={"query": '{ snippet(key: "gut-skin-axis") { version } }'}
    ).json()["data"] == {"snippet": None}
    rolled = ok(
        client,
        'mutation { rollbackEntry(key: "gut-skin-axis", toRevision: 1, reason: "source fine") '
        "{ number note } }",
        key=team.publisher,
    )
    assert rolled == {"rollbackEntry": {"number": 3, "note": "source fine"}}

    history = ok(
        client,
        '{ history(key: "gut-skin-axis") { number status releases decisions { decision by } } }',
        key=team.reviewer,
    )["history"]
    assert history == [
        {
            "number": 1,
            "status": "PUBLISHED",
            "releases": [1, 3],
            "decisions": [
                {"decision": "submitted", "by": "eve"},
                {"decision": "approved", "by": "rob"},
            ],
        }
    ]
    audit_query = '{ auditLog(key: "gut-skin-axis") { actor action reason releaseId } }'
    assert refused(client, audit_query, key=team.reviewer)[0] == "FORBIDDEN"
    events = ok(client, audit_query, key=team.admin)["auditLog"]
    assert [(e["actor"], e["action"]) for e in events] == [
        ("eve", "revision.create"),
        ("eve", "revision.submit"),
        ("rob", "revision.approve"),
        ("pat", "release.publish"),
        ("pat", "release.withdraw"),
        ("pat", "release.rollback"),
    ]
    assert events[-1]["reason"] == "source fine"

    seed = small_seed(tmp_path / "next")
    path = seed / "snippets/gut-skin-axis.en-US.md"
    path.write_text(path.read_text().replace("two-way connection", "two-way link"))
    invoke(cli, "seed", str(seed), "--key", team.editor)
    diff = ok(
        client,
        '{ revisionDiff(key: "gut-skin-axis", before: 1, after: 2) '
        "{ body { change text } fields { field } } }",
        key=team.reviewer,
    )["revisionDiff"]
    changed = [(s["change"], s["text"]) for s in diff["body"] if s["change"] != "EQUAL"]
    assert changed == [("DELETE", "connection "), ("INSERT", "link ")]
    assert diff["fields"] == []


def test_mutations_are_refused_over_get(client: TestClient, team: Team) -> None:
    response = client.get(
        "/graphql",
        params={"query": PUBLISH, "variables": '{"note": "x"}'},
        headers={"authorization": f"Bearer {team.publisher}"},
    )
    assert response.status_code == 400
    assert "mutations are not allowed when using GET" in response.text


def test_staff_preview_the_next_release_through_the_partner_queries(
    client: TestClient, team: Team, cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    submit_and_approve_all(client, team)
    ok(client, PUBLISH, {"note": "one"}, key=team.publisher)
    seed = small_seed(tmp_path / "next")
    path = seed / "snippets/gut-skin-axis.en-US.md"
    path.write_text(path.read_text().replace("two-way connection", "two-way link"))
    invoke(cli, "seed", str(seed), "--key", team.editor)
    ok(client, SUBMIT, {"key": "gut-skin-axis"}, key=team.editor)
    ok(client, APPROVE, {"key": "gut-skin-axis", "note": "ok"}, key=team.reviewer)
    pending = ok(client, "{ pendingRelease { key number } }", key=team.reviewer)
    assert pending == {"pendingRelease": [{"key": "gut-skin-axis", "number": 2}]}
    page = '{ snippet(key: "gut-skin-axis") { version release { number } } }'
    before = table_counts(settings.database_url)

    def read(headers: dict[str, str]) -> Any:
        return client.post("/graphql", json={"query": page}, headers=headers)

    preview_headers = {
        "content-preview": "next-release",
        "authorization": f"Bearer {team.reviewer}",
    }
    preview = read(preview_headers)
    partner = read({})

    assert preview.status_code == 200
    assert preview.json()["data"]["snippet"] == {"version": 2, "release": {"number": 2}}
    assert preview.headers["cache-control"] == "no-store"
    assert partner.json()["data"]["snippet"] == {"version": 1, "release": {"number": 1}}
    assert table_counts(settings.database_url) == before
    anonymous = read({"content-preview": "next-release"})
    assert anonymous.status_code == 401
    assert "a preview needs a staff API key" in anonymous.text
    # publishing for real afterwards is not confused by the preview's staged release 2
    ok(client, PUBLISH, {"note": "two"}, key=team.publisher)
    assert read({}).json()["data"]["snippet"] == {"version": 2, "release": {"number": 2}}
    assert client.post("/graphql", json={"query": "{ release { number note } }"}).json()["data"][
        "release"
    ] == {"number": 2, "note": "two"}


def test_findings_block_submission_and_an_admin_waives_one_over_graphql(
    cli: CliRunner, settings: Settings, team: Team, tmp_path: Path
) -> None:
    seed = small_seed(tmp_path / "claim")
    path = seed / "snippets/gut-skin-axis.en-US.md"
    path.write_text(path.read_text() + "\nThis supplement cures acne.\n")
    invoke(cli, "seed", str(seed), "--key", team.editor)
    waive = """mutation ($fingerprint: String!) {
      waiveFinding(revision: {key: "gut-skin-axis"}, fingerprint: $fingerprint,
                   reason: "a quotation") { findings { rule blocking waiver { by reason } } } }"""
    with TestClient(create_app(settings)) as client:
        code, message = refused(client, SUBMIT, {"key": "gut-skin-axis"}, key=team.editor)
        assert code == "CONFLICT"
        assert "1 compliance error" in message
        found = ok(
            client,
            '{ history(key: "gut-skin-axis") { number findings { fingerprint rule blocking } } }',
            key=team.reviewer,
        )["history"][-1]["findings"]
        assert [(f["rule"], f["blocking"]) for f in found] == [("drug-claim", True)]
        fingerprint = {"fingerprint": found[0]["fingerprint"]}
        assert refused(client, waive, fingerprint, key=team.reviewer)[0] == "FORBIDDEN"

        waived = ok(client, waive, fingerprint, key=team.admin)["waiveFinding"]

        assert waived["findings"] == [
            {
                "rule": "drug-claim",
                "blocking": False,
                "waiver": {"by": "ada", "reason": "a quotation"},
            }
        ]
        assert (
            ok(client, SUBMIT, {"key": "gut-skin-axis"}, key=team.editor)["submitRevision"][
                "status"
            ]
            == "IN_REVIEW"
        )


def test_partners_see_when_content_was_reviewed_as_of_the_release_they_read(
    client: TestClient, team: Team, cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    submit_and_approve_all(client, team)
    ok(client, PUBLISH, {"note": "one"}, key=team.publisher)
    query = '{ snippet(key: "gut-skin-axis", release: 1) { reviewedAt } }'
    first = client.post("/graphql", json={"query": query}).json()["data"]["snippet"]["reviewedAt"]
    approvals = ok(client, '{ history(key: "gut-skin-axis") { approvedAt } }', key=team.reviewer)
    assert first == approvals["history"][0]["approvedAt"]

    # a re-review recorded after release 1 (as when the approval came due) shows from the
    # next release on; the pinned release answers as before
    engine = create_sync_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO review_decisions (revision_id, decision, reviewer, reason, created_at)"
                " SELECT r.id, 'approved', 'ria', 're-reviewed', :at FROM revisions r"
                " JOIN entries e ON e.id = r.entry_id WHERE e.key = 'gut-skin-axis'"
            ),
            {"at": utcnow()},
        )
    engine.dispose()
    seed = small_seed(tmp_path / "next")
    path = seed / "disclaimers/not-medical-advice.en-US.md"
    path.write_text(path.read_text() + "\nAsk a pharmacist too.\n")
    invoke(cli, "seed", str(seed), "--key", team.editor)
    ok(client, SUBMIT, {"key": "not-medical-advice"}, key=team.editor)
    ok(client, APPROVE, {"key": "not-medical-advice", "note": "ok"}, key=team.reviewer)
    ok(client, PUBLISH, {"note": "two"}, key=team.publisher)

    again = client.post("/graphql", json={"query": query}).json()["data"]["snippet"]["reviewedAt"]
    latest = client.post(
        "/graphql", json={"query": '{ snippet(key: "gut-skin-axis") { reviewedAt } }'}
    ).json()["data"]["snippet"]["reviewedAt"]
    assert again == first
    assert latest > first
