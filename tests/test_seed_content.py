"""The seed content a brand can stand behind: cited, worded to the evidence, with its disclaimers."""

from __future__ import annotations

import re

import pytest

from service.config import PROJECT_ROOT
from service.content.models import DisclaimerKind, EntryKind
from service.content.schemas import CitationFile, DisclaimerFront, SnippetFront, TakeawayFile
from service.content.seedfiles import EntryDraft, read_seed
from tests.conftest import SEED

REFERENCES = PROJECT_ROOT.parent / "shared" / "content-source" / "references.md"
FDA_101_93_C = (
    "This statement has not been evaluated by the Food and Drug Administration. "
    "This product is not intended to diagnose, treat, cure, or prevent any disease."
)
OVERSTATEMENTS = [
    r"\bconfirm", r"\bprove[nds]?\b", r"truth is simple", r"\bcures?\b", r"\bguarantee",
    r"\bwill (improve|reduce|restore|clear)", r"\bheals?\b", r"starts from within",
]  # fmt: skip

seed = read_seed(SEED)


def entries(kind: EntryKind, locale: str = "en-US") -> dict[str, EntryDraft]:
    return {d.key: d for d in seed.entries if d.kind is kind and d.locale == locale}


def test_the_eight_snippets_of_the_article_are_there() -> None:
    snippets = entries(EntryKind.SNIPPET)
    topics = {
        topic
        for draft in snippets.values()
        if isinstance(draft.front, SnippetFront)
        for topic in draft.front.topics
    }
    assert len(snippets) >= 8
    assert {
        "microbiome", "gut-skin-axis", "gut-dysbiosis", "gut-barrier", "probiotics", "prebiotics",
        "secretome",
    } <= topics  # fmt: skip
    assert "probiotics-and-prebiotics" in snippets


def test_the_four_key_takeaways_are_ordered_within_their_topic() -> None:
    takeaways = [
        d.front for d in entries(EntryKind.TAKEAWAY).values() if isinstance(d.front, TakeawayFile)
    ]
    by_topic = sorted((t.topic, t.position) for t in takeaways)
    assert by_topic == [
        ("gut-skin-axis", 1),
        ("gut-skin-axis", 2),
        ("gut-skin-axis", 3),
        ("gut-skin-axis", 4),
    ]


def test_disclaimers_cover_medical_advice_fda_and_cosmetic_claims() -> None:
    by_kind = {
        d.front.kind: d
        for d in entries(EntryKind.DISCLAIMER).values()
        if isinstance(d.front, DisclaimerFront)
    }
    assert set(by_kind) == set(DisclaimerKind)
    fda = by_kind[DisclaimerKind.FDA_STRUCTURE_FUNCTION]
    assert fda.body.strip() == FDA_101_93_C
    assert fda.front.markets == ["US"]
    assert {"EU", "GB"} <= set(by_kind[DisclaimerKind.COSMETIC].front.markets)


def test_every_snippet_requires_the_not_medical_advice_disclaimer() -> None:
    for draft in seed.entries:
        if isinstance(draft.front, SnippetFront):
            assert "not-medical-advice" in draft.front.disclaimers, draft.source.path


def test_supplement_snippets_shown_in_the_us_carry_the_fda_disclaimer() -> None:
    for draft in seed.entries:
        front = draft.front
        if (
            isinstance(front, SnippetFront)
            and "supplement" in front.categories
            and "US" in front.markets
        ):
            assert "fda-structure-function" in front.disclaimers, draft.source.path


@pytest.mark.skipif(
    not REFERENCES.exists(), reason="the verified references are not beside the repo"
)
def test_every_citation_is_one_of_the_verified_references() -> None:
    rows = {}
    for line in REFERENCES.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"[a-z]+-\d{4}", cells[0]):
            rows[cells[0]] = (cells[2] or None, cells[3] or None)
    citations = [c for c in seed.catalog("citations") if isinstance(c, CitationFile)]
    assert citations
    for citation in citations:
        assert citation.key in rows, f"{citation.key} is not in references.md"
        assert (citation.doi, citation.pmid) == rows[citation.key], citation.key


def test_wording_does_not_overstate_the_evidence() -> None:
    for draft in seed.entries:
        if isinstance(draft.front, DisclaimerFront):
            continue  # the FDA text says "cure" on purpose: to deny it
        text = " ".join(
            str(getattr(draft.front, name, "")) for name in ("title", "summary", "text")
        ) + " " + draft.body  # fmt: skip
        for pattern in OVERSTATEMENTS:
            assert not re.search(pattern, text, re.IGNORECASE), f"{draft.source.path}: {pattern}"


def test_a_second_locale_exists_for_several_entries() -> None:
    translated = {(d.kind, d.key) for d in seed.entries if d.locale == "fr-FR"}
    assert len(translated) >= 3
    assert any(kind is EntryKind.SNIPPET for kind, _ in translated)
    assert any(kind is EntryKind.TAKEAWAY for kind, _ in translated)
