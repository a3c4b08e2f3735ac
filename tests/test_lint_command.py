"""`contentapi lint`: the compliance rules over seed files, without a database."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service.config import PROJECT_ROOT
from tests.conftest import SEED
from tests.helpers import invoke

ARTICLE = PROJECT_ROOT.parent / "shared" / "content-source" / "gut-skin-article.txt"
FRONT_MATTER = """---
key: gut-skin-article
locale: en-US
title: What is the truth about the gut and the skin?
summary: The marketing article the vetted snippets were written from.
topics: [gut-skin-axis]
conditions: [acne, psoriasis]
categories: [supplement]
evidence: limited
citations: [salem-2018]
disclaimers: [not-medical-advice, fda-structure-function]
markets: [US]
---
"""
FINDING = re.compile(
    r"^(?P<path>\S+):(?P<line>\d+):(?P<column>\d+): "
    r"(?P<severity>error|warning) (?P<rule>[a-z-]+) (?P<message>.+)$"
)
ENTRIES = sum(
    len(list(SEED.glob(pattern)))
    for pattern in ("snippets/*.md", "disclaimers/*.md", "takeaways/*.yaml")
)

needs_article = pytest.mark.skipif(
    not ARTICLE.exists(), reason="the source article is not beside the repo"
)


@pytest.fixture
def article(seed_copy: Path) -> Path:
    """The source article as the body of a snippet in a copy of the seed folder."""
    path = seed_copy / "snippets" / "gut-skin-article.en-US.md"
    path.write_text(FRONT_MATTER + ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def findings(output: str) -> list[dict[str, str]]:
    """The finding lines of the text output, by field."""
    return [match.groupdict() for line in output.splitlines() if (match := FINDING.match(line))]


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").split("\n")
    return next(number for number, line in enumerate(lines, start=1) if needle in line)


@needs_article
def test_the_source_article_fails_with_its_overstatements_at_their_lines(
    cli: CliRunner, article: Path
) -> None:
    result = invoke(cli, "lint", str(article.parent.parent))
    assert result.exit_code == 1, result.output
    found = findings(result.output)
    assert found, result.output
    assert {f["path"] for f in found} == {"seed/snippets/gut-skin-article.en-US.md"}
    at = {(f["rule"], int(f["line"])) for f in found}
    assert ("overstated-certainty", line_of(article, "Scientific studies confirm")) in at
    assert ("overstated-certainty", line_of(article, "The truth is simple")) in at
    for causal in (
        "can trigger inflammatory skin conditions",
        "a healthy gut promotes healthier skin",
        "Gut imbalances can lead to inflammation",
        "glowing skin starts from within",
    ):
        assert ("unhedged-causal-claim", line_of(article, causal)) in at, causal
    assert ("drug-claim", line_of(article, "reduce skin inflammation")) in at
    confirm = next(f for f in found if f["rule"] == "overstated-certainty")
    text_line = article.read_text(encoding="utf-8").split("\n")[int(confirm["line"]) - 1]
    assert text_line[int(confirm["column"]) - 1 :].startswith("confirm")
    assert 'Found: "confirm"' in confirm["message"]
    errors = sum(1 for f in found if f["severity"] == "error")
    assert f"{errors} errors, 0 warnings in {ENTRIES + 1} entries." in result.output


def test_the_project_seed_content_passes(cli: CliRunner) -> None:
    result = invoke(cli, "lint", str(SEED))
    assert result.exit_code == 0, result.output
    assert findings(result.output) == []
    assert f"No findings in {ENTRIES} entries." in result.output


def test_without_a_path_the_settings_seed_folder_is_linted(
    cli: CliRunner, seed_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = seed_copy / "takeaways" / "takeaway-secretome.en-US.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("is being studied", "is proven"))
    monkeypatch.setenv("CONTENT_API_SEED_PATH", str(seed_copy))
    result = invoke(cli, "lint")
    assert result.exit_code == 1
    assert [(f["path"], f["rule"]) for f in findings(result.output)] == [
        ("seed/takeaways/takeaway-secretome.en-US.yaml", "overstated-certainty")
    ]


@needs_article
def test_json_output_lists_every_finding_with_its_fields(cli: CliRunner, article: Path) -> None:
    result = invoke(cli, "lint", str(article.parent.parent), "--format", "json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert rows
    assert all(
        set(row)
        == {"path", "line", "column", "end_column", "severity", "rule", "message", "excerpt"}
        for row in rows
    )
    truth = next(row for row in rows if "truth is simple" in row["excerpt"])
    assert (truth["rule"], truth["severity"]) == ("overstated-certainty", "error")
    assert truth["line"] == line_of(article, "The truth is simple")
    assert (truth["column"], truth["end_column"]) == (1, 1 + len("The truth is simple"))


def test_json_output_of_clean_content_is_an_empty_list(cli: CliRunner) -> None:
    result = invoke(cli, "lint", str(SEED), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == []


@needs_article
def test_one_file_as_path_lints_that_file_with_its_folders_catalogs(
    cli: CliRunner, article: Path
) -> None:
    result = invoke(cli, "lint", str(article))
    assert result.exit_code == 1
    assert {f["path"] for f in findings(result.output)} == {
        "seed/snippets/gut-skin-article.en-US.md"
    }
    assert "in 1 entry." in result.output
    clean = invoke(cli, "lint", str(article.parent / "probiotics.fr-FR.md"))
    assert clean.exit_code == 0, clean.output
    assert "No findings in 1 entry." in clean.output


def test_warnings_alone_exit_zero(cli: CliRunner, seed_copy: Path) -> None:
    path = seed_copy / "snippets" / "secretome.en-US.md"
    text = path.read_text(encoding="utf-8").replace(
        "Cells communicate", "Some extracts are antibacterial. Cells communicate"
    )
    path.write_text(text, encoding="utf-8")
    result = invoke(cli, "lint", str(path))
    assert result.exit_code == 0, result.output
    [found] = findings(result.output)
    assert (found["severity"], found["rule"]) == ("warning", "drug-like-property")
    assert int(found["line"]) == line_of(path, "antibacterial")
    assert "0 errors, 1 warning in 1 entry." in result.output


def test_a_seed_file_that_does_not_parse_is_reported_as_path_and_line(
    cli: CliRunner, seed_copy: Path
) -> None:
    path = seed_copy / "snippets" / "probiotics.en-US.md"
    text = path.read_text(encoding="utf-8").replace("evidence: limited", "evidance: limited", 1)
    path.write_text(text, encoding="utf-8")
    result = invoke(cli, "lint", str(seed_copy))
    assert result.exit_code == 1
    line = line_of(path, "evidance")
    assert f"seed/snippets/probiotics.en-US.md:{line}: unknown field 'evidance'" in result.output
    assert "2 problems in the seed files" in result.output  # and "missing field evidence"
    assert "nothing was written" not in result.output


def test_a_path_that_is_not_a_seed_entry_is_refused(cli: CliRunner, tmp_path: Path) -> None:
    missing = invoke(cli, "lint", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1
    assert "no such file or folder" in missing.output
    stray = tmp_path / "notes.md"
    stray.write_text("Cures acne.")
    refused = invoke(cli, "lint", str(stray))
    assert refused.exit_code == 1
    assert "not a seed folder, nor an entry file in one" in refused.output
