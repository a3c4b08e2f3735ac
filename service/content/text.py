"""Which characters count as text: the same refusal on every database, before any write."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Unicode's own names for the control characters (NameAliases.txt), which `unicodedata.name`
# does not return: a writer searching for what went wrong finds these.
_CONTROL_NAMES = (
    "NULL", "START OF HEADING", "START OF TEXT", "END OF TEXT", "END OF TRANSMISSION",
    "ENQUIRY", "ACKNOWLEDGE", "ALERT", "BACKSPACE", "CHARACTER TABULATION", "LINE FEED",
    "LINE TABULATION", "FORM FEED", "CARRIAGE RETURN", "SHIFT OUT", "SHIFT IN",
    "DATA LINK ESCAPE", "DEVICE CONTROL ONE", "DEVICE CONTROL TWO", "DEVICE CONTROL THREE",
    "DEVICE CONTROL FOUR", "NEGATIVE ACKNOWLEDGE", "SYNCHRONOUS IDLE",
    "END OF TRANSMISSION BLOCK", "CANCEL", "END OF MEDIUM", "SUBSTITUTE", "ESCAPE",
    "INFORMATION SEPARATOR FOUR", "INFORMATION SEPARATOR THREE", "INFORMATION SEPARATOR TWO",
    "INFORMATION SEPARATOR ONE",
)  # fmt: skip
_C1_NAMES = (
    "PADDING CHARACTER", "HIGH OCTET PRESET", "BREAK PERMITTED HERE", "NO BREAK HERE", "INDEX",
    "NEXT LINE", "START OF SELECTED AREA", "END OF SELECTED AREA", "CHARACTER TABULATION SET",
    "CHARACTER TABULATION WITH JUSTIFICATION", "LINE TABULATION SET", "PARTIAL LINE FORWARD",
    "PARTIAL LINE BACKWARD", "REVERSE LINE FEED", "SINGLE SHIFT TWO", "SINGLE SHIFT THREE",
    "DEVICE CONTROL STRING", "PRIVATE USE ONE", "PRIVATE USE TWO", "SET TRANSMIT STATE",
    "CANCEL CHARACTER", "MESSAGE WAITING", "START OF GUARDED AREA", "END OF GUARDED AREA",
    "START OF STRING", "SINGLE GRAPHIC CHARACTER INTRODUCER", "SINGLE CHARACTER INTRODUCER",
    "CONTROL SEQUENCE INTRODUCER", "STRING TERMINATOR", "OPERATING SYSTEM COMMAND",
    "PRIVACY MESSAGE", "APPLICATION PROGRAM COMMAND",
)  # fmt: skip
CONTROL_NAMES: dict[int, str] = {
    **dict(enumerate(_CONTROL_NAMES)),
    0x7F: "DELETE",
    **{0x80 + offset: name for offset, name in enumerate(_C1_NAMES)},
}

# Refused: every control character but tab and line feed (PostgreSQL refuses NUL outright, and
# the others would reach partners' pages unseen), a carriage return that is not part of a CRLF
# line ending (read as a line feed before this check), and the Unicode noncharacters, which
# are for a program's internal use, never for interchange. The noncharacters beyond the first
# plane are looked for only in a text that has such characters at all: a class holding them
# makes every search ten times slower, and seeding reads thousands of files.
_FORBIDDEN_BMP = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]")
_BEYOND_BMP = re.compile("[\U00010000-\U0010ffff]")
_FORBIDDEN_BEYOND_BMP = re.compile(
    "["
    + "".join(f"{chr(plane << 16 | 0xFFFE)}-{chr(plane << 16 | 0xFFFF)}" for plane in range(1, 17))
    + "]"
)


def character_name(char: str) -> str:
    """'U+0000 NULL': the code point and the name a person can look up."""
    code = ord(char)
    name = CONTROL_NAMES.get(code) or unicodedata.name(char, "")
    return f"U+{code:04X} {name}" if name else f"U+{code:04X} (a Unicode noncharacter)"


@dataclass(frozen=True)
class ForbiddenCharacter:
    """The first refused character of a text: where it is, and how many others follow it."""

    char: str
    line: int  # 1-based, counting line feeds
    column: int  # 1-based, in characters
    others: int

    def describe(self) -> str:
        more = f" (and {self.others} more)" if self.others else ""
        why = (
            "a carriage return belongs only in a CRLF line ending"
            if self.char == "\r"
            else "seed files hold text, without control characters or Unicode noncharacters"
        )
        return f"{character_name(self.char)} at column {self.column} is not allowed{more}: {why}"


def _forbidden_in(text: str) -> list[re.Pattern[str]]:
    if _BEYOND_BMP.search(text) is None:
        return [_FORBIDDEN_BMP]
    return [_FORBIDDEN_BMP, _FORBIDDEN_BEYOND_BMP]


def find_forbidden(text: str) -> ForbiddenCharacter | None:
    patterns = _forbidden_in(text)
    matches = [match for pattern in patterns if (match := pattern.search(text)) is not None]
    if not matches:
        return None
    start = min(match.start() for match in matches)
    line_start = text.rfind("\n", 0, start) + 1
    return ForbiddenCharacter(
        char=text[start],
        line=text.count("\n", 0, start) + 1,
        column=start - line_start + 1,
        others=sum(len(pattern.findall(text, start + 1)) for pattern in patterns),
    )
