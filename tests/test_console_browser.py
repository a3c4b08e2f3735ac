"""The console in a real Chromium against the real service: a revision from an editor's draft
to a partner's page, every page checked with axe-core, the security policy and the keyboard.

One browser for the module; each staff member has a browser context (cookies) of their own.
The screenshots in docs/screenshots/ are taken here, and written there when UPDATE_SCREENSHOTS=1:
a plain test run leaves the work tree as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Error, Page, expect, sync_playwright
from typer.testing import CliRunner

from service.config import PROJECT_ROOT
from tests.conftest import fresh_database
from tests.console_helpers import DRUG_CLAIM, FIXED, Review, prepare_review, write_revision
from tests.helpers import (
    AXE_SCRIPT,
    CHROMIUM_ARGS,
    free_port,
    require_chromium,
    start_serve,
    stop,
    wait_until_up,
)

T = TypeVar("T")
SCREENSHOTS = PROJECT_ROOT / "docs" / "screenshots"
PARTNER_QUERY = '{ snippet(key: "gut-skin-axis") { version body { text } } }'
VIEWPORT = {"width": 1280, "height": 900}
TIMEOUT_MS = 10_000  # a page of this service answers in milliseconds: fail fast, not in 30 s
expect.set_options(timeout=TIMEOUT_MS)


@dataclass(frozen=True)
class Served:
    base: str
    review: Review
    cli: CliRunner
    database_url: str


def beside_the_browser(work: Callable[[], T]) -> T:
    """Run a command (which runs its own event loop) in another thread: Playwright's sync API
    keeps an event loop running in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`contentapi serve` on a database where sam's revision 2 of gut-skin-axis, a drug
    claim, waits as a draft; the commands run against the same database.

    SQLite only: what these tests add to tests/test_console.py, which runs every page and
    action on both databases, is the browser (rendering, axe-core, the policy, the keyboard).
    """
    root = tmp_path_factory.mktemp("console-browser")
    with fresh_database(request, "sqlite", root) as url, pytest.MonkeyPatch.context() as env:
        env.setenv("CONTENT_API_DATABASE_URL", url)
        env.setenv("CONTENT_API_ENV", "development")
        env.delenv("CONTENT_API_SEED_PATH", raising=False)
        cli = CliRunner()
        review = beside_the_browser(lambda: prepare_review(cli, root))
        port = free_port()
        process = start_serve(url, "development", port)
        try:
            wait_until_up(process, port)
            yield Served(f"http://127.0.0.1:{port}", review, cli, url)
        finally:
            stop(process)


def signed_in(browser: Browser, served: Served, key: str, name: str) -> Page:
    """A staff member's own browser window, signed in through the form."""
    # axe-core is injected as an inline script, which the console's policy forbids; the policy
    # itself is checked with it enforced in test_pages_keep_to_their_security_policy...
    context = browser.new_context(base_url=served.base, bypass_csp=True, viewport=VIEWPORT)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto("/console/")
    expect(page).to_have_url(f"{served.base}/console/sign-in?next=%2Fconsole%2F")
    page.get_by_label("Staff API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_contain_text(f"Signed in as {name}")
    return page


def accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page as it stands."""
    page.add_script_tag(path=str(AXE_SCRIPT))
    violations: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
             .map(v => ({id: v.id, impact: v.impact, help: v.help,
                         nodes: v.nodes.map(n => n.target.join(" "))}))"""
    )
    serious = [v for v in violations if v["impact"] in {"serious", "critical"}]
    assert not serious, f"{page.url}: {serious}"


def alert(page: Page) -> Any:
    return page.get_by_role("alert")


def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """For the README's section for content staff."""
    image = page.screenshot(full_page=full_page)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        (SCREENSHOTS / name).write_bytes(image)


def test_a_revision_goes_from_an_editors_draft_to_a_partners_page(
    browser: Browser, served: Served
) -> None:
    team, revision_2 = served.review.team, "/console/entries/gut-skin-axis/en-US/2"

    # the sign-in page itself
    visitor = browser.new_context(base_url=served.base, bypass_csp=True).new_page()
    visitor.goto("/console/sign-in")
    accessible(visitor)
    visitor.context.close()

    # sam, editor and reviewer, cannot submit his draft: its drug claim is an error
    sam = signed_in(browser, served, served.review.sam, "sam")
    sam.goto("/console/entries/gut-skin-axis")
    sam.get_by_role("link", name="Revision 2", exact=True).click()
    expect(sam.get_by_test_id("status")).to_have_text("draft")
    sam.get_by_role("button", name="Submit revision 2 for review").click()
    expect(alert(sam)).to_contain_text("cannot be submitted: 1 compliance error")
    expect(sam.get_by_test_id("status")).to_have_text("draft")
    accessible(sam)

    # ada, admin, sees the finding marked in the text and waives it for the reviewer to judge
    ada = signed_in(browser, served, team.admin, "ada")
    ada.goto(revision_2)
    expect(ada.locator("mark.finding-mark")).to_have_text("cures acne")
    ada.get_by_label("Why is finding 1 a false positive?").fill("let the reviewer judge it")
    ada.get_by_role("button", name="Waive finding 1").click()
    expect(ada.get_by_role("status")).to_contain_text("Waived the drug-claim finding")

    # now sam submits it, and cannot approve what he wrote
    sam.goto(revision_2)
    sam.get_by_role("button", name="Submit revision 2 for review").click()
    expect(sam.get_by_role("status")).to_contain_text("now in review")
    sam.get_by_label("Approval note: what you checked").fill("looks fine to me")
    sam.get_by_role("button", name="Approve revision 2").click()
    expect(alert(sam)).to_contain_text("sam wrote revision 2 of gut-skin-axis (en-US)")
    expect(alert(sam)).to_contain_text("four eyes")
    expect(sam.get_by_test_id("status")).to_have_text("in review")

    # rob, reviewer, finds it in the queue by its finding and rejects it
    rob = signed_in(browser, served, team.reviewer, "rob")
    rob.get_by_label("Finding").select_option("drug-claim")
    rob.get_by_role("button", name="Filter").click()
    queued = rob.get_by_role("link", name="The gut–skin axis")
    expect(queued).to_have_count(1)
    accessible(rob)
    screenshot(rob, "console-queue.png")
    queued.click()
    expect(rob.locator("mark.finding-mark")).to_have_text("cures acne")
    expect(rob.locator(".diff ins")).to_contain_text(DRUG_CLAIM)
    expect(rob.locator(".rendered")).to_contain_text(DRUG_CLAIM)
    expect(rob.get_by_role("link", name="DOI 10.3389/fmicb.2018.01459")).to_have_attribute(
        "href", "https://doi.org/10.3389/fmicb.2018.01459"
    )
    accessible(rob)
    screenshot(rob, "console-revision.png", full_page=True)
    rob.get_by_label("Reason for rejecting: what the author must change").fill(
        "Drug claim: say what research looked at instead"
    )
    rob.get_by_role("button", name="Reject revision 2").click()
    expect(rob.get_by_role("status")).to_contain_text("now rejected")

    # sam writes revision 3 (seed files, as always) and submits it here
    beside_the_browser(
        lambda: write_revision(served.cli, served.review.seed, served.review.sam, f"\n{FIXED}\n")
    )
    sam.goto("/console/entries/gut-skin-axis/en-US/3")
    sam.get_by_role("button", name="Submit revision 3 for review").click()
    expect(sam.get_by_role("status")).to_contain_text("now in review")

    # rob approves it after reading what changes against the live revision
    rob.get_by_role("link", name="Review queue").click()
    rob.get_by_role("link", name="The gut–skin axis").click()
    expect(rob.locator(".diff ins")).to_contain_text(FIXED)
    rob.get_by_label("Approval note: what you checked").fill("Advice only, sources unchanged")
    rob.get_by_role("button", name="Approve revision 3").click()
    expect(rob.get_by_role("status")).to_contain_text("now approved")
    rob.get_by_role("link", name="Due for re-review").click()
    accessible(rob)

    # pat, publisher, previews the next release and publishes it
    pat = signed_in(browser, served, team.publisher, "pat")
    pat.get_by_role("link", name="Next release").click()
    expect(pat.get_by_role("heading", name="gut-skin-axis (en-US) revision 3")).to_be_visible()
    expect(pat.locator(".diff ins")).to_contain_text(FIXED)
    accessible(pat)
    screenshot(pat, "console-release.png", full_page=True)
    pat.get_by_label("Release note: why this release exists").fill("Dermatologist advice")
    pat.get_by_role("button", name="Publish the next release").click()
    expect(pat.get_by_role("status")).to_contain_text("Published release 2: Dermatologist advice")
    pat.goto("/console/entries/gut-skin-axis")
    expect(pat.get_by_role("button", name="Roll back to revision 1")).to_be_visible()
    accessible(pat)

    # a partner's page shows the new text at once
    answer = httpx.post(f"{served.base}/graphql", json={"query": PARTNER_QUERY}, timeout=10)
    snippet = answer.json()["data"]["snippet"]
    assert snippet["version"] == 3
    assert FIXED in snippet["body"]["text"]
    assert "cures acne" not in snippet["body"]["text"]

    # and the audit log says who did what
    ada.get_by_role("link", name="Audit log").click()
    for action in ("finding.waive", "revision.submit", "revision.reject", "release.publish"):
        expect(ada.get_by_role("cell", name=action, exact=True).first).to_be_visible()
    accessible(ada)


def test_pages_keep_to_their_security_policy_and_work_by_keyboard(
    browser: Browser, served: Served
) -> None:
    context = browser.new_context(base_url=served.base, viewport=VIEWPORT)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text))
    page.goto("/console/sign-in")

    # by keyboard alone: the skip link first, then the key field, Enter signs in
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"  # focus is visible
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Staff API key")).to_be_focused()
    page.keyboard.type(served.review.team.admin)
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("Signed in as ada")

    for path in (
        "/console/",
        "/console/due",
        "/console/release",
        "/console/audit",
        "/console/entries/gut-skin-axis",
        "/console/entries/gut-skin-axis/en-US/2",
    ):
        page.goto(path)
        # the stylesheet applies: nothing of the page is inline
        assert (
            page.evaluate("getComputedStyle(document.querySelector('.masthead')).backgroundColor")
            == "rgb(27, 31, 36)"
        )
    with pytest.raises(Error, match="Content Security Policy"):
        page.add_script_tag(content="window.injected = true")
    assert page.evaluate("typeof window.injected") == "undefined"
    context.close()
    violations = [text for text in refused if "Content Security Policy" in text]
    assert len(violations) == 1, refused  # the script refused above, and nothing else
