"""The reviewers' console over HTTP: signing in, the form token, every refusal on the page with
nothing changed, the revision page's findings and diff, security headers, and production."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.config import Settings
from service.console.views import NumberedFinding, Piece, entry_findings, source_view
from service.vetting.compliance import Finding, Severity
from service.vetting.service import CheckedFinding
from tests.conftest import DATABASES, fresh_database
from tests.console_helpers import (
    DRUG_CLAIM,
    FIXED,
    Review,
    csrf_of,
    post_form,
    prepare_review,
    sign_in,
    write_revision,
)
from tests.helpers import invoke, query, scalar, table_counts

REVISION_2 = "/console/entries/gut-skin-axis/en-US/2"
HISTORY = "/console/entries/gut-skin-axis"
SECRET = "s3cr3t-" * 6


@dataclass(frozen=True)
class Prepared:
    settings: Settings
    review: Review
    finding: str  # the id of revision 2's drug-claim finding


def prepared(request: pytest.FixtureRequest, root: Path, *, submitted: bool) -> Iterator[Prepared]:
    """A database of each kind, shared by the tests of this module that change nothing in it
    (which is what most of them check)."""
    with fresh_database(request, request.param, root) as url, pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENT_API_DATABASE_URL", url)
        env.setenv("CONTENT_API_ENV", "development")
        env.delenv("CONTENT_API_SEED_PATH", raising=False)
        cli = CliRunner()
        review = prepare_review(cli, root)
        found = fingerprint(cli)
        if submitted:
            submit_with_waiver(cli, review, found)
        yield Prepared(Settings(database_url=url), review, found)


@pytest.fixture(scope="module", params=DATABASES)
def drafted(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prepared]:
    """Revision 2 is sam's draft, with a drug claim."""
    yield from prepared(request, tmp_path_factory.mktemp("drafted"), submitted=False)


@pytest.fixture(scope="module", params=DATABASES)
def in_review(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prepared]:
    """Revision 2 is in review: ada waived its finding, sam submitted it."""
    yield from prepared(request, tmp_path_factory.mktemp("in-review"), submitted=True)


@pytest.fixture
def review(cli: CliRunner, settings: Settings, tmp_path: Path) -> Review:
    """A database of its own, for a test that changes it."""
    return prepare_review(cli, tmp_path)


def client_for(settings: Settings) -> TestClient:
    """A browser of its own (its own cookies) on a service for this database."""
    return TestClient(create_app(settings))


def state_of(settings: Settings) -> tuple[Any, ...]:
    """Everything an action could write."""
    url = settings.database_url
    return (
        table_counts(url),
        scalar(url, "SELECT count(*) FROM audit_events"),
        scalar(url, "SELECT count(*) FROM finding_waivers"),
    )


def decisions(settings: Settings, number: int) -> list[tuple[str, str]]:
    return query(
        settings.database_url,
        "SELECT d.decision, d.reviewer FROM review_decisions d "
        "JOIN revisions r ON r.id = d.revision_id JOIN entries e ON e.id = r.entry_id "
        "WHERE e.key = 'gut-skin-axis' AND r.locale = 'en-US' AND r.number = :number "
        "ORDER BY d.id",
        number=number,
    )


def fingerprint(cli: CliRunner) -> str:
    result = invoke(cli, "review", "show", "gut-skin-axis")
    assert "drug-claim" in result.output, result.output
    return result.output.split("finding ")[-1].split()[0]


def submit_with_waiver(cli: CliRunner, review: Review, finding: str) -> None:
    """Revision 2 into review: ada waives its finding, sam submits it (by the commands)."""
    waived = invoke(
        cli, "review", "waive", "gut-skin-axis", finding,
        "--reason", "quoted from a regulator's warning letter", "--key", review.team.admin,
    )  # fmt: skip
    assert waived.exit_code == 0, waived.output
    assert invoke(cli, "review", "submit", "gut-skin-axis", "--key", review.sam).exit_code == 0


def refusal(response: Any, status: int, message: str) -> None:
    """The page says what was refused and why, in the domain's words, and that nothing changed."""
    shown = html.unescape(response.text)
    assert response.status_code == status, shown
    assert message in shown, shown
    assert "Nothing was changed." in shown


# --- signing in ---------------------------------------------------------------------------


def test_signed_out_visitors_are_sent_to_sign_in_and_their_posts_do_nothing(
    drafted: Prepared,
) -> None:
    before = state_of(drafted.settings)
    with client_for(drafted.settings) as browser:
        page = browser.get(REVISION_2, follow_redirects=False)
        post = browser.post(f"{REVISION_2}/approve", data={"note": "ok"}, follow_redirects=False)
        form = browser.get(page.headers["location"])

    assert page.status_code == 303
    assert page.headers["location"] == (
        "/console/sign-in?next=%2Fconsole%2Fentries%2Fgut-skin-axis%2Fen-US%2F2"
    )
    assert post.status_code == 303
    assert post.headers["location"] == "/console/sign-in"
    assert '<label for="key">Staff API key</label>' in form.text
    assert state_of(drafted.settings) == before


def test_sign_in_checks_the_key_shows_who_is_signed_in_and_signs_out(drafted: Prepared) -> None:
    with client_for(drafted.settings) as browser:
        wrong = sign_in(browser, "hunter2")
        landed = sign_in(browser, drafted.review.team.reviewer)
        out = browser.post("/console/sign-out", data={"csrf": csrf_of(landed.text)})
        after = browser.get("/console/", follow_redirects=False)

    assert wrong.status_code == 401
    assert "not an API key of this service" in wrong.text
    assert landed.status_code == 200
    assert str(landed.url).endswith("/console/")
    assert "Signed in as rob (reviewer)." in landed.text
    assert 'data-testid="who">rob</strong> <span class="roles">(reviewer)</span>' in landed.text
    assert str(out.url).endswith("/console/sign-in")
    assert "Signed out." in out.text
    assert after.status_code == 303


def test_sign_in_returns_to_the_page_asked_for_but_never_to_another_site(
    drafted: Prepared,
) -> None:
    key = drafted.review.team.reviewer
    landings = []
    for asked in ("/console/due", "//evil.test/", "https://evil.test/console/"):
        with client_for(drafted.settings) as browser:
            form = browser.get("/console/sign-in")
            landed = browser.post(
                "/console/sign-in",
                data={"csrf": csrf_of(form.text), "key": key, "next": asked},
                follow_redirects=False,
            )
            landings.append(landed.headers["location"])
    assert landings == ["/console/due", "/console/", "/console/"]


def test_a_revoked_key_ends_the_console_session_at_once(
    cli: CliRunner, settings: Settings, review: Review
) -> None:
    with client_for(settings) as browser:
        assert sign_in(browser, review.team.editor).status_code == 200
        assert invoke(cli, "staff", "revoke", "eve", "--key", review.team.admin).exit_code == 0

        page = browser.get("/console/", follow_redirects=False)
        told = browser.get(page.headers["location"])

    assert page.status_code == 303
    assert page.headers["location"].startswith("/console/sign-in")
    assert "has been revoked" in told.text


def test_a_tampered_cookie_or_one_from_another_secret_is_no_session(drafted: Prepared) -> None:
    with client_for(drafted.settings) as first:
        sign_in(first, drafted.review.team.reviewer)
        cookie = first.cookies["contentapi_console"]
        first.cookies.clear()
        first.cookies.set("contentapi_console", cookie[:-4] + "AAAA", path="/console")
        tampered = first.get("/console/", follow_redirects=False)
    with client_for(drafted.settings) as other:  # another process: another development secret
        other.cookies.set("contentapi_console", cookie, path="/console")
        foreign = other.get("/console/", follow_redirects=False)
    assert tampered.status_code == 303
    assert foreign.status_code == 303


# --- the form token -------------------------------------------------------------------------


def test_every_post_needs_its_sessions_form_token(in_review: Prepared) -> None:
    settings, team = in_review.settings, in_review.review.team
    before = state_of(settings)
    with client_for(settings) as other:
        foreign = csrf_of(sign_in(other, team.admin).text)
    with client_for(settings) as browser:
        sign_in(browser, team.reviewer)
        for data in (
            {"note": "ok"},
            {"note": "ok", "csrf": "forged"},
            {"note": "ok", "csrf": foreign},
        ):
            refused = browser.post(f"{REVISION_2}/approve", data=data)
            assert refused.status_code == 403
            assert "its security token is missing or out of date" in refused.text
        assert browser.post("/console/sign-out", data={}).status_code == 403
        assert browser.post("/console/sign-in", data={"key": team.admin}).status_code == 403
        still = browser.get("/console/")

    assert 'data-testid="who">rob</strong>' in still.text  # signed in, as before
    assert state_of(settings) == before
    assert decisions(settings, 2) == [("submitted", "sam")]


# --- refusals: four eyes, roles, transitions ------------------------------------------------


def test_the_author_cannot_approve_their_own_revision(in_review: Prepared) -> None:
    settings = in_review.settings
    before = state_of(settings)
    with client_for(settings) as browser:
        sign_in(browser, in_review.review.sam)
        refused = post_form(browser, REVISION_2, f"{REVISION_2}/approve", note="looks fine to me")

    refusal(
        refused,
        403,
        "sam wrote revision 2 of gut-skin-axis (en-US), so cannot approve it: four eyes, "
        "someone else must review it",
    )
    assert "looks fine to me" in refused.text  # the note typed is kept in the form
    assert state_of(settings) == before
    assert decisions(settings, 2) == [("submitted", "sam")]


@pytest.mark.parametrize(
    ("who", "page", "action", "fields", "message"),
    [
        ("editor", REVISION_2, "approve", {"note": "ok"}, "eve may not approve or reject revisions: that needs the reviewer role (has editor)"),
        ("editor", REVISION_2, "reject", {"reason": "no"}, "eve may not approve or reject revisions"),
        ("reviewer", REVISION_2, "waive", {"finding": "x", "reason": "y"}, "rob may not waive compliance findings: that needs the admin role"),
        ("reviewer", REVISION_2, "submit", {}, "rob may not submit revisions for review: that needs the editor role"),
        ("reviewer", "/console/release", "", {"note": "go"}, "rob may not publish, withdraw and roll back: that needs the publisher role"),
        ("editor", HISTORY, "withdraw", {"reason": "old"}, "eve may not publish, withdraw and roll back"),
        ("reviewer", HISTORY, "rollback", {"locale": "en-US", "to_revision": "1", "reason": "x"}, "rob may not publish, withdraw and roll back"),
    ],
)  # fmt: skip
def test_an_action_outside_ones_roles_is_refused_on_the_page(
    drafted: Prepared, who: str, page: str, action: str, fields: dict[str, str], message: str
) -> None:
    before = state_of(drafted.settings)
    with client_for(drafted.settings) as browser:
        sign_in(browser, getattr(drafted.review.team, who))
        refused = post_form(browser, page, f"{page}/{action}" if action else page, **fields)

    refusal(refused, 403, message)
    assert state_of(drafted.settings) == before


def test_the_audit_log_is_for_admins(drafted: Prepared) -> None:
    with client_for(drafted.settings) as browser:
        sign_in(browser, drafted.review.team.reviewer)
        refused = browser.get("/console/audit")
    with client_for(drafted.settings) as admin:
        sign_in(admin, drafted.review.team.admin)
        everything = admin.get("/console/audit")
        sams = admin.get("/console/audit", params={"actor": "sam"})

    assert refused.status_code == 403
    assert "rob may not read the audit log: that needs the admin role" in refused.text
    assert 'href="/console/audit"' not in refused.text  # not offered in the navigation either
    assert everything.status_code == 200
    assert "<code>staff.add</code>" in everything.text
    assert "<code>revision.create</code>" in sams.text
    assert "<code>staff.add</code>" not in sams.text


def test_invalid_transitions_and_missing_reasons_are_refused_and_change_nothing(
    drafted: Prepared,
) -> None:
    settings, team, found = drafted.settings, drafted.review.team, drafted.finding
    before = state_of(settings)
    browsers = [client_for(settings) for _ in range(4)]
    reviewer, admin, publisher, author = browsers
    cases = [
        (reviewer, REVISION_2, "approve", {"note": "ok"}, 409, "cannot be approved: it is a draft: submit it for review first"),
        (author, REVISION_2, "submit", {}, 409, "revision 2 of gut-skin-axis (en-US) cannot be submitted: 1 compliance error"),
        (reviewer, REVISION_2, "reject", {"reason": "no"}, 409, "revision 2 of gut-skin-axis (en-US) cannot be rejected"),
        (admin, REVISION_2, "waive", {"finding": found, "reason": ""}, 400, "a waiver needs a reason"),
        (admin, REVISION_2, "waive", {"finding": "drug-claim:0:0", "reason": "x"}, 404, f"has no finding 'drug-claim:0:0'; its findings: {found}"),
        (publisher, HISTORY, "rollback", {"locale": "en-US", "to_revision": "2", "reason": "x"}, 409, "was never published"),
        (publisher, HISTORY, "rollback", {"locale": "en-US", "to_revision": "1", "reason": "x"}, 409, "is live already"),
        (publisher, HISTORY, "rollback", {"locale": "en-US", "to_revision": "one", "reason": "x"}, 400, "choose the earlier published revision"),
        (publisher, HISTORY, "withdraw", {"reason": ""}, 400, "a withdrawal needs a reason"),
        (publisher, HISTORY, "withdraw", {"locale": "de-DE", "reason": "x"}, 409, "gut-skin-axis is not live in de-DE"),
        (publisher, "/console/release", "", {"note": "go"}, 409, "nothing to publish: release 1 already shows every approved revision"),
        (publisher, "/console/release", "", {"note": "bad \x00 note"}, 400, "U+0000 NULL"),
    ]  # fmt: skip
    with reviewer, admin, publisher, author:
        for browser, key in zip(
            browsers, (team.reviewer, team.admin, team.publisher, drafted.review.sam), strict=True
        ):
            sign_in(browser, key)
        for browser, page, action, fields, status, message in cases:
            refused = post_form(browser, page, f"{page}/{action}" if action else page, **fields)
            refusal(refused, status, message)
    assert state_of(settings) == before


def test_rejecting_needs_a_reason_the_author_can_act_on(in_review: Prepared) -> None:
    before = state_of(in_review.settings)
    with client_for(in_review.settings) as browser:
        sign_in(browser, in_review.review.team.reviewer)
        refused = post_form(browser, REVISION_2, f"{REVISION_2}/reject", reason="  ")

    refusal(refused, 400, "a rejection needs a reason the author can act on")
    assert state_of(in_review.settings) == before


def test_an_unknown_entry_or_revision_is_a_page_that_says_so(drafted: Prepared) -> None:
    with client_for(drafted.settings) as browser:
        sign_in(browser, drafted.review.team.reviewer)
        entry = browser.get("/console/entries/no-such-entry")
        revision = browser.get("/console/entries/gut-skin-axis/en-US/9")
        action = post_form(browser, "/console/", "/console/entries/no-such-entry/en-US/1/approve")

    assert entry.status_code == 404
    assert "no entry with key 'no-such-entry'" in html.unescape(entry.text)
    assert revision.status_code == 404
    assert "revision 9 of gut-skin-axis in en-US does not exist" in revision.text
    assert action.status_code == 404


# --- what the pages show ------------------------------------------------------------------


def test_the_revision_page_marks_findings_in_the_text_and_diffs_against_the_live_revision(
    drafted: Prepared,
) -> None:
    with client_for(drafted.settings) as browser:
        sign_in(browser, drafted.review.team.admin)
        page = browser.get(REVISION_2).text

    assert '<span class="status draft" data-testid="status">draft</span>' in page
    assert 'This supplement <mark class="finding-mark">cures acne</mark>.' in page
    assert '<a href="#finding-1">Finding 1</a> · <strong>drug-claim</strong> (error)' in page
    assert "body, line 7, column 17: “cures acne”" in page
    assert "Against revision 1, which partners see now." in page
    assert '<ins><span class="visually-hidden">[inserted: </span>' in page
    assert DRUG_CLAIM in page.split('class="diff"')[1].split("</div>")[0]
    assert "<p>This supplement cures acne.</p>" in page  # the sanitised HTML partners show
    assert 'href="https://doi.org/10.3389/fmicb.2018.01459"' in page
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/30042740/"' in page
    assert "<dt>Evidence level</dt><dd>limited</dd>" in page
    assert '<a href="/console/entries/fda-structure-function">fda-structure-function</a>' in page
    assert "Waive finding 1" in page  # ada is an admin and the revision is a draft
    assert "Approve revision 2" not in page  # ada does not review


def test_the_queue_filters_by_kind_locale_market_and_finding(in_review: Prepared) -> None:
    with client_for(in_review.settings) as browser:
        sign_in(browser, in_review.review.team.reviewer)

        def listed(**filters: str) -> bool:
            page = browser.get("/console/", params=filters)
            assert page.status_code == 200
            return REVISION_2 in page.text

        assert listed()
        assert listed(kind="snippet", locale="en-US", market="US", rule="drug-claim")
        assert not listed(kind="takeaway")
        assert not listed(locale="fr-FR")
        assert not listed(market="JP")
        assert not listed(rule="overstated-certainty")
        queue = browser.get("/console/").text
    assert (
        '<span class="severity error">error</span> drug-claim <span class="waived">(waived)</span>'
        in queue
    )


def test_the_release_page_previews_each_change_and_publishes_it(
    cli: CliRunner, settings: Settings, review: Review
) -> None:
    write_revision(cli, review.seed, review.sam, f"\n{FIXED}\n")
    assert invoke(cli, "review", "submit", "gut-skin-axis", "--key", review.sam).exit_code == 0
    approve = ["review", "approve", "gut-skin-axis", "--note", "ok", "--key", review.team.reviewer]
    assert invoke(cli, *approve).exit_code == 0
    with client_for(settings) as browser:
        sign_in(browser, review.team.publisher)
        page = browser.get("/console/release").text
        published = post_form(browser, "/console/release", "/console/release", note="Advice")
        after = browser.get(published.headers["location"]).text

    assert "gut-skin-axis (en-US) revision 3" in page
    assert "approved by rob" in page
    assert "Against revision 1, which partners see now." in page
    assert FIXED in page
    assert published.status_code == 303
    assert "Published release 2: Advice" in after
    assert "Nothing waits to be published" in after
    assert scalar(settings.database_url, "SELECT published_by FROM releases WHERE id = 2") == "pat"


def test_every_action_goes_through_the_console_into_the_audit_log_and_to_partners(
    cli: CliRunner, settings: Settings, review: Review
) -> None:
    revision_3 = "/console/entries/gut-skin-axis/en-US/3"
    snippet = '{ snippet(key: "gut-skin-axis") { version } }'
    found = fingerprint(cli)
    admin, author, reviewer, publisher = (client_for(settings) for _ in range(4))
    with admin, author, reviewer, publisher:
        for browser, key in (
            (admin, review.team.admin),
            (author, review.sam),
            (reviewer, review.team.reviewer),
            (publisher, review.team.publisher),
        ):
            sign_in(browser, key)

        def done(browser: TestClient, page: str, action: str, **fields: str) -> str:
            response = post_form(browser, page, f"{page}/{action}" if action else page, **fields)
            assert response.status_code == 303, html.unescape(response.text)
            return html.unescape(browser.get(response.headers["location"]).text)

        assert "Waived the drug-claim finding" in done(
            admin, REVISION_2, "waive", finding=found, reason="quoted to be refuted"
        )
        assert "now in review" in done(author, REVISION_2, "submit")
        assert "now rejected" in done(reviewer, REVISION_2, "reject", reason="a drug claim")
        write_revision(cli, review.seed, review.sam, f"\n{FIXED}\n")
        assert "now in review" in done(author, revision_3, "submit")
        assert "now approved" in done(reviewer, revision_3, "approve", note="advice only")
        assert "Published release 2: Advice" in done(
            publisher, "/console/release", "", note="Advice"
        )
        assert publisher.get("/graphql", params={"query": snippet}).json()["data"]["snippet"] == {
            "version": 3
        }
        rolled = done(
            publisher, HISTORY, "rollback", locale="en-US", to_revision="1", reason="Oops"
        )
        assert "Published release 3: gut-skin-axis (en-US) shows revision 1 again." in rolled
        assert publisher.get("/graphql", params={"query": snippet}).json()["data"]["snippet"] == {
            "version": 1
        }
        withdrawn = done(publisher, HISTORY, "withdraw", locale="en-US", reason="Legal hold")
        assert "Published release 4: withdrew gut-skin-axis (en-US)." in withdrawn
        assert (
            publisher.get("/graphql", params={"query": snippet}).json()["data"]["snippet"] is None
        )
        log = html.unescape(admin.get("/console/audit", params={"key": "gut-skin-axis"}).text)

    assert decisions(settings, 2) == [("submitted", "sam"), ("rejected", "rob")]
    assert decisions(settings, 3) == [("submitted", "sam"), ("approved", "rob")]
    for action in ("finding.waive", "revision.submit", "revision.reject", "revision.approve"):
        assert f"<code>{action}</code>" in log
    for action in ("release.publish", "release.rollback", "release.withdraw"):
        assert f"<code>{action}</code>" in log
    assert "Legal hold" in log


# --- security headers, cookies, production -------------------------------------------------


def test_console_responses_carry_a_strict_policy_and_cookies_scripts_cannot_read(
    drafted: Prepared,
) -> None:
    with client_for(drafted.settings) as browser:
        page = browser.get("/console/sign-in")
        style = browser.get("/console/static/console.css")
        graphql = browser.get("/graphql", params={"query": "{ __typename }"})

    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/console" in cookie
    assert "Secure" not in cookie  # development serves plain http on 127.0.0.1
    assert style.status_code == 200
    assert style.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in graphql.headers  # GraphiQL is not the console's
    assert "<script" not in page.text
    assert "style=" not in page.text


def test_production_keeps_the_console_off_unless_enabled_with_a_secret(
    cli: CliRunner, database_url: str
) -> None:
    off = Settings(database_url=database_url, env="production")
    with TestClient(create_app(off)) as client:
        assert client.get("/console/sign-in").status_code == 404
        assert client.get("/console/static/console.css").status_code == 404
        assert client.post("/console/sign-in", data={}).status_code == 404

    refused = invoke(
        cli,
        "staff",
        "list",
        env={
            "CONTENT_API_DATABASE_URL": database_url,
            "CONTENT_API_ENV": "production",
            "CONTENT_API_CONSOLE_ENABLED": "true",
        },
    )
    assert refused.exit_code == 2
    assert "CONTENT_API_CONSOLE_SECRET: the console needs a secret in production" in (
        " ".join(refused.output.split())
    )

    on = Settings(
        database_url=database_url, env="production", console_enabled=True, console_secret=SECRET
    )
    with TestClient(create_app(on), base_url="https://console.test") as client:
        page = client.get("/console/sign-in")
    assert page.status_code == 200
    assert "Secure" in page.headers["set-cookie"]


# --- the pure part: marks in the source view --------------------------------------------------


def finding(field: str, line: int, column: int, end: int, rule: str = "r") -> CheckedFinding:
    return CheckedFinding(Finding(rule, Severity.ERROR, "m", field, line, column, end, "x"), None)


def test_overlapping_findings_split_a_line_into_pieces_each_naming_its_findings() -> None:
    items = [
        NumberedFinding(1, finding("body", 2, 4, 9)),  # "cures"
        NumberedFinding(2, finding("body", 2, 7, 50)),  # runs past its line: marked to the end
        NumberedFinding(3, finding("disclaimers", 1, 1, 1)),
    ]
    fields = source_view([("title", "T"), ("body", "first\nab cures acne")], items)

    body = fields[1]
    assert [line.number for line in body.lines] == [1, 2]
    assert body.lines[1].pieces == [
        Piece("ab "),
        Piece("cur", (1,)),
        Piece("es", (1, 2)),
        Piece(" acne", (2,)),
    ]
    assert [item.number for item in body.lines[1].notes] == [1, 2]
    assert not fields[0].marked
    assert entry_findings(items, fields) == [items[2]]
