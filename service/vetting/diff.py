"""Word diffs of bodies and field-by-field diffs of metadata between two revisions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum

# words with the whitespace after them, so joining the pieces gives the text back exactly
_TOKEN = re.compile(r"\S+\s*|\s+")


class Change(StrEnum):
    EQUAL = "equal"
    INSERT = "insert"
    DELETE = "delete"


@dataclass(frozen=True)
class Segment:
    change: Change
    text: str


def word_diff(before: str, after: str) -> list[Segment]:
    """The changed words between two texts; a replacement is a deletion then an insertion."""
    old, new = _TOKEN.findall(before), _TOKEN.findall(after)
    segments: list[Segment] = []
    matcher = SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            segments.append(Segment(Change.EQUAL, "".join(old[i1:i2])))
            continue
        if i2 > i1:
            segments.append(Segment(Change.DELETE, "".join(old[i1:i2])))
        if j2 > j1:
            segments.append(Segment(Change.INSERT, "".join(new[j1:j2])))
    return segments


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: str
    after: str


def field_changes(before: dict[str, object], after: dict[str, object]) -> list[FieldChange]:
    """The metadata fields whose values differ, in the order of `before`'s fields."""
    changes = []
    for name in [*before, *(name for name in after if name not in before)]:
        old, new = before.get(name), after.get(name)
        if old != new:
            changes.append(FieldChange(name, _show(old), _show(new)))
    return changes


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(str(item) for item in value)
    return str(value)
