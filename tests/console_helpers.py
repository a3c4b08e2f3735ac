"""A database where a review is under way, and signing in to the console as a browser does."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.helpers import invoke
from tests.vetting_helpers import Team, add_staff, approve_all, make_team, small_seed

DRUG_CLAIM = "This supplement cures acne."
FIXED = "Ask a dermatologist before changing how you care for your skin."
SNIPPET = "snippets/gut-skin-axis.en-US.md"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass(frozen=True)
class Review:
    team: Team  # ada admin, eve editor, rob reviewer, pat publisher
    sam: str  # an editor who also reviews: the author of revision 2
    seed: Path


def prepare_review(cli: CliRunner, root: Path) -> Review:
    """Release 1 shows gut-skin-axis revision 1; sam has written revision 2, a draft that
    makes a drug claim (a compliance error, which blocks its submission)."""
    team = make_team(cli)
    sam = add_staff(cli, "sam", "editor", "reviewer", key=team.admin)
    seed = small_seed(root / "seed")
    assert invoke(cli, "seed", str(seed), "--key", team.editor).exit_code == 0
    approve_all(cli, seed, team)
    assert invoke(cli, "publish", "--note", "first", "--key", team.publisher).exit_code == 0
    write_revision(cli, seed, sam, f"\n{DRUG_CLAIM}\n")
    return Review(team=team, sam=sam, seed=seed)


def write_revision(cli: CliRunner, seed: Path, key: str, added: str) -> None:
    """A new revision of gut-skin-axis (en-US): revision 1's text with `added` at its end."""
    path = seed / SNIPPET
    original = path.read_text(encoding="utf-8").split(f"\n{DRUG_CLAIM}\n")[0]
    path.write_text(original + added, encoding="utf-8")
    result = invoke(cli, "seed", str(seed), "--key", key)
    assert result.exit_code == 0, result.output


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, html
    return found.group(1)


def sign_in(client: TestClient, key: str) -> httpx.Response:
    """Sign in through the form, as a browser would; the page the console lands on."""
    token = csrf_of(client.get("/console/sign-in").text)
    return client.post("/console/sign-in", data={"csrf": token, "key": key})


def post_form(client: TestClient, page: str, action: str, **fields: str) -> httpx.Response:
    """Post a form of `page` with the token that page carries."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf": token, **fields}, follow_redirects=False)
