"""Locale fallback in a market: the chain runs over the revisions cleared for that market.

The seed content is published with a few French translations cleared for France only, and
one snippet whose English text is cleared for the US only and whose French text for France
only: in the EU a French reader gets the English text where the French one is not cleared,
and the second snippet not at all.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.config import Environment, Settings
from tests.conftest import DATABASES, SEED, fresh_database
from tests.helpers import data, invoke
from tests.test_graphql_releases import statements_per_request

EVERYWHERE = "markets: [US, EU, GB, FR]"
REGIONAL = "regional-probiotics"  # en-US cleared for the US, fr-FR for France, neither for the EU


def clear_for(path: Path, markets: str) -> None:
    text = path.read_text()
    assert EVERYWHERE in text
    path.write_text(text.replace(EVERYWHERE, f"markets: {markets}"))


def prepare(seed: Path) -> None:
    """The seed content, with translations cleared for fewer markets than their English text."""
    for locale, markets in (("en-US", "[US]"), ("fr-FR", "[FR]")):
        source = (seed / f"snippets/probiotics.{locale}.md").read_text()
        target = seed / f"snippets/{REGIONAL}.{locale}.md"
        target.write_text(source.replace("key: probiotics", f"key: {REGIONAL}"))
        clear_for(target, markets)
    for name in (
        "snippets/probiotics.fr-FR.md",
        "takeaways/takeaway-gut-imbalance.fr-FR.yaml",
        "disclaimers/not-medical-advice.fr-FR.md",
    ):
        clear_for(seed / name, "[FR]")


def publish(cli: CliRunner, seed: Path, note: str, env: dict[str, str] | None = None) -> None:
    seeded = invoke(cli, "seed", str(seed), "--approve", env=env)
    assert seeded.exit_code == 0, seeded.output
    published = invoke(cli, "publish", "--note", note, env=env)
    assert published.exit_code == 0, published.output
    assert "Published release" in published.output


@pytest.fixture(scope="module", params=DATABASES)
def cleared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    """A database of each kind with the prepared content published as release 1."""
    folder = tmp_path_factory.mktemp("cleared")
    seed = folder / "seed"
    shutil.copytree(SEED, seed)
    prepare(seed)
    with fresh_database(request, request.param, folder) as url:
        env = {"CONTENT_API_DATABASE_URL": url, "CONTENT_API_ENV": "development"}
        publish(CliRunner(), seed, "Translations cleared for France only", env)
        yield Settings(database_url=url, env=Environment.DEVELOPMENT)


@pytest.fixture(scope="module")
def client(cleared: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cleared)) as test_client:
        yield test_client


def served(items: list[dict[str, Any]]) -> dict[str, str]:
    """key -> the locale served."""
    return {item["key"]: item["locale"] for item in items}


PRODUCT_PAGE = """query ($m: String!, $l: String) {
  productPage(product: {category: "supplement", concerns: ["acne"]}, market: $m, locale: $l) {
    snippets { key locale title markets }
    takeaways { key locale text }
    disclaimers { key locale title }
  } }"""


def product_page(client: TestClient, market: str, locale: str) -> dict[str, Any]:
    page: dict[str, Any] = data(client, PRODUCT_PAGE, {"m": market, "l": locale})["productPage"]
    return page


def test_a_translation_not_cleared_for_the_market_gives_way_to_the_default_locale(
    client: TestClient,
) -> None:
    page = product_page(client, "EU", "fr-FR")
    probiotics = {item["key"]: item for item in page["snippets"]}["probiotics"]
    assert probiotics["locale"] == "en-US"
    assert probiotics["title"].startswith("Probiotics: what they are")
    assert "EU" in probiotics["markets"]


def test_a_translation_cleared_for_the_market_is_served(client: TestClient) -> None:
    page = product_page(client, "FR", "fr-FR")
    probiotics = {item["key"]: item for item in page["snippets"]}["probiotics"]
    assert probiotics["locale"] == "fr-FR"
    assert probiotics["title"].startswith("Les probiotiques")
    assert probiotics["markets"] == ["FR"]


def test_an_entry_with_nothing_cleared_in_the_chain_is_left_out(client: TestClient) -> None:
    # neither locale of the regional snippet is cleared for the EU
    assert REGIONAL not in served(product_page(client, "EU", "fr-FR")["snippets"])
    # in France only its French text is cleared, which an English reader's chain never reaches
    assert REGIONAL not in served(product_page(client, "FR", "en-US")["snippets"])
    assert served(product_page(client, "FR", "fr-FR")["snippets"])[REGIONAL] == "fr-FR"
    assert served(product_page(client, "US", "fr-FR")["snippets"])[REGIONAL] == "en-US"


def test_product_page_applies_the_rule_to_snippets_takeaways_and_disclaimers(
    client: TestClient,
) -> None:
    eu = product_page(client, "EU", "fr-FR")
    assert served(eu["snippets"]) == {
        "gut-dysbiosis-skin": "en-US",
        "gut-skin-axis": "fr-FR",
        "probiotics": "en-US",
    }
    assert served(eu["takeaways"]) == {
        "takeaway-gut-skin-link": "fr-FR",
        "takeaway-gut-imbalance": "en-US",
        "takeaway-pro-prebiotics": "en-US",
        "takeaway-secretome": "en-US",
    }
    assert served(eu["disclaimers"]) == {"not-medical-advice": "en-US"}

    france = product_page(client, "FR", "fr-FR")
    assert served(france["snippets"])["probiotics"] == "fr-FR"
    assert served(france["takeaways"])["takeaway-gut-imbalance"] == "fr-FR"
    assert served(france["disclaimers"]) == {"not-medical-advice": "fr-FR"}


def test_the_takeaways_of_a_market_fall_back_per_entry(client: TestClient) -> None:
    query = """query ($m: String!) { productPage(product: {topics: ["gut-skin-axis"]}, market: $m,
      locale: "fr-FR") { takeaways { key locale position text } } }"""
    eu = data(client, query, {"m": "EU"})["productPage"]["takeaways"]
    assert [(t["key"], t["locale"], t["position"]) for t in eu] == [
        ("takeaway-gut-skin-link", "fr-FR", 1),
        ("takeaway-gut-imbalance", "en-US", 2),
        ("takeaway-pro-prebiotics", "en-US", 3),
        ("takeaway-secretome", "en-US", 4),
    ]
    assert eu[1]["text"].startswith("An imbalance in gut microorganisms")
    france = data(client, query, {"m": "FR"})["productPage"]["takeaways"]
    assert served(france)["takeaway-gut-imbalance"] == "fr-FR"
    assert france[1]["text"].startswith("Un déséquilibre")


def test_snippets_filtered_by_market_fall_back_per_entry(client: TestClient) -> None:
    query = """query ($m: String!, $l: String) {
      snippets(filter: {market: $m}, locale: $l, first: 100) { totalCount nodes { key locale } } }"""

    def listed(market: str, locale: str) -> dict[str, str]:
        connection = data(client, query, {"m": market, "l": locale})["snippets"]
        assert connection["totalCount"] == len(connection["nodes"])
        return served(connection["nodes"])

    eu = listed("EU", "fr-FR")
    assert eu["probiotics"] == "en-US"
    assert eu["gut-skin-axis"] == "fr-FR"
    assert REGIONAL not in eu
    assert listed("FR", "fr-FR")["probiotics"] == "fr-FR"
    assert listed("FR", "fr-FR")[REGIONAL] == "fr-FR"
    assert REGIONAL not in listed("FR", "en-US")
    assert listed("US", "fr-FR")[REGIONAL] == "en-US"


def test_the_disclaimers_of_a_market_fall_back_per_entry(client: TestClient) -> None:
    query = """query ($m: String!, $l: String) {
      disclaimers(market: $m, locale: $l) { key locale title } }"""
    eu = data(client, query, {"m": "EU", "l": "fr-FR"})["disclaimers"]
    assert served(eu) == {"not-medical-advice": "en-US", "cosmetic-claims-eu-uk": "fr-FR"}
    assert eu[0]["title"] == "Not medical advice"
    france = data(client, query, {"m": "FR", "l": "fr-FR"})["disclaimers"]
    assert served(france) == {"not-medical-advice": "fr-FR", "cosmetic-claims-eu-uk": "fr-FR"}


def test_the_disclaimers_a_snippet_requires_in_a_market_fall_back_per_entry(
    client: TestClient,
) -> None:
    query = """query ($l: String) { snippet(key: "probiotics", locale: $l) {
      locale eu: disclaimers(market: "EU") { key locale text }
      fr: disclaimers(market: "FR") { key locale text }
      us: disclaimers(market: "US") { key locale text } } }"""
    snippet = data(client, query, {"l": "fr-FR"})["snippet"]
    # the snippet itself is asked for without a market: its translation is served
    assert snippet["locale"] == "fr-FR"
    assert served(snippet["eu"]) == {"not-medical-advice": "en-US"}
    assert snippet["eu"][0]["text"].startswith("This content is for general education")
    assert served(snippet["fr"]) == {"not-medical-advice": "fr-FR"}
    assert served(snippet["us"]) == {
        "not-medical-advice": "en-US",
        "fda-structure-function": "en-US",
    }


def test_without_a_market_the_translation_is_served_as_before(client: TestClient) -> None:
    query = """{
      snippet(key: "probiotics", locale: "fr-FR") { locale }
      snippets(locale: "fr-FR", first: 100) { nodes { key locale } }
      takeaways(locale: "fr-FR") { key locale } }"""
    result = data(client, query)
    assert result["snippet"]["locale"] == "fr-FR"
    snippets = served(result["snippets"]["nodes"])
    assert snippets["probiotics"] == "fr-FR"
    assert snippets[REGIONAL] == "fr-FR"
    assert served(result["takeaways"])["takeaway-gut-imbalance"] == "fr-FR"


def test_falling_back_costs_no_extra_sql_statement(cleared: Settings) -> None:
    query = """{ productPage(product: {category: "supplement", concerns: ["acne"]}, market: "%s",
      locale: "fr-FR") {
        snippets { key locale title disclaimers(market: "%s") { key locale } }
        takeaways { key locale text } disclaimers { key locale text } } }"""
    with_fallback, eu = statements_per_request(cleared, query % ("EU", "EU"))
    without_fallback, france = statements_per_request(cleared, query % ("FR", "FR"))
    assert served(eu["productPage"]["snippets"])["probiotics"] == "en-US"
    assert served(france["productPage"]["snippets"])["probiotics"] == "fr-FR"
    # both are read from the release held in memory: one statement, the latest release's number
    assert with_fallback == without_fallback == 1


def test_a_pinned_release_keeps_the_locale_it_served_in_a_market(
    cli: CliRunner, settings: Settings, seed_copy: Path
) -> None:
    prepare(seed_copy)
    publish(cli, seed_copy, "Translations cleared for France only")
    # release 2 clears the French probiotics snippet for the EU as well
    probiotics = seed_copy / "snippets/probiotics.fr-FR.md"
    probiotics.write_text(probiotics.read_text().replace("markets: [FR]", "markets: [EU, FR]"))
    publish(cli, seed_copy, "French probiotics cleared for the EU")
    query = """query ($r: Int) { productPage(product: {category: "supplement"}, market: "EU",
      locale: "fr-FR", release: $r) { snippets { key locale version release { number } } } }"""
    with TestClient(create_app(settings)) as client:
        pinned = data(client, query, {"r": 1})["productPage"]["snippets"]
        latest = data(client, query, {"r": None})["productPage"]["snippets"]
    served = {"key": "probiotics"}
    assert served | {"locale": "en-US", "version": 1, "release": {"number": 1}} in pinned
    assert served | {"locale": "fr-FR", "version": 2, "release": {"number": 2}} in latest
