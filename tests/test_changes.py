"""The change feed as a partner's build reads it: what a reader is served, compared between two
releases, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from benchmarks.seedgen import generate
from service.app import create_app
from service.config import Settings
from service.content.operations import bootstrap_development
from tests.conftest import SEED
from tests.helpers import data, error, invoke
from tests.test_graphql_releases import statements_per_request
from tests.vetting_helpers import make_team, small_seed

CHANGES = """query ($since: Int!, $until: Int, $locale: String, $market: String, $first: Int, $after: String) {
  changes(since: $since, until: $until, locale: $locale, market: $market, first: $first, after: $after) {
    totalCount nextSince
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node {
      key kind type locale release { number }
      item {
        __typename
        ... on Snippet { id key locale version title topics { name } reviewedAt release { number } }
        ... on Takeaway { id key locale version text }
        ... on Disclaimer { id key locale version text }
      }
    } }
  }
}"""
SNIPPET = """query ($key: String!, $locale: String, $release: Int) {
  snippet(key: $key, locale: $locale, release: $release) {
    id key locale version title topics { name } reviewedAt release { number }
  }
}"""


@contextmanager
def serving(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        yield client


def publish(cli: CliRunner, seed: Path, note: str) -> None:
    seeded = invoke(cli, "seed", str(seed), "--approve")
    assert seeded.exit_code == 0, seeded.output
    published = invoke(cli, "publish", "--note", note)
    assert published.exit_code == 0, published.output
    assert "Published release" in published.output, published.output


def changes(client: TestClient, since: int, **variables: Any) -> dict[str, Any]:
    found: dict[str, Any] = data(client, CHANGES, {"since": since, **variables})["changes"]
    return found


def summary(connection: dict[str, Any]) -> dict[str, tuple[str, str, str, int]]:
    """key: (kind, type, locale served, release) for every change of a page."""
    return {
        edge["node"]["key"]: (
            edge["node"]["kind"],
            edge["node"]["type"],
            edge["node"]["locale"],
            edge["node"]["release"]["number"],
        )
        for edge in connection["edges"]
    }


def add_file(seed: Path, name: str) -> None:
    shutil.copyfile(SEED / name, seed / name)


def reword(path: Path, sentence: str) -> None:
    path.write_text(path.read_text() + f"\n{sentence}\n")


@pytest.fixture
def seed(tmp_path: Path) -> Path:
    """The smallest publishable folder: gut-skin-axis in en-US and the disclaimers it needs."""
    return small_seed(tmp_path / "small")


def test_entries_are_created_updated_and_withdrawn_across_releases(
    cli: CliRunner, settings: Settings, seed: Path
) -> None:
    publish(cli, seed, "one")
    with serving(settings) as client:
        first = changes(client, 0)
    assert first["nextSince"] == 1
    assert summary(first) == {
        "cosmetic-claims-eu-uk": ("DISCLAIMER", "CREATED", "en-US", 1),
        "fda-structure-function": ("DISCLAIMER", "CREATED", "en-US", 1),
        "gut-skin-axis": ("SNIPPET", "CREATED", "en-US", 1),
        "not-medical-advice": ("DISCLAIMER", "CREATED", "en-US", 1),
    }

    reword(seed / "snippets/gut-skin-axis.en-US.md", "A sentence added in release 2.")
    add_file(seed, "snippets/prebiotics.en-US.md")
    publish(cli, seed, "two")
    withdrawn = invoke(cli, "withdraw", "prebiotics", "--reason", "Wrong product line")
    assert withdrawn.exit_code == 0, withdrawn.output

    with serving(settings) as client:
        second = changes(client, 1, until=2)
        third = changes(client, 2)
        both = changes(client, 1)
        nothing = changes(client, 3)
        item = second["edges"][0]["node"]["item"]
        served = data(client, SNIPPET, {"key": "gut-skin-axis", "release": 2})["snippet"]
    assert second["nextSince"] == 2
    assert summary(second) == {
        "gut-skin-axis": ("SNIPPET", "UPDATED", "en-US", 2),
        "prebiotics": ("SNIPPET", "CREATED", "en-US", 2),
    }
    # the item is what snippet(key, release: until) gives, id included
    assert item == {"__typename": "Snippet", **served}
    assert item["version"] == 2
    # a withdrawal is a tombstone: key and kind, nothing to show
    assert third["nextSince"] == 3
    assert summary(third) == {"prebiotics": ("SNIPPET", "WITHDRAWN", "en-US", 3)}
    assert third["edges"][0]["node"]["item"] is None
    # created and withdrawn within the range: a reader who built release 1 never saw it
    assert summary(both) == {"gut-skin-axis": ("SNIPPET", "UPDATED", "en-US", 2)}
    assert nothing == {
        "totalCount": 0,
        "nextSince": 3,
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "edges": [],
    }


def test_locale_fallback_decides_what_changed_for_each_reader(
    cli: CliRunner, settings: Settings, seed: Path
) -> None:
    publish(cli, seed, "English only")
    add_file(seed, "snippets/gut-skin-axis.fr-FR.md")
    publish(cli, seed, "a French translation")
    reword(seed / "snippets/gut-skin-axis.en-US.md", "A sentence added in release 3.")
    publish(cli, seed, "new English text")
    withdrawn = invoke(
        cli, "withdraw", "gut-skin-axis", "--locale", "fr-FR", "--reason", "Under correction"
    )
    assert withdrawn.exit_code == 0, withdrawn.output

    def snippet_changes(client: TestClient, since: int, until: int, locale: str) -> Any:
        found = changes(client, since, until=until, locale=locale)
        return summary(found).get("gut-skin-axis")

    with serving(settings) as client:
        # a new fr-FR translation changes what fr-FR readers get, and fr-CA readers (same
        # language), not en-US or de-DE readers
        assert snippet_changes(client, 1, 2, "fr-FR") == ("SNIPPET", "UPDATED", "fr-FR", 2)
        assert snippet_changes(client, 1, 2, "fr-CA") == ("SNIPPET", "UPDATED", "fr-FR", 2)
        assert snippet_changes(client, 1, 2, "en-US") is None
        assert snippet_changes(client, 1, 2, "de-DE") is None
        # new English text: readers falling back to en-US see it, readers of fr-FR do not
        assert snippet_changes(client, 2, 3, "en-US") == ("SNIPPET", "UPDATED", "en-US", 3)
        assert snippet_changes(client, 2, 3, "de-DE") == ("SNIPPET", "UPDATED", "en-US", 3)
        assert snippet_changes(client, 2, 3, "fr-CA") is None
        # the French text withdrawn: French readers now get English, an update, not a withdrawal
        assert snippet_changes(client, 3, 4, "fr-FR") == ("SNIPPET", "UPDATED", "en-US", 4)
        assert snippet_changes(client, 3, 4, "fr-CA") == ("SNIPPET", "UPDATED", "en-US", 4)
        assert snippet_changes(client, 3, 4, "en-US") is None
        french = changes(client, 3, until=4, locale="fr-FR")["edges"][0]["node"]["item"]
        served = data(client, SNIPPET, {"key": "gut-skin-axis", "locale": "fr-FR", "release": 4})
        # across the whole range: English text from release 3, after the French one came and went
        assert snippet_changes(client, 1, 4, "fr-CA") == ("SNIPPET", "UPDATED", "en-US", 4)
    assert french["locale"] == "en-US"
    assert french == {"__typename": "Snippet", **served["snippet"]}


def test_a_market_decides_which_translation_a_reader_is_served(
    cli: CliRunner, settings: Settings, seed: Path
) -> None:
    publish(cli, seed, "English only")
    french = seed / "snippets/gut-skin-axis.fr-FR.md"
    shutil.copyfile(SEED / "snippets/gut-skin-axis.fr-FR.md", french)
    french.write_text(french.read_text().replace("markets: [US, EU, GB, FR]", "markets: [FR]"))
    publish(cli, seed, "French, cleared for France only")
    with serving(settings) as client:
        in_france = summary(changes(client, 1, locale="fr-FR", market="FR"))
        in_the_us = summary(changes(client, 1, locale="fr-FR", market="US"))
        unknown = error(client, CHANGES, {"since": 1, "market": "XX"})
    assert in_france == {"gut-skin-axis": ("SNIPPET", "UPDATED", "fr-FR", 2)}
    assert in_the_us == {}
    assert unknown["code"] == "BAD_USER_INPUT"
    assert "unknown market 'XX'" in unknown["message"]


def test_a_renamed_topic_updates_the_entries_that_show_it_in_that_locale(
    cli: CliRunner, settings: Settings, seed: Path
) -> None:
    add_file(seed, "snippets/prebiotics.en-US.md")
    publish(cli, seed, "one")
    topics = seed / "catalog/topics.yaml"
    topics.write_text(
        topics.read_text().replace("en-US: Gut–skin axis", "en-US: The gut–skin axis")
    )
    reword(seed / "snippets/prebiotics.en-US.md", "Unrelated new text.")
    publish(cli, seed, "a topic renamed in English")
    with serving(settings) as client:
        english = changes(client, 1, locale="en-US")
        french = changes(client, 1, locale="fr-FR")
    # gut-skin-axis shows the topic: its topics' names changed, though its text did not
    assert summary(english) == {
        "gut-skin-axis": ("SNIPPET", "UPDATED", "en-US", 2),
        "prebiotics": ("SNIPPET", "UPDATED", "en-US", 2),
    }
    names = [t["name"] for t in english["edges"][0]["node"]["item"]["topics"]]
    assert "The gut–skin axis" in names
    # French readers read the French name, which did not change
    assert summary(french) == {"prebiotics": ("SNIPPET", "UPDATED", "en-US", 2)}


def test_a_re_review_updates_reviewed_at_from_the_next_release(
    cli: CliRunner, settings: Settings, seed: Path
) -> None:
    publish(cli, seed, "one")
    team = make_team(cli)
    with time_machine.travel(datetime.now(UTC) + timedelta(days=400), tick=True):
        approved = invoke(
            cli, "review", "approve", "gut-skin-axis", "--locale", "en-US",
            "--note", "Still holds", "--key", team.reviewer,
        )  # fmt: skip
        assert approved.exit_code == 0, approved.output
        add_file(seed, "snippets/prebiotics.en-US.md")
        publish(cli, seed, "two")
        with serving(settings) as client:
            found = changes(client, 1)
            before = data(client, SNIPPET, {"key": "gut-skin-axis", "release": 1})["snippet"]
    assert summary(found) == {
        "gut-skin-axis": ("SNIPPET", "UPDATED", "en-US", 2),
        "prebiotics": ("SNIPPET", "CREATED", "en-US", 2),
    }
    item = found["edges"][0]["node"]["item"]
    assert item["version"] == before["version"] == 1
    assert item["reviewedAt"] > before["reviewedAt"]


def test_pages_follow_cursors_and_keep_to_the_release_of_the_first_page(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    asyncio.run(bootstrap_development(settings.model_copy(update={"seed_path": seed_copy})))
    with serving(settings) as client:
        everything = changes(client, 0, first=100)
        keys = [edge["node"]["key"] for edge in everything["edges"]]
        assert keys == sorted(keys)
        assert everything["totalCount"] == len(keys) > 5

        first = changes(client, 0, first=2)
        assert [e["node"]["key"] for e in first["edges"]] == keys[:2]
        assert first["pageInfo"]["hasNextPage"] is True
        assert first["pageInfo"]["hasPreviousPage"] is False
        assert first["totalCount"] == len(keys)

        # a release published between two pages does not move the range being paged
        reword(seed_copy / "snippets/probiotics.en-US.md", "New text in release 2.")
        publish(cli, seed_copy, "two")
        paged, after = [], first["pageInfo"]["endCursor"]
        while after is not None:
            page = changes(client, 0, first=2, after=after)
            assert page["nextSince"] == 1
            assert page["pageInfo"]["hasPreviousPage"] is True
            paged += [edge["node"]["key"] for edge in page["edges"]]
            after = page["pageInfo"]["endCursor"] if page["pageInfo"]["hasNextPage"] else None
        assert keys[:2] + paged == keys

        assert changes(client, 0)["nextSince"] == 2
        assert summary(changes(client, 1)) == {"probiotics": ("SNIPPET", "UPDATED", "en-US", 2)}
        other = error(client, CHANGES, {"since": 1, "after": first["pageInfo"]["endCursor"]})
        assert other["code"] == "BAD_USER_INPUT"
        assert "from 0 to 1" in other["message"]
        pinned = error(
            client, CHANGES, {"since": 0, "until": 2, "after": first["pageInfo"]["endCursor"]}
        )
        assert pinned["code"] == "BAD_USER_INPUT"
        foreign = error(client, CHANGES, {"since": 0, "after": "c25pcHBldDpwcm9iaW90aWNz"})
        assert foreign["code"] == "BAD_USER_INPUT"
        assert "not a cursor of the change feed" in foreign["message"]


def test_ranges_and_arguments_out_of_bounds_are_refused(
    cli: CliRunner, settings: Settings, seed: Path
) -> None:
    with serving(settings) as client:
        empty = changes(client, 0)
        assert (empty["totalCount"], empty["nextSince"], empty["edges"]) == (0, 0, [])
        assert error(client, CHANGES, {"since": 1})["code"] == "BAD_USER_INPUT"
    publish(cli, seed, "one")
    reword(seed / "snippets/gut-skin-axis.en-US.md", "Release 2.")
    publish(cli, seed, "two")
    with serving(settings) as client:
        later = error(client, CHANGES, {"since": 3})
        assert later == {
            "message": "since (3) is after the latest release (2): pass the nextSince of an "
            "earlier answer, or 0 for everything",
            "code": "BAD_USER_INPUT",
        }
        assert error(client, CHANGES, {"since": 2, "until": 1}) == {
            "message": "since (2) is after until (1)",
            "code": "BAD_USER_INPUT",
        }
        assert error(client, CHANGES, {"since": -1})["code"] == "BAD_USER_INPUT"
        assert error(client, CHANGES, {"since": 0, "until": 9}) == {
            "message": "release 9 does not exist; the latest is 2",
            "code": "NOT_FOUND",
        }
        assert error(client, CHANGES, {"since": 0, "first": 101})["code"] == "BAD_USER_INPUT"
        malformed = error(client, CHANGES, {"since": 0, "locale": "fr_FR"})
        assert malformed["code"] == "BAD_USER_INPUT"
        assert "malformed locale" in malformed["message"]
        same = changes(client, 2, until=2)
        assert (same["totalCount"], same["nextSince"]) == (0, 2)


# --- no N+1 -----------------------------------------------------------------------------------

FEED = """{ changes(since: 1, locale: "fr-CA", first: 100) { totalCount nextSince edges { cursor node {
  key kind type locale release { id number }
  item { __typename
    ... on Snippet { id key locale version title summary evidence tags contentHash markets reviewedAt
      body { html text } topics { id key name } conditions { id key name }
      citations { id key doi url } disclaimers(market: "US") { id key text } release { id number } }
    ... on Takeaway { id key version position text topic { id name } citations { id } release { id } }
    ... on Disclaimer { id key kind text markets release { id } }
  }
} } } }"""


def test_sql_statements_of_the_change_feed_do_not_grow_with_the_changes(
    settings: Settings, tmp_path: Path
) -> None:
    """Each range holds new and reworded entries, a renamed topic and a withdrawal."""
    runner = CliRunner()

    def release_with(count: int, folder: str) -> None:
        seed = generate(tmp_path / folder, count, with_project_entries=True)
        topics = seed / "catalog/topics.yaml"
        renamed = f"Barrière intestinale ({folder})"  # the name fr-CA readers read
        topics.write_text(topics.read_text().replace("Barrière intestinale", renamed))
        for n in range(count // 2):
            reword(seed / f"snippets/generated-{n:05d}.en-US.md", f"Reworded in {folder}.")
        publish(runner, seed, folder)

    asyncio.run(bootstrap_development(settings))
    release_with(2, "few")  # release 2
    assert invoke(runner, "withdraw", "secretome", "--reason", "x").exit_code == 0  # 3
    few_statements, few = statements_per_request(settings, FEED)

    release_with(80, "many")  # release 4: the same kinds of change, many more of them
    assert invoke(runner, "withdraw", "prebiotics", "--reason", "x").exit_code == 0  # 5
    many_statements, many = statements_per_request(settings, FEED.replace("since: 1", "since: 3"))

    assert many["changes"]["totalCount"] >= few["changes"]["totalCount"] * 4
    kinds = {edge["node"]["type"] for edge in many["changes"]["edges"]}
    assert kinds == {"CREATED", "UPDATED", "WITHDRAWN"}
    assert many_statements == few_statements
    assert few_statements <= 20
