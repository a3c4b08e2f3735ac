"""The GraphQL API as a front-end developer uses it, against the published seed content."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.content.models import EntryKind
from service.content.schemas import DisclaimerFront, SnippetFront, TakeawayFile
from service.content.seedfiles import read_seed
from tests.conftest import SEED
from tests.helpers import data, error, gql

SEEDED = read_seed(SEED)
SNIPPETS_EN = {
    d.key: d.front
    for d in SEEDED.entries
    if isinstance(d.front, SnippetFront) and d.locale == "en-US"
}
FDA_TEXT = (
    "This statement has not been evaluated by the Food and Drug Administration. "
    "This product is not intended to diagnose, treat, cure, or prevent any disease."
)

SNIPPET_FIELDS = """
  key locale version title summary evidence tags contentHash markets
  body { markdown html text }
  topics { key name description }
  conditions { key name }
  citations { key title authors journal year doi pmid url studyType }
  release { number note publishedAt }
"""


def keys(items: list[dict[str, Any]]) -> list[str]:
    return [item["key"] for item in items]


# --- releases ---------------------------------------------------------------------------------


def test_release_is_the_latest_by_default_and_null_when_unknown(client: TestClient) -> None:
    result = data(
        client,
        "{ latest: release { id number note publishedAt } one: release(id: 1) { id number } none: release(id: 9) { id } }",
    )
    assert result["latest"]["number"] == 1
    assert result["latest"]["note"] == "Seed content, approved automatically for development"
    assert result["latest"]["publishedAt"].endswith("+00:00")
    assert result["one"] == {"id": result["latest"]["id"], "number": 1}
    assert result["none"] is None


def test_a_release_that_does_not_exist_is_not_found(client: TestClient) -> None:
    assert error(client, '{ snippet(key: "probiotics", release: 42) { key } }') == {
        "message": "release 42 does not exist; the latest is 1",
        "code": "NOT_FOUND",
    }
    assert error(client, "{ snippets(release: 0) { totalCount } }") == {
        "message": "release must be 1 or more, not 0",
        "code": "BAD_USER_INPUT",
    }


# --- one snippet ------------------------------------------------------------------------------


def test_snippet_by_key_has_every_field_of_the_contract(client: TestClient) -> None:
    snippet = data(client, f'{{ snippet(key: "microbiome-basics") {{ {SNIPPET_FIELDS} }} }}')[
        "snippet"
    ]
    front = SNIPPETS_EN["microbiome-basics"]
    assert snippet["key"] == "microbiome-basics"
    assert snippet["locale"] == "en-US"
    assert snippet["version"] == 1
    assert snippet["title"] == front.title
    assert snippet["summary"] == front.summary
    assert snippet["evidence"] == front.evidence.name
    assert snippet["tags"] == front.tags
    assert snippet["markets"] == front.markets
    assert keys(snippet["topics"]) == front.topics
    assert all(topic["name"] for topic in snippet["topics"])
    assert keys(snippet["conditions"]) == front.conditions
    assert [c["key"] for c in snippet["citations"]] == front.citations
    assert len(snippet["contentHash"]) == 64
    assert snippet["release"]["number"] == 1
    body = snippet["body"]
    assert body["markdown"].startswith("The **microbiome**")
    assert body["html"].startswith("<p>The <strong>microbiome</strong>")
    assert "<ul>" in body["html"]
    assert body["text"].startswith("The microbiome")
    assert "*" not in body["text"]
    assert "<" not in body["text"]


def test_citations_carry_doi_pmid_and_a_url(client: TestClient) -> None:
    snippet = data(
        client, '{ snippet(key: "gut-skin-axis") { citations { key doi pmid url year } } }'
    )["snippet"]
    salem = next(c for c in snippet["citations"] if c["key"] == "salem-2018")
    assert salem == {
        "key": "salem-2018",
        "doi": "10.3389/fmicb.2018.01459",
        "pmid": "30042740",
        "url": "https://doi.org/10.3389/fmicb.2018.01459",
        "year": 2018,
    }


def test_an_unknown_snippet_is_null_not_an_error(client: TestClient) -> None:
    assert gql(client, '{ snippet(key: "no-such-snippet") { key } }') == {"data": {"snippet": None}}


def test_snippet_disclaimers_are_those_it_requires_in_that_market(client: TestClient) -> None:
    query = """query ($market: String!) { snippet(key: "probiotics") {
        disclaimers(market: $market) { key kind text markets } } }"""
    us = data(client, query, {"market": "US"})["snippet"]["disclaimers"]
    assert keys(us) == ["not-medical-advice", "fda-structure-function"]
    assert us[1]["kind"] == "FDA_STRUCTURE_FUNCTION"
    assert us[1]["text"] == FDA_TEXT
    eu = data(client, query, {"market": "EU"})["snippet"]["disclaimers"]
    assert keys(eu) == ["not-medical-advice"]  # the FDA statement does not apply in the EU
    assert error(client, query, {"market": "XX"}) == {
        "message": "unknown market 'XX'; known markets: EU, FR, GB, US",
        "code": "BAD_USER_INPUT",
    }


# --- locales ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asked", "served"),
    [
        ("fr-FR", "fr-FR"),  # exact
        ("fr-CA", "fr-FR"),  # the language alone
        ("fr", "fr-FR"),
        ("de-DE", "en-US"),  # the default
        ("en-GB", "en-US"),
        ("EN-us", "en-US"),  # BCP 47 is case-insensitive
    ],
)
def test_locale_falls_back_per_entry(client: TestClient, asked: str, served: str) -> None:
    result = data(
        client,
        'query ($l: String) { a: snippet(key: "probiotics", locale: $l) { locale title }'
        ' b: snippet(key: "prebiotics", locale: $l) { locale } }',
        {"l": asked},
    )
    assert result["a"]["locale"] == served
    assert result["b"]["locale"] == ("en-US" if served == "fr-FR" else served)  # no French file
    if served == "fr-FR":
        assert "probiotiques" in result["a"]["title"].lower()


@pytest.mark.parametrize("locale", ["english", "en_US", "xx-YY", "", "fr-FR-x-"])
def test_an_unknown_or_malformed_locale_is_an_error(client: TestClient, locale: str) -> None:
    found = error(
        client, "query ($l: String) { snippets(locale: $l) { totalCount } }", {"l": locale}
    )
    assert found["code"] == "BAD_USER_INPUT"
    assert found["message"] == (
        f"unknown or malformed locale {locale!r}: use a BCP 47 tag such as 'en-US' or 'fr-FR'"
    )


def test_topic_names_follow_the_locale(client: TestClient) -> None:
    french = data(client, '{ topics(locale: "fr-FR") { key name } }')["topics"]
    english = data(client, "{ topics { key name description } }")["topics"]
    assert keys(french) == keys(english) == sorted(keys(english))
    by_key = {t["key"]: t["name"] for t in french}
    assert by_key["gut-skin-axis"] == "Axe intestin–peau"
    assert {t["key"]: t["name"] for t in english}["gut-skin-axis"] == "Gut–skin axis"


def test_catalog_lists_conditions_categories_and_markets(client: TestClient) -> None:
    result = data(
        client,
        "{ conditions { key name } categories { key name } markets { code name defaultLocale locales } }",
    )
    assert "acne" in keys(result["conditions"])
    assert keys(result["categories"]) == ["skincare", "supplement"]
    assert [m["code"] for m in result["markets"]] == ["EU", "FR", "GB", "US"]
    assert {
        "code": "US",
        "name": "United States",
        "defaultLocale": "en-US",
        "locales": ["en-US"],
    } in result["markets"]


# --- the snippet connection -------------------------------------------------------------------


def test_paging_through_snippets_visits_each_once_in_key_order(client: TestClient) -> None:
    query = """query ($after: String) { snippets(first: 3, after: $after) {
        totalCount edges { cursor node { key } } nodes { key }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = data(client, query, {"after": after})["snippets"]
        assert page["totalCount"] == len(SNIPPETS_EN)
        assert keys(page["nodes"]) == [edge["node"]["key"] for edge in page["edges"]]
        assert page["pageInfo"]["hasPreviousPage"] is (after is not None)
        assert page["pageInfo"]["startCursor"] == page["edges"][0]["cursor"]
        seen.extend(edge["node"]["key"] for edge in page["edges"])
        pages += 1
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(SNIPPETS_EN)
    assert pages == 3


def test_page_size_is_limited_and_cursors_are_checked(client: TestClient) -> None:
    assert error(client, "{ snippets(first: 101) { totalCount } }") == {
        "message": "first must be between 0 and 100, not 101",
        "code": "BAD_USER_INPUT",
    }
    assert error(client, "{ snippets(first: -1) { totalCount } }")["code"] == "BAD_USER_INPUT"
    assert error(client, '{ snippets(after: "not-a-cursor") { totalCount } }') == {
        "message": "after: 'not-a-cursor' is not a cursor from this API",
        "code": "BAD_USER_INPUT",
    }
    empty = data(
        client, "{ snippets(first: 0) { totalCount edges { cursor } pageInfo { hasNextPage } } }"
    )
    assert empty["snippets"] == {"totalCount": 8, "edges": [], "pageInfo": {"hasNextPage": True}}


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        (
            {"topic": "probiotics"},
            sorted(k for k, f in SNIPPETS_EN.items() if "probiotics" in f.topics),
        ),
        (
            {"condition": "acne"},
            sorted(k for k, f in SNIPPETS_EN.items() if "acne" in f.conditions),
        ),
        ({"tag": "overview"}, sorted(k for k, f in SNIPPETS_EN.items() if "overview" in f.tags)),
        (
            {"evidence": "EMERGING"},
            sorted(k for k, f in SNIPPETS_EN.items() if f.evidence.value == "emerging"),
        ),
        ({"market": "US"}, sorted(k for k, f in SNIPPETS_EN.items() if "US" in f.markets)),
        (
            {"topic": "gut-skin-axis", "condition": "psoriasis"},
            sorted(
                k
                for k, f in SNIPPETS_EN.items()
                if "gut-skin-axis" in f.topics and "psoriasis" in f.conditions
            ),
        ),
        ({"tag": "no-such-tag"}, []),
    ],
)
def test_filters_select_the_snippets_whose_files_say_so(
    client: TestClient, filter_: dict[str, str], expected: list[str]
) -> None:
    result = data(
        client,
        "query ($f: SnippetFilter) { snippets(filter: $f, first: 100) { totalCount nodes { key } } }",
        {"f": filter_},
    )["snippets"]
    assert keys(result["nodes"]) == expected
    assert result["totalCount"] == len(expected)
    assert expected or filter_ == {"tag": "no-such-tag"}


@pytest.mark.parametrize(
    ("filter_", "message"),
    [
        (
            {"topic": "skin"},
            "unknown topic 'skin'; known topics: gut-barrier, gut-dysbiosis, gut-skin-axis, microbiome, prebiotics, probiotics, secretome",
        ),
        (
            {"condition": "eczema"},
            "unknown condition 'eczema'; known conditions: acne, atopic-dermatitis, dandruff, psoriasis, rosacea, skin-barrier, skin-inflammation",
        ),
        ({"market": "DE"}, "unknown market 'DE'; known markets: EU, FR, GB, US"),
    ],
)
def test_unknown_filter_values_are_errors_listing_the_known_ones(
    client: TestClient, filter_: dict[str, str], message: str
) -> None:
    query = "query ($f: SnippetFilter) { snippets(filter: $f) { totalCount } }"
    assert error(client, query, {"f": filter_}) == {"message": message, "code": "BAD_USER_INPUT"}


def test_an_invalid_evidence_level_is_refused_by_the_schema(client: TestClient) -> None:
    found = error(client, "query { snippets(filter: {evidence: PROVEN}) { totalCount } }")
    assert found["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "PROVEN" in found["message"]


# --- takeaways and disclaimers ----------------------------------------------------------------


def test_takeaways_come_in_order_within_their_topic(client: TestClient) -> None:
    result = data(
        client,
        """{ takeaways(topic: "gut-skin-axis") {
        key locale version position text topic { key name } citations { key } release { number } } }""",
    )
    takeaways = result["takeaways"]
    expected = sorted(
        (d.front.position, d.key)
        for d in SEEDED.entries
        if isinstance(d.front, TakeawayFile) and d.locale == "en-US"
    )
    assert [(t["position"], t["key"]) for t in takeaways] == expected
    assert all(t["topic"]["key"] == "gut-skin-axis" and t["citations"] for t in takeaways)
    assert all(t["text"] and "<" not in t["text"] for t in takeaways)
    assert data(client, '{ takeaways(topic: "secretome") { key } }') == {"takeaways": []}
    assert error(client, '{ takeaways(topic: "nope") { key } }')["code"] == "BAD_USER_INPUT"


def test_takeaways_fall_back_per_entry(client: TestClient) -> None:
    takeaways = data(client, '{ takeaways(locale: "fr-FR") { key locale position } }')["takeaways"]
    french = {d.key for d in SEEDED.entries if d.kind is EntryKind.TAKEAWAY and d.locale == "fr-FR"}
    assert {t["key"] for t in takeaways if t["locale"] == "fr-FR"} == french
    assert {t["locale"] for t in takeaways if t["key"] not in french} == {"en-US"}
    assert [t["position"] for t in takeaways] == [1, 2, 3, 4]


def test_disclaimers_for_a_market(client: TestClient) -> None:
    query = "query ($m: String!, $l: String) { disclaimers(market: $m, locale: $l) { key kind title text html markets version locale release { number } } }"
    us = data(client, query, {"m": "US"})["disclaimers"]
    assert [d["kind"] for d in us] == ["NOT_MEDICAL_ADVICE", "FDA_STRUCTURE_FUNCTION"]
    fda = next(d for d in us if d["kind"] == "FDA_STRUCTURE_FUNCTION")
    assert fda["text"] == FDA_TEXT
    assert fda["html"] == f"<p>{FDA_TEXT}</p>"
    assert fda["markets"] == ["US"]
    eu = data(client, query, {"m": "EU", "l": "fr-FR"})["disclaimers"]
    assert [d["kind"] for d in eu] == ["NOT_MEDICAL_ADVICE", "COSMETIC"]
    assert {d["locale"] for d in eu} == {"fr-FR"}
    expected_eu = {
        d.key
        for d in SEEDED.entries
        if isinstance(d.front, DisclaimerFront) and "EU" in d.front.markets
    }
    assert {d["key"] for d in eu} == expected_eu
    assert error(client, query, {"m": "Mars"})["code"] == "BAD_USER_INPUT"


# --- the product page -------------------------------------------------------------------------

PRODUCT_PAGE = """query ($p: ProductInput!, $m: String!, $l: String, $r: Int) {
  productPage(product: $p, market: $m, locale: $l, release: $r) {
    release { number } market locale
    snippets { key locale title }
    takeaways { key position topic { key } }
    disclaimers { key kind }
  } }"""


def test_a_supplement_page_for_acne_in_the_us(client: TestClient) -> None:
    page = data(
        client, PRODUCT_PAGE, {"p": {"category": "supplement", "concerns": ["acne"]}, "m": "US"}
    )["productPage"]
    assert page["release"] == {"number": 1}
    assert (page["market"], page["locale"]) == ("US", "en-US")
    fitting = [
        k for k, f in SNIPPETS_EN.items()
        if "US" in f.markets and (not f.categories or "supplement" in f.categories) and "acne" in f.conditions
    ]  # fmt: skip
    assert sorted(keys(page["snippets"])) == sorted(fitting)
    assert [(t["position"]) for t in page["takeaways"]] == [1, 2, 3, 4]
    # deduplicated, in a stable order: medical advice first
    assert keys(page["disclaimers"]) == ["not-medical-advice", "fda-structure-function"]


def test_the_most_relevant_snippets_come_first(client: TestClient) -> None:
    page = data(
        client,
        PRODUCT_PAGE,
        {"p": {"concerns": ["acne", "psoriasis"], "topics": ["gut-dysbiosis"]}, "m": "US"},
    )["productPage"]
    snippets = keys(page["snippets"])
    assert snippets[0] == "gut-dysbiosis-skin"  # shares the topic and both concerns
    assert (
        data(
            client,
            PRODUCT_PAGE,
            {"p": {"concerns": ["acne", "psoriasis"], "topics": ["gut-dysbiosis"]}, "m": "US"},
        )["productPage"]
        == page
    )


def test_a_skincare_page_in_the_eu_shows_the_cosmetic_disclaimer_not_the_fda_one(
    client: TestClient,
) -> None:
    page = data(
        client,
        PRODUCT_PAGE,
        {"p": {"category": "skincare", "topics": ["secretome"]}, "m": "EU", "l": "fr-FR"},
    )["productPage"]
    assert keys(page["snippets"]) == ["secretome"]
    assert keys(page["disclaimers"]) == ["not-medical-advice", "cosmetic-claims-eu-uk"]
    assert page["locale"] == "fr-FR"


def test_a_page_with_nothing_known_about_the_product_shows_every_snippet_for_the_market(
    client: TestClient,
) -> None:
    page = data(client, PRODUCT_PAGE, {"p": {}, "m": "GB"})["productPage"]
    assert sorted(keys(page["snippets"])) == sorted(
        k for k, f in SNIPPETS_EN.items() if "GB" in f.markets
    )
    kinds = {d["kind"] for d in page["disclaimers"]}
    assert "COSMETIC" in kinds
    assert "FDA_STRUCTURE_FUNCTION" not in kinds  # a US-only text


@pytest.mark.parametrize(
    ("product", "message"),
    [
        ({"category": "shoes"}, "unknown category 'shoes'; known categories: skincare, supplement"),
        (
            {"concerns": ["acne", "wrinkles"]},
            "unknown condition 'wrinkles'; known conditions: acne, atopic-dermatitis, dandruff, psoriasis, rosacea, skin-barrier, skin-inflammation",
        ),
        (
            {"topics": ["collagen"]},
            "unknown topic 'collagen'; known topics: gut-barrier, gut-dysbiosis, gut-skin-axis, microbiome, prebiotics, probiotics, secretome",
        ),
    ],
)
def test_unknown_product_values_are_errors_listing_the_known_ones(
    client: TestClient, product: dict[str, Any], message: str
) -> None:
    assert error(client, PRODUCT_PAGE, {"p": product, "m": "US"}) == {
        "message": message,
        "code": "BAD_USER_INPUT",
    }


def test_product_page_market_and_release_are_checked(client: TestClient) -> None:
    assert error(client, PRODUCT_PAGE, {"p": {}, "m": "XX"})["code"] == "BAD_USER_INPUT"
    assert error(client, PRODUCT_PAGE, {"p": {}, "m": "US", "r": 5}) == {
        "message": "release 5 does not exist; the latest is 1",
        "code": "NOT_FOUND",
    }


# --- the HTTP surface -------------------------------------------------------------------------


def test_queries_work_over_get_as_well_as_post(client: TestClient) -> None:
    query = "query ($k: String!) { snippet(key: $k) { key version } }"
    by_get = gql(client, query, {"k": "probiotics"}, get=True)
    assert (
        by_get
        == gql(client, query, {"k": "probiotics"})
        == {"data": {"snippet": {"key": "probiotics", "version": 1}}}
    )


def test_graphiql_is_served_in_development(client: TestClient) -> None:
    response = client.get("/graphql", headers={"accept": "text/html"})
    assert response.status_code == 200
    assert "graphiql" in response.text.lower()


def test_malformed_documents_get_codes(client: TestClient) -> None:
    assert error(client, "{ snippet(key: ")["code"] == "GRAPHQL_PARSE_FAILED"
    assert error(client, "{ nope }") == {
        "message": "Cannot query field 'nope' on type 'Query'. Did you mean 'node'?",
        "code": "GRAPHQL_VALIDATION_FAILED",
    }
    assert (
        error(client, "query ($k: String!) { snippet(key: $k) { key } }", {"k": 5})["code"]
        == "BAD_USER_INPUT"
    )


def test_browsers_on_partner_sites_may_call_the_api(client: TestClient) -> None:
    preflight = client.options(
        "/graphql",
        headers={
            "origin": "https://shop.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] in {"*", "https://shop.example"}
    response = client.post(
        "/graphql", json={"query": "{ release { id } }"}, headers={"origin": "https://shop.example"}
    )
    assert response.headers["access-control-allow-origin"] == "*"
