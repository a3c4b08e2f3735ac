"""Partner keys: created by admins with markets and locales, shown once, listed without the
secret, revoked at once; a partner key never acts as staff."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.config import Settings
from tests.helpers import invoke, query
from tests.vetting_helpers import make_team, small_seed


@pytest.fixture(autouse=True)
def catalog(cli: CliRunner, settings: Settings, tmp_path: Path) -> None:
    """The markets catalog comes with the seed content."""
    assert invoke(cli, "seed", str(small_seed(tmp_path / "seed"))).exit_code == 0


def create(cli: CliRunner, *args: str) -> tuple[int, str]:
    result = invoke(cli, "keys", "create", *args)
    return result.exit_code, result.output


def test_an_admin_creates_a_scoped_partner_key_shown_once(
    cli: CliRunner, settings: Settings
) -> None:
    team = make_team(cli)
    result = invoke(
        cli, "keys", "create", "--partner", "Acme Shop", "--markets", "US,FR",
        "--locales", "en-US,fr-fr", "--expires", "2099-12-31", "--key", team.admin,
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert secret.startswith("gsk_p_")
    assert "markets US, FR, locales en-US, fr-FR, expires 2099-12-31" in result.output
    stored = query(
        settings.database_url,
        "SELECT prefix, secret_hash, partner, markets, locales FROM api_keys WHERE kind = 'partner'",
    )
    assert len(stored) == 1
    prefix, secret_hash, partner, _, _ = stored[0]
    assert secret.startswith(prefix)
    assert secret not in secret_hash
    assert partner == "Acme Shop"
    listing = invoke(cli, "keys", "list").output
    assert prefix in listing
    assert "US, FR" in listing
    assert secret not in listing


def test_bad_scopes_and_non_admins_are_refused_and_nothing_is_stored(
    cli: CliRunner, settings: Settings
) -> None:
    team = make_team(cli)
    base = ["--partner", "Acme", "--key", team.admin]

    assert "unknown market 'XX'" in create(cli, *base, "--markets", "XX", "--locales", "en-US")[1]
    assert (
        "'en_US' is not a BCP 47 locale"
        in create(cli, *base, "--markets", "US", "--locales", "en_US")[1]
    )
    assert (
        "is in the past"
        in create(cli, *base, "--markets", "US", "--locales", "en-US", "--expires", "2001-01-01")[1]
    )
    code, output = create(
        cli, "--partner", "Acme", "--markets", "US", "--locales", "en-US", "--key", team.editor
    )
    assert code == 1
    assert "eve may not manage staff and keys" in output
    assert query(settings.database_url, "SELECT count(*) FROM api_keys WHERE kind = 'partner'") == [
        (0,)
    ]


def test_a_partner_key_is_revoked_by_prefix_and_never_acts_as_staff(
    cli: CliRunner, settings: Settings
) -> None:
    team = make_team(cli)
    output = invoke(
        cli, "keys", "create", "--partner", "Acme", "--markets", "US", "--locales", "en-US",
        "--key", team.admin,
    )  # fmt: skip
    secret = output.stdout.strip().splitlines()[-1]

    staff_work = invoke(cli, "review", "submit", "--all", "--key", secret)
    assert staff_work.exit_code == 1
    assert "a partner key (Acme) reads published content only" in staff_work.output

    revoked = invoke(cli, "keys", "revoke", secret[:14], "--key", team.admin)
    assert revoked.exit_code == 0, revoked.output
    assert "has been revoked" in invoke(cli, "review", "submit", "--all", "--key", secret).output
    assert "revoked" in invoke(cli, "keys", "list").output


def test_the_old_spelling_of_a_market_gets_its_iso_code_in_the_message(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    team = make_team(cli)
    _, output = create(
        cli, "--partner", "Acme", "--markets", "UK", "--locales", "en-GB", "--key", team.admin
    )
    assert "unknown market 'UK' (ISO 3166-1 writes it 'GB')" in output

    seed = small_seed(tmp_path / "old")
    path = seed / "snippets/gut-skin-axis.en-US.md"
    path.write_text(path.read_text().replace("markets: [US, EU, GB, FR]", "markets: [US, UK]"))
    refused = invoke(cli, "seed", str(seed), "--dry-run")
    assert refused.exit_code == 1
    assert "write the market 'UK' as 'GB' (ISO 3166-1 alpha-2)" in refused.output
