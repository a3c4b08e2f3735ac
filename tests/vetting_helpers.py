"""Staff, keys and small seed folders for the workflow tests."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import SEED
from tests.helpers import invoke

# a snippet and the disclaimers it requires: the smallest folder that can be published
DISCLAIMERS = ["not-medical-advice", "fda-structure-function", "cosmetic-claims-eu-uk"]
SMALL_ENTRIES = [
    "snippets/gut-skin-axis.en-US.md",
    *(f"disclaimers/{key}.en-US.md" for key in DISCLAIMERS),
]


def small_seed(target: Path) -> Path:
    shutil.copytree(SEED / "catalog", target / "catalog")
    for name in SMALL_ENTRIES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SEED / name, target / name)
    return target


def add_staff(cli: CliRunner, name: str, *roles: str, key: str | None = None) -> str:
    """Add a staff member; the key `staff add` prints once."""
    args = ["staff", "add", name, *(part for role in roles for part in ("--role", role))]
    result = invoke(cli, *args, *(["--key", key] if key else []))
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@dataclass(frozen=True)
class Team:
    admin: str  # ada
    editor: str  # eve
    reviewer: str  # rob
    publisher: str  # pat


def make_team(cli: CliRunner) -> Team:
    admin = add_staff(cli, "ada", "admin")
    return Team(
        admin=admin,
        editor=add_staff(cli, "eve", "editor", key=admin),
        reviewer=add_staff(cli, "rob", "reviewer", key=admin),
        publisher=add_staff(cli, "pat", "publisher", key=admin),
    )


def approve_all(cli: CliRunner, seed: Path, team: Team) -> None:
    """Every entry of `seed` through submit and approval, by two different people."""
    assert invoke(cli, "review", "submit", "--all", "--key", team.editor).exit_code == 0
    for path in sorted(seed.glob("*/*.md")) + sorted(seed.glob("takeaways/*.yaml")):
        key, locale = path.name.split(".")[:2]
        result = invoke(
            cli,
            "review",
            "approve",
            key,
            "--locale",
            locale,
            "--note",
            "ok",
            "--key",
            team.reviewer,
        )
        assert result.exit_code == 0, result.output
