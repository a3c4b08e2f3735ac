"""The compliance rules: every example in the rule files, positions in Markdown and seed files,
the contexts that are not claims, and the rules about the entry as a whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.content.models import DisclaimerKind, EntryKind
from service.vetting.compliance import (
    Finding,
    Reviewable,
    RuleFileError,
    Severity,
    TextPart,
    check,
    load_rules,
)
from service.vetting.lint import reviewable as reviewable_from_draft
from service.vetting.rulefiles import RULES_DIRECTORY, Example
from tests.conftest import SEED

RULES = load_rules()
LOCALES = {"en": "en-US", "fr": "fr-FR", "de": "de-DE"}
ALL_KINDS = frozenset(kind.value for kind in DisclaimerKind)


def item(
    *texts: str,
    locale: str = "en-US",
    kind: EntryKind = EntryKind.SNIPPET,
    evidence: str | None = "limited",
    citations: tuple[str, ...] = ("salem-2018",),
    substantiated: frozenset[str] | None = None,
    categories: tuple[str, ...] = (),
    markets: tuple[str, ...] = (),
    conditions: tuple[str, ...] = (),
    disclaimers: frozenset[str] = ALL_KINDS,
    parts: tuple[TextPart, ...] = (),
) -> Reviewable:
    return Reviewable(
        kind=kind,
        locale=locale,
        parts=parts or tuple(TextPart("body", text) for text in texts),
        evidence=evidence,
        citations=citations,
        substantiated_citations=frozenset(citations) if substantiated is None else substantiated,
        categories=categories,
        markets=markets,
        conditions=conditions,
        disclaimer_kinds=disclaimers,
    )


def from_example(example: Example, language: str) -> Reviewable:
    disclaimers = example.disclaimers if example.disclaimers is not None else list(DisclaimerKind)
    return item(
        example.text,
        locale=LOCALES[language],
        kind=example.kind,
        evidence=example.evidence.value if example.evidence else None,
        citations=tuple(example.citations),
        substantiated=None if example.substantiated is None else frozenset(example.substantiated),
        categories=tuple(example.categories),
        markets=tuple(example.markets),
        conditions=tuple(example.conditions),
        disclaimers=frozenset(kind.value for kind in disclaimers),
    )


def rules_fired(reviewable: Reviewable) -> set[str]:
    return {finding.rule for finding in check(reviewable)}


def _examples(must: str) -> list[pytest.ParameterSet]:
    cases = []
    for rule in RULES.rules:
        for language, spec in rule.languages.items():
            examples = getattr(spec.examples, must)
            for index, example in enumerate(examples, start=1):
                case_id = f"{rule.id}-{language}-{index:02d}"
                cases.append(pytest.param(rule.id, language, example, id=case_id))
    return cases


# --- the examples beside each rule ----------------------------------------------------------


@pytest.mark.parametrize(("rule", "language", "example"), _examples("must_fire"))
def test_rule_fires_on_its_must_fire_example(rule: str, language: str, example: Example) -> None:
    assert rule in rules_fired(from_example(example, language)), example.text


@pytest.mark.parametrize(("rule", "language", "example"), _examples("must_not_fire"))
def test_rule_is_quiet_on_its_must_not_fire_example(
    rule: str, language: str, example: Example
) -> None:
    assert rule not in rules_fired(from_example(example, language)), example.text


def test_every_text_rule_has_ten_examples_each_way_per_language() -> None:
    for rule in RULES.text_rules:
        for language, spec in rule.spec.languages.items():
            assert len(spec.examples.must_fire) >= 10, (rule.spec.id, language)
            assert len(spec.examples.must_not_fire) >= 10, (rule.spec.id, language)
    assert {"en", "fr", "de"} <= set(RULES.lexicons)


def test_the_rule_set_is_read_once() -> None:
    assert load_rules() is RULES
    assert load_rules(RULES_DIRECTORY) is RULES


# --- positions ------------------------------------------------------------------------------


def only(findings: list[Finding], rule: str) -> Finding:
    matching = [finding for finding in findings if finding.rule == rule]
    assert len(matching) == 1, findings
    return matching[0]


def test_positions_count_markdown_as_written_but_ignore_its_syntax() -> None:
    body = "An introduction.\n\nThis **cures** [acne](https://example.com/a) fast."
    finding = only(check(item(parts=(TextPart("body", body, line=12),))), "drug-claim")
    assert (finding.field, finding.line, finding.column) == ("body", 14, 8)
    assert finding.excerpt == "cures** [acne"
    assert finding.end_column == 8 + len("cures** [acne")


def test_a_link_address_is_not_read_as_text() -> None:
    body = "Read the [review](https://example.com/probiotics-cure-acne-proven) first."
    assert check(item(body)) == []


def test_a_heading_and_a_list_item_are_sentences_of_their_own() -> None:
    body = "# Why it matters\n\n- Gut health\n- Acne is common\n\n1. Treat yourself well"
    assert check(item(body)) == []  # "treat" and "acne" are in different list items


def test_findings_in_the_title_summary_and_body_of_a_file_are_sorted_by_line() -> None:
    parts = (
        TextPart("title", "Cures acne", line=4, column=8),
        TextPart("summary", "It is clinically proven.", line=5, column=10),
        TextPart("body", "First line.\nThis miracle heals eczema.", line=14),
    )
    found = [(f.rule, f.field, f.line, f.column) for f in check(item(parts=parts))]
    assert found == [
        ("drug-claim", "title", 4, 8),
        ("overstated-certainty", "summary", 5, 10 + len("It is clinically ")),
        ("overstated-certainty", "body", 15, 6),
        ("drug-claim", "body", 15, 14),
    ]


def test_the_same_wording_twice_gets_two_fingerprints_and_rewrapping_keeps_them() -> None:
    first = check(item("It cures acne. Later, it cures acne again."))
    again = check(item("Intro.\n\nIt CURES\nacne. Later, it *cures acne* again."))
    assert [f.occurrence for f in first] == [0, 1]
    assert first[0].fingerprint != first[1].fingerprint
    assert [f.fingerprint for f in first] == [f.fingerprint for f in again]
    assert first[0].fingerprint.startswith("drug-claim:")


def test_a_seed_file_gives_front_matter_and_body_positions(seed_copy: Path) -> None:
    from service.content.seedfiles import read_seed

    path = seed_copy / "snippets/probiotics.en-US.md"
    text = path.read_text(encoding="utf-8")
    text = text.replace(
        'title: "Probiotics: what they are and what research suggests for the skin"',
        'title: "Probiotics: the miracle for the skin"',
    ).replace(
        "\nsummary: ",
        "\nsummary: >-\n  Probiotics are live microorganisms\n  that cure acne. Old text: ",
    )
    text = text.replace("Most of the evidence", "Studies confirm that most of the evidence")
    path.write_text(text, encoding="utf-8")
    seed = read_seed(seed_copy)
    draft = next(d for d in seed.entries if d.key == "probiotics" and d.locale == "en-US")
    found = {f.rule: f for f in check(reviewable_from_draft(draft, seed))}
    lines = text.split("\n")

    def where(needle: str) -> tuple[int, int]:
        line = next(i for i, value in enumerate(lines, start=1) if needle in value)
        return line, lines[line - 1].index(needle) + 1

    certainty = [
        f for f in check(reviewable_from_draft(draft, seed)) if f.rule == "overstated-certainty"
    ]
    assert [(f.field, f.line, f.column) for f in certainty] == [
        ("title", *where("miracle")),
        ("body", *where("confirm")),
    ]
    claim = found["drug-claim"]
    assert (claim.field, claim.line, claim.column, claim.excerpt) == (
        "summary", *where("cure acne"), "cure acne",
    )  # fmt: skip


def test_a_takeaway_text_is_placed_in_its_file(seed_copy: Path) -> None:
    from service.content.seedfiles import read_seed

    path = seed_copy / "takeaways/takeaway-secretome.en-US.yaml"
    text = path.read_text(encoding="utf-8").replace(
        'text: "The secretome,', 'text: "Guaranteed: the secretome,'
    )
    path.write_text(text, encoding="utf-8")
    seed = read_seed(seed_copy)
    draft = next(d for d in seed.entries if d.key == "takeaway-secretome")
    finding = only(check(reviewable_from_draft(draft, seed)), "overstated-certainty")
    line = text.split("\n").index(next(v for v in text.split("\n") if "Guaranteed" in v)) + 1
    assert (finding.field, finding.line, finding.column) == ("text", line, len('text: "') + 1)


# --- what is not a claim --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "locale"),
    [
        ("This product is not intended to diagnose, treat, cure, or prevent any disease.", "en-US"),
        ("It does not cure acne, and nothing will.", "en-US"),
        ("Ce produit n'est pas destiné à traiter l'acné.", "fr-FR"),
        ("Ce sérum ne guérit pas l'eczéma.", "fr-FR"),
        ("Nicht zur Heilung von Akne bestimmt.", "de-DE"),
        ("Diese Creme heilt Akne nicht.", "de-DE"),
    ],
)
def test_a_negated_claim_is_not_a_drug_claim(text: str, locale: str) -> None:
    assert "drug-claim" not in rules_fired(item(text, locale=locale))


def test_a_question_is_not_a_claim() -> None:
    assert rules_fired(item("Can probiotics cure acne? Is that proven?")) == set()
    assert rules_fired(item("Les probiotiques guérissent-ils l'acné ?", locale="fr-FR")) == set()


def test_a_report_of_what_was_studied_is_not_a_claim_but_a_reported_finding_is() -> None:
    assert rules_fired(item("Probiotics have been studied in atopic dermatitis.")) == set()
    assert rules_fired(item("Probiotics have been studied for the treatment of acne.")) == set()
    assert "drug-claim" in rules_fired(item("Studies show probiotics treat acne."))


def test_disclaimer_entries_are_not_checked_for_claims() -> None:
    text = (
        "This product is not intended to diagnose, treat, cure, or prevent any disease. Cures acne."
    )
    assert check(item(text, kind=EntryKind.DISCLAIMER, citations=())) == []


def test_a_claim_after_a_negated_clause_is_still_a_claim() -> None:
    text = "Unlike creams that do not work, ours cures acne."
    assert "drug-claim" in rules_fired(item(text))
    assert "drug-claim" in rules_fired(item("It is not greasy, but it clears eczema fast."))


def test_evidence_level_decides_what_research_shows_may_say() -> None:
    text = "Trials show that this strain improves skin hydration."
    assert "overstated-evidence" in rules_fired(item(text, evidence="limited"))
    assert "overstated-evidence" in rules_fired(item(text, evidence="emerging"))
    assert "overstated-evidence" not in rules_fired(item(text, evidence="moderate"))
    assert "overstated-evidence" not in rules_fired(item(text, evidence="established"))


def test_an_unhedged_causal_claim_is_an_error_on_weak_evidence_and_a_warning_on_moderate() -> None:
    text = "Gut dysbiosis causes acne."
    severities = {
        level: [
            f.severity
            for f in check(item(text, evidence=level))
            if f.rule == "unhedged-causal-claim"
        ]
        for level in ("emerging", "limited", "moderate", "established")
    }
    assert severities == {
        "emerging": [Severity.ERROR],
        "limited": [Severity.ERROR],
        "moderate": [Severity.WARNING],
        "established": [],
    }
    assert rules_fired(item("Gut dysbiosis may contribute to acne.")) == set()


def test_studies_show_needs_a_citation_on_the_entry() -> None:
    text = "Studies show that fibre feeds gut bacteria."
    assert "studies-show-uncited" in rules_fired(item(text, citations=(), evidence="moderate"))
    assert "studies-show-uncited" not in rules_fired(item(text, evidence="moderate"))
    french = "Les études montrent que les fibres nourrissent les bactéries."
    assert "studies-show-uncited" in rules_fired(
        item(french, locale="fr-FR", citations=(), evidence="moderate")
    )


# --- rules about the entry as a whole -------------------------------------------------------


def test_a_supplement_snippet_for_the_us_needs_the_fda_disclaimer() -> None:
    text = "Fibre feeds gut bacteria."
    found = check(
        item(text, categories=("supplement",), markets=("US", "EU"), disclaimers=frozenset())
    )
    fda = only(found, "required-disclaimer-fda")
    assert (fda.severity, fda.field, fda.excerpt) == (Severity.ERROR, "disclaimers", "")
    assert "required-disclaimer-fda" not in rules_fired(
        item(text, categories=("supplement",), markets=("EU",), disclaimers=frozenset())
    )


def test_naming_a_condition_needs_the_not_medical_advice_disclaimer() -> None:
    kinds = frozenset({"fda_structure_function"})
    assert "required-disclaimer-medical" in rules_fired(item("Acne is common.", disclaimers=kinds))
    assert "required-disclaimer-medical" in rules_fired(
        item("The skin has a microbiome.", conditions=("acne",), disclaimers=kinds)
    )
    assert "required-disclaimer-medical" not in rules_fired(
        item("The skin has a microbiome.", disclaimers=kinds)
    )


def test_cosmetic_content_for_the_eu_or_uk_needs_the_cosmetic_disclaimer() -> None:
    def fired(markets: tuple[str, ...], categories: tuple[str, ...]) -> bool:
        reviewable = item(
            "The skin has a microbiome.",
            categories=categories,
            markets=markets,
            disclaimers=frozenset({"not_medical_advice", "fda_structure_function"}),
        )
        return "required-disclaimer-cosmetic" in rules_fired(reviewable)

    assert fired(("UK",), ("skincare",))
    assert fired(("FR",), ("skincare", "supplement"))
    assert not fired(("US",), ("skincare",))
    assert not fired(("EU",), ("supplement",))


def test_a_snippet_needs_a_citation_with_a_doi_or_pmid() -> None:
    found = check(
        item("Fibre feeds gut bacteria.", citations=("blog-2020",), substantiated=frozenset())
    )
    finding = only(found, "unsubstantiated-science")
    assert (finding.field, finding.excerpt) == ("citations", "blog-2020")
    assert "unsubstantiated-science" not in rules_fired(item("Fibre feeds gut bacteria."))


def test_a_language_without_rules_is_a_warning_not_a_pass() -> None:
    found = check(item("Cura el acné.", locale="es-ES"))
    assert [(f.rule, f.severity, f.excerpt) for f in found] == [
        ("unsupported-language", Severity.WARNING, "es-ES")
    ]


def test_the_project_seed_content_has_no_findings() -> None:
    from service.content.seedfiles import read_seed

    seed = read_seed(SEED)
    found = {
        (draft.source.path, finding.rule, finding.excerpt)
        for draft in seed.entries
        for finding in check(reviewable_from_draft(draft, seed))
    }
    assert found == set()


# --- the rule files themselves --------------------------------------------------------------


def copy_rules(tmp_path: Path) -> Path:
    target = tmp_path / "rules"
    shutil.copytree(RULES_DIRECTORY, target)
    return target


def test_a_malformed_rule_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    path = rules / "drug-claim.yaml"
    path.write_text(path.read_text().replace("severity: error", "severity: fatal", 1))
    with pytest.raises(RuleFileError, match=r"drug-claim\.yaml: invalid rule file: .*severity"):
        load_rules(rules)


def test_a_rule_naming_an_unknown_class_is_an_error(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    path = rules / "overstated-certainty.yaml"
    path.write_text(path.read_text().replace("- [certainty]", "- [certainly]", 1))
    with pytest.raises(
        RuleFileError, match=r"overstated-certainty\.yaml: en: unknown class 'certainly'"
    ):
        load_rules(rules)


def test_invalid_yaml_in_a_lexicon_is_an_error_with_its_line(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    (rules / "lexicon/en.yaml").write_text("language: en\nclasses: [\n")
    with pytest.raises(RuleFileError, match=r"lexicon/en\.yaml:3: invalid YAML"):
        load_rules(rules)


def test_a_rule_added_as_a_file_is_applied(tmp_path: Path) -> None:
    rules = copy_rules(tmp_path)
    (rules / "no-detox.yaml").write_text(
        """id: no-detox
check: text
severity: warning
message: Avoid "detox".
blocked_by: [negation]
languages:
  en:
    classes:
      detox: [detox, cleanse]
    patterns: [[detox]]
    examples:
      must_fire: [A gut detox.]
      must_not_fire: [Not a detox.]
""",
        encoding="utf-8",
    )
    found = check(item("Try our three-day detoxes. It does not cleanse."), load_rules(rules))
    assert [(f.rule, f.severity, f.excerpt) for f in found] == [
        ("no-detox", Severity.WARNING, "detoxes")
    ]
