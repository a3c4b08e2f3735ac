"""Fuzzing within the test suite, bounded so it stays quick: operations generated from the
served schema (by schemathesis) never get a server error, and any text in any field of any
locale goes through the compliance rules as findings, never a crash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from graphql import get_introspection_query
from httpx2 import Response
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.generation.case import Case

from service.app import create_app
from service.config import Settings
from service.content.models import DisclaimerKind, EntryKind, EvidenceLevel
from service.vetting.compliance import Finding, Reviewable, TextPart, check, load_rules

FUZZ = hypothesis.settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@pytest.fixture(scope="module")
def api(published: Settings) -> Iterator[TestClient]:
    # no webhook worker: a generated addWebhook must not lead to deliveries
    with TestClient(create_app(published.model_copy(update={"webhook_worker": False}))) as client:
        yield client


@pytest.fixture(scope="module")
def served_schema(api: TestClient) -> Any:
    """The schema as the running app describes it, by introspection."""
    response = api.post("/graphql", json={"query": get_introspection_query()})
    assert response.status_code == 200, response.text
    return schemathesis.graphql.from_dict(response.json()["data"])


def _check(response: Response, sent: object) -> None:
    """Fails on anything but a GraphQL answer or a coded refusal."""
    described = f"{sent!r}: {response.status_code} {response.text[:500]}"
    assert response.status_code < 500, described
    body = response.json()  # every answer is JSON
    assert isinstance(body, dict), described
    assert "data" in body or "errors" in body, described
    for error in body.get("errors") or []:
        code = error["extensions"]["code"]
        # a field that failed for want of a bug fix is a server error too, even inside a 200
        assert code != "INTERNAL", described


def _answer(api: TestClient, method: str, document: str) -> None:
    """One generated operation sent as a partner would."""
    if method == "GET":
        response = api.get("/graphql", params={"query": document})
    else:
        response = api.post("/graphql", json={"query": document})
    _check(response, (method, document))


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_operations_never_get_a_server_error(
    api: TestClient, served_schema: Any, mode: GenerationMode
) -> None:
    @FUZZ
    @given(case=served_schema.as_strategy(generation_mode=mode))
    def send(case: Case) -> None:
        document = json.loads(json.dumps(case.as_transport_kwargs()["json"]))["query"]
        _answer(api, "POST", document)
        if not document.lstrip().startswith("mutation"):
            _answer(api, "GET", document)

    send()


KNOWN = [
    "{ release { number } }",
    "query ($key: String!) { snippet(key: $key) { key title } }",
    "query A { markets { code } } query B { topics { key } }",
    "query ($f: SnippetFilter, $n: Int) { snippets(filter: $f, first: $n) { totalCount } }",
]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)
PARAMETERS = st.fixed_dictionaries(
    {},
    optional={
        "query": st.sampled_from(KNOWN) | st.text(max_size=60) | JSON_VALUES,
        "variables": st.dictionaries(st.sampled_from(["key", "f", "n", "x"]), JSON_VALUES)
        | JSON_VALUES,
        "operationName": st.sampled_from(["A", "B", "C"]) | JSON_VALUES,
        "extensions": JSON_VALUES,
    },
)


@FUZZ
@given(body=PARAMETERS | st.lists(PARAMETERS, max_size=3) | JSON_VALUES)
def test_any_json_body_gets_an_answer_or_a_coded_refusal(api: TestClient, body: Any) -> None:
    # not json=: a float such as NaN or 1e400 goes as Python writes it, which is not JSON
    sent = json.dumps(body).encode()
    response = api.post("/graphql", content=sent, headers={"content-type": "application/json"})
    _check(response, body)
    assert response.status_code in {200, 400}, (body, response.text)


@FUZZ
@given(body=st.binary(max_size=300))
def test_any_bytes_get_a_coded_refusal(api: TestClient, body: bytes) -> None:
    response = api.post("/graphql", content=body, headers={"content-type": "application/json"})
    _check(response, body)


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["query", "variables", "operationName", "extensions", "x"]),
        st.sampled_from(KNOWN) | st.text(max_size=40) | JSON_VALUES.map(json.dumps),
    )
)
def test_any_query_string_gets_an_answer_or_a_coded_refusal(
    api: TestClient, params: dict[str, str]
) -> None:
    response = api.get("/graphql", params=params, headers={"accept": "application/json"})
    _check(response, params)


# --- the compliance rules: any text, any locale -------------------------------------------------


def _rule_sentences() -> list[str]:
    """The example sentences beside every rule, in every language: text that makes rules fire
    (and stay quiet), to cut and splice with arbitrary text."""
    sentences = []
    for rule in load_rules().rules:
        for language in rule.languages.values():
            examples = language.examples
            sentences.extend(example.text for example in examples.must_fire)
            sentences.extend(example.text for example in examples.must_not_fire)
    return sentences


SENTENCES = _rule_sentences()
MARKUP = ["\n", "\n\n", "**", "_", "`", "# ", "> ", "- ", "[", "](", ")", "|", "\\", "  ", "\t"]


def _text() -> st.SearchStrategy[str]:
    pieces = (
        st.sampled_from(SENTENCES)
        | st.sampled_from(SENTENCES).map(lambda sentence: sentence[: len(sentence) // 2])
        | st.sampled_from(MARKUP)
        | st.text(max_size=20)
    )
    return st.lists(pieces, max_size=12).map(" ".join) | st.text(max_size=200)


@FUZZ
@given(
    kind=st.sampled_from(list(EntryKind)),
    locale=st.sampled_from(["en-US", "fr-FR", "de-DE"]),
    title=_text(),
    summary=_text(),
    body=_text(),
    evidence=st.sampled_from([None, *(level.value for level in EvidenceLevel)]),
    citations=st.lists(st.sampled_from(["salem-2018", "oneill-2016", "x"]), max_size=3),
    categories=st.lists(st.sampled_from(["supplement", "skincare", "food"]), max_size=2),
    markets=st.lists(st.sampled_from(["US", "EU", "GB", "FR"]), max_size=3),
    conditions=st.lists(st.sampled_from(["acne", "eczema", "rosacea"]), max_size=2),
    disclaimers=st.frozensets(st.sampled_from([kind.value for kind in DisclaimerKind])),
)
def test_any_text_gives_findings_never_a_crash(
    kind: EntryKind,
    locale: str,
    title: str,
    summary: str,
    body: str,
    evidence: str | None,
    citations: list[str],
    categories: list[str],
    markets: list[str],
    conditions: list[str],
    disclaimers: frozenset[str],
) -> None:
    if kind is EntryKind.TAKEAWAY:
        parts = (TextPart("text", body, line=3, column=7),)
    else:
        parts = (
            TextPart("title", title, line=2, column=8),
            TextPart("summary", summary, line=3, column=10),
            TextPart("body", body, line=6),
        )
    item = Reviewable(
        kind=kind,
        locale=locale,
        parts=parts,
        evidence=evidence,
        citations=tuple(citations),
        substantiated_citations=frozenset(citations[:1]),
        categories=tuple(categories),
        markets=tuple(markets),
        conditions=tuple(conditions),
        disclaimer_kinds=disclaimers,
        anchors=(("citations", 4), ("disclaimers", 5)),
    )

    findings = check(item)

    fields = {part.field for part in parts} | {"citations", "disclaimers", "evidence", "locale"}
    for finding in findings:
        assert isinstance(finding, Finding)
        assert finding.field in fields, finding
        assert finding.line >= 1, finding
        assert finding.column >= 1, finding
        assert finding.end_column >= finding.column, finding
        assert finding.message.strip(), finding
        assert finding.fingerprint.startswith(f"{finding.rule}:"), finding
    assert findings == check(item)  # the same text, the same findings
