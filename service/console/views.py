"""What the console's pages show, built from the domain's answers; pure functions, no I/O.

Findings are highlighted in a source view of each field's Markdown, not in the rendered HTML:
the rules report line and column in the Markdown as written (the same positions `contentapi
lint` prints and the author's file has), and a mark placed there is exact, whatever the
Markdown renders to. The rendered body is shown beside it exactly as a partner shows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import pairwise

from service.vetting.service import CheckedFinding, RevisionState
from service.vetting.workflow import Status


@dataclass(frozen=True)
class NumberedFinding:
    """A finding with the number the page shows beside its mark."""

    number: int
    checked: CheckedFinding

    @property
    def anchor(self) -> str:
        return f"finding-{self.number}"


@dataclass(frozen=True)
class Piece:
    text: str
    findings: tuple[int, ...] = ()  # the numbers of the findings whose excerpt covers it


@dataclass
class SourceLine:
    number: int
    pieces: list[Piece]
    notes: list[NumberedFinding] = field(default_factory=list)  # findings that start here


@dataclass(frozen=True)
class SourceField:
    name: str
    lines: list[SourceLine]

    @property
    def marked(self) -> bool:
        return any(line.notes for line in self.lines)


def numbered(findings: Sequence[CheckedFinding]) -> list[NumberedFinding]:
    return [NumberedFinding(number, checked) for number, checked in enumerate(findings, 1)]


def source_view(
    texts: Sequence[tuple[str, str]], findings: Sequence[NumberedFinding]
) -> list[SourceField]:
    """Each (field, markdown) as numbered lines, the findings' excerpts split out as pieces.

    A finding's column and end column count characters from 1 on its line; an excerpt that
    runs on past its line is marked to the line's end, as the rules report it.
    """
    fields = []
    for name, text in texts:
        lines = [SourceLine(number, []) for number in range(1, text.count("\n") + 2)]
        spans: dict[int, list[tuple[int, int, int]]] = {}
        for item in findings:
            found = item.checked.finding
            if found.field != name or not 1 <= found.line <= len(lines):
                continue
            lines[found.line - 1].notes.append(item)
            spans.setdefault(found.line, []).append(
                (found.column - 1, found.end_column - 1, item.number)
            )
        for line, content in zip(lines, text.split("\n"), strict=True):
            line.pieces = _pieces(content, spans.get(line.number, []))
        fields.append(SourceField(name, lines))
    return fields


def _pieces(content: str, spans: list[tuple[int, int, int]]) -> list[Piece]:
    """The line cut at every span's start and end; each piece lists the spans covering it."""
    clipped = [
        (max(start, 0), min(end, len(content)), number)
        for start, end, number in spans
        if min(end, len(content)) > max(start, 0)
    ]
    cuts = sorted({0, len(content), *(s for s, _, _ in clipped), *(e for _, e, _ in clipped)})
    pieces = []
    for start, end in pairwise(cuts):
        covering = tuple(number for s, e, number in clipped if s <= start and end <= e)
        pieces.append(Piece(content[start:end], covering))
    return pieces or [Piece("")]


def entry_findings(
    findings: Sequence[NumberedFinding], fields: Sequence[SourceField]
) -> list[NumberedFinding]:
    """Findings about the entry as a whole (a missing disclaimer, an uncited claim ...),
    which have no place in any text shown."""
    shown = {f.name for f in fields}
    return [item for item in findings if item.checked.finding.field not in shown]


def texts_of(state: RevisionState) -> list[tuple[str, str]]:
    """The fields the rules read, as the rules read them (a takeaway's body is its text)."""
    revision = state.revision
    if state.entry.kind == "takeaway":
        return [("text", revision.body_markdown)]
    named = [("title", revision.title), ("summary", revision.summary)]
    return [(name, text) for name, text in named if text] + [("body", revision.body_markdown)]


def live_number(history: Sequence[RevisionState], locale: str) -> int | None:
    """The revision partners see now in this locale, from the workflow's own states."""
    for state in history:
        if state.revision.locale == locale and state.status == Status.PUBLISHED:
            return state.revision.number
    return None


def status_label(status: Status) -> str:
    return status.value.replace("_", " ")


def when(moment: datetime | None) -> str:
    if moment is None:
        return "–"
    if moment.tzinfo is None:  # SQLite hands back naive datetimes; the service writes UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
