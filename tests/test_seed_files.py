"""What a writer sees when a seed file is wrong: every problem at once, as path:line: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.content.errors import SeedValidationError
from service.content.seedfiles import read_seed
from tests.conftest import SEED

SNIPPET = """---
key: new-snippet
locale: en-US
title: A new snippet
summary: A short summary.
topics: [microbiome]
evidence: limited
citations: [salem-2018]
markets: [US]
---
Research suggests things.
"""


def problems_for(root: Path) -> list[str]:
    with pytest.raises(SeedValidationError) as caught:
        read_seed(root)
    return [str(problem) for problem in caught.value.problems]


def write(root: Path, relative: str, text: str | bytes) -> None:
    path = root / relative
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")


def test_project_seed_files_are_valid() -> None:
    seed = read_seed(SEED)
    kinds = [draft.kind.value for draft in seed.entries]
    assert kinds.count("snippet") >= 8
    assert kinds.count("takeaway") >= 4
    assert kinds.count("disclaimer") >= 3


def test_unknown_field_names_the_line_and_suggests_the_right_name(seed_copy: Path) -> None:
    write(seed_copy, "snippets/new-snippet.en-US.md", SNIPPET.replace("title:", "titel:"))
    assert problems_for(seed_copy) == [
        "seed/snippets/new-snippet.en-US.md:2: missing field 'title'",
        "seed/snippets/new-snippet.en-US.md:4: unknown field 'titel' (did you mean 'title'?)",
    ]


def test_unknown_references_point_at_the_list_item(seed_copy: Path) -> None:
    text = SNIPPET.replace("topics: [microbiome]", "topics:\n  - microbiome\n  - microbiom")
    text = text.replace("citations: [salem-2018]", "citations: [smith-2099]")
    text = text.replace("markets: [US]", "markets: [US]\ndisclaimers: [not-a-disclaimer]")
    write(seed_copy, "snippets/new-snippet.en-US.md", text)
    assert problems_for(seed_copy) == [
        "seed/snippets/new-snippet.en-US.md:8: unknown topic 'microbiom' (did you mean 'microbiome'?)",
        "seed/snippets/new-snippet.en-US.md:10: unknown citation 'smith-2099'",
        "seed/snippets/new-snippet.en-US.md:12: unknown disclaimer 'not-a-disclaimer'",
    ]


@pytest.mark.parametrize(
    ("locale", "message"),
    [
        ("en_us", "locale: write the locale 'en_us' as 'en-US'"),
        ("xx-YY", "locale: 'xx-YY' is not a BCP 47 language tag such as 'en-US' or 'fr-FR'"),
        ("english", "locale: 'english' is not a BCP 47 language tag such as 'en-US' or 'fr-FR'"),
    ],
)
def test_malformed_locale_is_refused(seed_copy: Path, locale: str, message: str) -> None:
    write(seed_copy, "snippets/new-snippet.en-US.md", SNIPPET.replace("en-US", locale))
    assert problems_for(seed_copy) == [f"seed/snippets/new-snippet.en-US.md:3: {message}"]


def test_over_long_title_is_refused(seed_copy: Path) -> None:
    write(seed_copy, "snippets/new-snippet.en-US.md", SNIPPET.replace("A new snippet", "x" * 121))
    assert problems_for(seed_copy) == [
        "seed/snippets/new-snippet.en-US.md:4: title: String should have at most 120 characters"
    ]


def test_invalid_utf8_names_the_line(seed_copy: Path) -> None:
    data = SNIPPET.encode().replace(b"Research suggests", b"Research \xff suggests")
    write(seed_copy, "snippets/new-snippet.en-US.md", data)
    assert problems_for(seed_copy) == [
        "seed/snippets/new-snippet.en-US.md:11: not valid UTF-8 (byte 0xff)"
    ]


@pytest.mark.parametrize(
    ("replacement", "line", "message"),
    [
        (
            "title: !!python/object/apply:os.system [echo hacked]",
            4,
            "the tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed: "
            "seed files hold plain data",
        ),
        (
            "title: &t A new snippet\nsummary: *t",
            5,
            "anchors and aliases (&name, *name) are not allowed",
        ),
        ("title: A new snippet\ntitle: Again", 5, "duplicate key 'title'"),
        ("title: [unclosed", 5, "invalid YAML: did not find expected ',' or ']'"),
    ],
)
def test_unsafe_or_broken_yaml_is_refused(
    seed_copy: Path, replacement: str, line: int, message: str
) -> None:
    text = SNIPPET.replace("title: A new snippet", replacement)
    if "summary: *t" in replacement:
        text = text.replace("summary: A short summary.\n", "")
    write(seed_copy, "snippets/new-snippet.en-US.md", text)
    assert problems_for(seed_copy) == [f"seed/snippets/new-snippet.en-US.md:{line}: {message}"]


def test_front_matter_must_be_present_and_closed(seed_copy: Path) -> None:
    write(seed_copy, "snippets/no-front.en-US.md", "Just a body.\n")
    write(seed_copy, "snippets/unclosed.en-US.md", SNIPPET.replace("---\nResearch", "Research"))
    write(seed_copy, "snippets/empty-body.en-US.md", SNIPPET.split("---\nResearch")[0] + "---\n\n")
    assert problems_for(seed_copy) == [
        "seed/snippets/empty-body.en-US.md:11: the body after the front matter is empty",
        "seed/snippets/no-front.en-US.md:1: expected front matter: "
        "the file must start with a line '---'",
        "seed/snippets/unclosed.en-US.md:11: front matter is not closed: add a line '---' after it",
    ]


def test_duplicate_entries_and_catalog_keys_are_refused(seed_copy: Path) -> None:
    write(seed_copy, "snippets/copy-a.en-US.md", SNIPPET)
    write(seed_copy, "snippets/copy-b.en-US.md", SNIPPET)
    write(seed_copy, "takeaways/clash.en-US.yaml", (seed_copy / "takeaways/takeaway-secretome.en-US.yaml")
          .read_text().replace("key: takeaway-secretome", "key: new-snippet")
          .replace("position: 4", "position: 9"))  # fmt: skip
    topics = (seed_copy / "catalog/topics.yaml").read_text()
    write(
        seed_copy, "catalog/topics.yaml", topics + "\n- key: microbiome\n  names: {en-US: Again}\n"
    )
    problems = problems_for(seed_copy)
    duplicate_topic_line = topics.count("\n") + 2
    assert problems == [
        f"seed/catalog/topics.yaml:{duplicate_topic_line}: duplicate key 'microbiome': first at line 1",
    ]
    # catalog problems come first; once the catalog is fixed, the entry clashes are reported
    write(seed_copy, "catalog/topics.yaml", topics)
    assert problems_for(seed_copy) == [
        "seed/snippets/copy-b.en-US.md:2: duplicate entry 'new-snippet' in en-US: "
        "also in seed/snippets/copy-a.en-US.md",
        "seed/takeaways/clash.en-US.yaml:1: key 'new-snippet' is already a snippet "
        "(seed/snippets/copy-a.en-US.md)",
    ]


def test_translation_needs_the_default_locale_file(seed_copy: Path) -> None:
    write(seed_copy, "snippets/new-snippet.fr-FR.md", SNIPPET.replace("en-US", "fr-FR"))
    assert problems_for(seed_copy) == [
        "seed/snippets/new-snippet.fr-FR.md:3: 'new-snippet' has no en-US file, "
        "the default locale every other one falls back to"
    ]


def test_takeaway_positions_are_unique_per_topic_and_locale(seed_copy: Path) -> None:
    source = (seed_copy / "takeaways/takeaway-secretome.en-US.yaml").read_text()
    clash = source.replace("key: takeaway-secretome", "key: takeaway-extra")
    write(seed_copy, "takeaways/takeaway-extra.en-US.yaml", clash)
    problems = problems_for(seed_copy)
    assert len(problems) == 1
    assert problems[0].startswith("seed/takeaways/takeaway-secretome.en-US.yaml:")
    assert "position 4 in topic 'gut-skin-axis' (en-US) is taken by" in problems[0]


def test_every_problem_in_every_file_is_reported_at_once(seed_copy: Path) -> None:
    write(
        seed_copy, "snippets/one.en-US.md", SNIPPET.replace("evidence: limited", "evidence: proven")
    )
    write(seed_copy, "snippets/two.en-US.md", SNIPPET.replace("markets: [US]", "markets: []"))
    write(seed_copy, "takeaways/three.en-US.yaml", "key: three\nlocale: en-US\n")
    problems = problems_for(seed_copy)
    assert problems == [
        "seed/snippets/one.en-US.md:7: evidence: Input should be 'established', 'moderate', "
        "'limited' or 'emerging'",
        "seed/snippets/two.en-US.md:9: markets: List should have at least 1 item after "
        "validation, not 0",
        "seed/takeaways/three.en-US.yaml:1: missing field 'citations'",
        "seed/takeaways/three.en-US.yaml:1: missing field 'markets'",
        "seed/takeaways/three.en-US.yaml:1: missing field 'position'",
        "seed/takeaways/three.en-US.yaml:1: missing field 'text'",
        "seed/takeaways/three.en-US.yaml:1: missing field 'topic'",
    ]


def test_a_missing_catalog_file_is_reported(seed_copy: Path) -> None:
    (seed_copy / "catalog/citations.yaml").unlink()
    problems = problems_for(seed_copy)
    assert problems[0].endswith("catalog/citations.yaml:0: missing catalog file (citations)")


def test_raw_html_in_a_body_is_refused_at_its_line(seed_copy: Path) -> None:
    text = SNIPPET.replace(
        "Research suggests things.\n",
        "\nResearch suggests things.\n\n<script>alert('x')</script>\n\nSee <b>this</b>.\n",
    )
    write(seed_copy, "snippets/new-snippet.en-US.md", text)
    takeaway = (seed_copy / "takeaways/takeaway-secretome.en-US.yaml").read_text()
    text_line = (
        takeaway.splitlines().index(
            next(line for line in takeaway.splitlines() if line.startswith("text:"))
        )
        + 1
    )
    write(
        seed_copy,
        "takeaways/takeaway-secretome.en-US.yaml",
        takeaway.replace("text: ", "text: <img src=x onerror=alert(1)> ", 1),
    )
    assert problems_for(seed_copy) == [
        "seed/snippets/new-snippet.en-US.md:14: raw HTML is not allowed in a body: "
        "\"<script>alert('x')</script>\"; write Markdown instead",
        "seed/snippets/new-snippet.en-US.md:16: raw HTML is not allowed in a body: '</b>'; write Markdown instead",
        "seed/snippets/new-snippet.en-US.md:16: raw HTML is not allowed in a body: '<b>'; write Markdown instead",
        f"seed/takeaways/takeaway-secretome.en-US.yaml:{text_line}: raw HTML is not allowed in text: "
        "'<img src=x onerror=alert(1)>'; write Markdown instead",
    ]
