"""Linting seed files: each entry file read as the review workflow will read its revision, with
every finding placed at its line and column in the file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, ScalarNode

from service.content.errors import BadInput
from service.content.models import EntryKind
from service.content.schemas import CitationFile, DisclaimerFront, SnippetFront, TakeawayFile
from service.content.seedfiles import (
    ENTRY_FOLDERS,
    EntryDraft,
    SeedSet,
    decode,
    read_seed,
    split_front_matter,
)
from service.vetting.compliance import (
    Finding,
    Reviewable,
    RuleSet,
    Severity,
    TextPart,
    check,
    load_rules,
)

TEXT_FIELDS: dict[EntryKind, tuple[str, ...]] = {
    EntryKind.SNIPPET: ("title", "summary"),
    EntryKind.DISCLAIMER: ("title",),
    EntryKind.TAKEAWAY: ("text",),
}
ANCHOR_FIELDS = ("disclaimers", "citations", "locale")


@dataclass(frozen=True)
class LintFinding:
    path: str  # as `contentapi seed` shows it: relative to the seed folder's parent
    finding: Finding


@dataclass(frozen=True)
class LintReport:
    findings: list[LintFinding]
    entries: int

    def count(self, severity: Severity) -> int:
        return sum(1 for item in self.findings if item.finding.severity is severity)


def _positions(text: str, first_line: int) -> list[tuple[int, int]]:
    """(line, column) in the file of every character of `text`, which starts at `first_line`."""
    positions = []
    line, column = first_line, 1
    for char in text:
        positions.append((line, column))
        if char == "\n":
            line, column = line + 1, 1
        else:
            column += 1
    positions.append((line, column))
    return positions


def _scalar_part(
    name: str, node: ScalarNode, source: str, positions: list[tuple[int, int]]
) -> TextPart:
    """The text of a YAML string and where each of its characters is in the file: a plain
    one-line string is laid out as written; a quoted, escaped or folded one is aligned with
    its source character by character."""
    value = str(node.value)
    start, end = node.start_mark.index, node.end_mark.index
    quoted = node.style in ("'", '"')
    inner = start + 1 if quoted else start
    if source[inner : inner + len(value)] == value and "\n" not in value:
        line, column = positions[inner]
        return TextPart(name, value, line, column)
    if node.style in ("|", ">"):
        inner = source.index("\n", start) + 1  # past the block scalar's indicator line
    layout: list[tuple[int, int]] = []
    cursor = inner
    for char in value:
        found = cursor
        while found < end and not (
            source[found] == char or (char.isspace() and source[found].isspace())
        ):
            found += 1
        if found >= end:
            found = min(cursor, end)
        layout.append(positions[found])
        cursor = found + 1
        if char.isspace():
            while cursor < end and source[cursor] in " \t\n":
                cursor += 1
    line, column = layout[0] if layout else positions[inner]
    return TextPart(name, value, line, column, tuple(layout))


def _front_parts(source: str, first_line: int, names: tuple[str, ...]) -> list[TextPart]:
    root = yaml.compose(source, Loader=yaml.SafeLoader)
    if not isinstance(root, MappingNode):
        return []
    positions = _positions(source, first_line)
    nodes: dict[str, Any] = {str(key.value): value for key, value in root.value}
    return [
        _scalar_part(name, nodes[name], source, positions)
        for name in names
        if isinstance(nodes.get(name), ScalarNode)
    ]


def text_parts(draft: EntryDraft) -> tuple[TextPart, ...]:
    """The text the rules read, each part with its place in the entry's file."""
    text = decode(draft.source.file.read_bytes())
    names = TEXT_FIELDS[draft.kind]
    if draft.kind is EntryKind.TAKEAWAY:
        return tuple(_front_parts(text, 1, names))
    front, body, body_line = split_front_matter(text)
    leading = len(body) - len(body.lstrip("\n"))
    parts = _front_parts(front, 2, names)
    parts.append(TextPart("body", draft.body, body_line + leading, 1))
    return tuple(parts)


def reviewable(draft: EntryDraft, seed: SeedSet) -> Reviewable:
    """A seed file's entry as the rules see a revision of it."""
    front = draft.front
    disclaimer_kinds = {
        entry.key: entry.front.kind.value
        for entry in seed.entries
        if isinstance(entry.front, DisclaimerFront)
    }
    substantiated = frozenset(
        citation.key
        for citation in seed.catalog("citations")
        if isinstance(citation, CitationFile) and (citation.doi or citation.pmid)
    )
    citations = tuple(front.citations) if isinstance(front, SnippetFront | TakeawayFile) else ()
    disclaimers = front.disclaimers if isinstance(front, SnippetFront) else []
    return Reviewable(
        kind=draft.kind,
        locale=draft.locale,
        parts=text_parts(draft),
        evidence=front.evidence.value if isinstance(front, SnippetFront) else None,
        citations=citations,
        substantiated_citations=substantiated,
        categories=tuple(getattr(front, "categories", ())),
        markets=tuple(front.markets),
        conditions=tuple(front.conditions) if isinstance(front, SnippetFront) else (),
        disclaimer_kinds=frozenset(
            disclaimer_kinds[key] for key in disclaimers if key in disclaimer_kinds
        ),
        anchors=tuple((name, draft.source.line(name)) for name in ANCHOR_FIELDS),
    )


def seed_root_of(path: Path) -> Path:
    """The seed folder of `path`: the folder itself, or the one an entry file sits in."""
    if path.is_dir():
        return path
    if path.is_file() and path.parent.name in ENTRY_FOLDERS:
        return path.parent.parent
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    folders = ", ".join(f"{name}/" for name in ENTRY_FOLDERS)
    raise BadInput(f"{path}: not a seed folder, nor an entry file in one ({folders})")


def lint_seed(path: Path, rules: RuleSet | None = None) -> LintReport:
    """Every finding in the seed folder at `path`, or in the one entry file `path` (then the
    catalogs and disclaimers come from its seed folder). Seed files that do not parse raise
    SeedValidationError, as `contentapi seed` does."""
    rules = rules or load_rules()
    root = seed_root_of(path)
    seed = read_seed(root)
    drafts = seed.entries
    if path.is_file():
        drafts = [draft for draft in seed.entries if draft.source.file.samefile(path)]
        if not drafts:
            raise BadInput(f"{path}: not an entry file of {root} (wrong name or ending?)")
    findings = [
        LintFinding(draft.source.path, finding)
        for draft in drafts
        for finding in check(reviewable(draft, seed), rules)
    ]
    return LintReport(findings, len(drafts))
