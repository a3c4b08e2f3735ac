"""Markdown text as the rules read it: sentences and clauses of lemmatised words, with offsets.

Markdown syntax is blanked out with spaces rather than removed, so every offset found in the
plain view is also the offset in the text as written."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import simplemma
from simplemma.tokenizer import TOKREGEX

# (pattern, group to blank; 0 = the whole match)
_INLINE_SYNTAX: list[tuple[re.Pattern[str], int]] = [
    (re.compile(r"^ {0,3}\[[^\]\n]+\]:[ \t]*\S.*$", re.MULTILINE), 0),  # link reference definition
    (re.compile(r"!?\[(?=[^\]\n]*\])"), 0),  # the opening bracket of a link or image
    (re.compile(r"\]\([^)\n]*\)"), 0),  # the target of an inline link or image
    (re.compile(r"\]\[[^\]\n]*\]"), 0),  # the label of a reference link
    (re.compile(r"<(?:https?|mailto):[^>\s]+>"), 0),  # autolink
    (re.compile(r"https?://\S+"), 0),  # bare address
    (re.compile(r"\\(?=[^\w\s])"), 0),  # backslash escape
    (re.compile(r"[*`~|]+"), 0),  # emphasis, code, strike-through, table cells
    (re.compile(r"(?<!\w)_+|_+(?!\w)"), 0),  # emphasis with underscores, not snake_case
    (re.compile(r"^[ \t]*(?:[-=_*][ \t]*){3,}$", re.MULTILINE), 0),  # rule or setext underline
]
_BLOCK_MARKER = re.compile(r"^([ \t]*)(#{1,6}(?=\s)|>+|[-*+•·▪◦](?=\s)|\d{1,9}[.)](?=\s))")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}\s")
_ELISION = re.compile(r"^(l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu)['’](?=\w)", re.IGNORECASE)
_ELIDED_LEMMA = {"l": "le", "d": "de", "j": "je", "m": "me", "n": "ne", "s": "se", "t": "te",
                 "c": "ce", "qu": "que", "jusqu": "jusque", "lorsqu": "lorsque",
                 "puisqu": "puisque", "quoiqu": "quoique"}  # fmt: skip
_POSSESSIVE = re.compile(r"['’]s$", re.IGNORECASE)
_CLAUSE_PUNCT = frozenset(";:—–()[]{}")
_COMMAS = frozenset(",،")
_CLOSERS = "\"'”’»)]*_ \t\n"
_LEMMA_LANGUAGES = frozenset({"en", "fr", "de"})


def mask_markdown(text: str) -> str:
    """The text with Markdown syntax replaced by spaces: same length, same offsets."""
    chars = list(text)

    def blank(start: int, end: int) -> None:
        for index in range(start, end):
            if chars[index] != "\n":
                chars[index] = " "

    for pattern, group in _INLINE_SYNTAX:
        for match in pattern.finditer("".join(chars)):
            blank(match.start(group), match.end(group))
    offset = 0
    for line in "".join(chars).split("\n"):
        marker = _BLOCK_MARKER.match(line)
        if marker:
            blank(offset + marker.start(2), offset + marker.end(2))
        offset += len(line) + 1
    return "".join(chars)


def blocks(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each paragraph, heading and list item: sentences never cross them."""
    start: int | None = None
    offset = 0
    previous_heading = False
    for line in text.split("\n"):
        end = offset + len(line)
        new_block = bool(_BLOCK_MARKER.match(line)) or previous_heading
        if not line.strip():
            if start is not None:
                yield start, offset - 1
            start = None
        elif start is None:
            start = offset
        elif new_block:
            yield start, offset - 1
            start = offset
        previous_heading = bool(_HEADING.match(line))
        offset = end + 1
    if start is not None:
        yield start, len(text)


@dataclass
class Token:
    start: int  # offsets in the part's text
    end: int
    surface: str  # lower case, typographic apostrophes made straight
    lemma: str  # lower case
    is_word: bool
    original: str = ""


@dataclass
class Clause:
    """The words of one clause (punctuation dropped), with the comma-separated segment of each."""

    words: list[Token] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)


@dataclass
class Sentence:
    start: int
    end: int
    is_question: bool
    clauses: list[Clause]
    words: list[Token]


def language_of(locale: str) -> str:
    return locale.split("-", 1)[0].lower()


def _lemma(word: str, language: str) -> str:
    if language not in _LEMMA_LANGUAGES:
        return word.lower()
    return simplemma.lemmatize(word, language).lower()


def _split_word(text: str, start: int, language: str) -> Iterator[tuple[int, str]]:
    """One token of the tokenizer as the rules see it: compounds split at hyphens, French
    elisions (l', n', qu') and English possessives split off."""
    if "://" in text:
        return
    position = 0
    for part in re.split(r"(-)", text):
        if part and part != "-":
            elision = _ELISION.match(part) if language == "fr" else None
            if elision:
                yield start + position, part[: elision.end()]
                yield start + position + elision.end(), part[elision.end() :]
            elif language == "en" and _POSSESSIVE.search(part) and len(part) > 2:
                yield start + position, part[:-2]
                yield start + position + len(part) - 2, part[-2:]
            else:
                yield start + position, part
        position += len(part)


def tokens(text: str, start: int, end: int, language: str) -> list[Token]:
    found: list[Token] = []
    for match in TOKREGEX.finditer(text, start, end):
        for offset, piece in _split_word(match.group(0), match.start(), language):
            surface = piece.lower().replace("’", "'")
            is_word = surface == "%" or any(char.isalnum() for char in surface)
            if not is_word:
                lemma = surface
            elif language == "fr" and surface.endswith("'"):
                lemma = _ELIDED_LEMMA.get(surface[:-1], surface)
            else:
                lemma = _lemma(piece.replace("’", "'"), language)
            found.append(Token(offset, offset + len(piece), surface, lemma, is_word, piece))
    return found


def sentences(text: str, language: str, is_clause_break: ClauseBreak) -> list[Sentence]:
    """The sentences of a Markdown text, each split into clauses."""
    plain = mask_markdown(text)
    result: list[Sentence] = []
    for block_start, block_end in blocks(plain):
        block = plain[block_start:block_end]
        cursor = 0
        splitter_language = language if language in _LEMMA_LANGUAGES else None
        for piece in simplemma.split_sentences(block, splitter_language):
            found = block.find(piece, cursor)
            if found < 0:
                continue
            cursor = found + len(piece)
            start, end = block_start + found, block_start + cursor
            words = tokens(plain, start, end, language)
            is_question = plain[start:end].rstrip(_CLOSERS).endswith(("?", "¿"))
            result.append(
                Sentence(start, end, is_question, _clauses(words, is_clause_break), [
                    t for t in words if t.is_word
                ])
            )  # fmt: skip
    return result


class ClauseBreak:
    """Decides where a clause ends: a word such as 'but', or a short phrase such as 'and it'."""

    def __init__(self, sequences: list[tuple[str, ...]]) -> None:
        self.sequences = sequences

    def length_at(self, words: list[Token], index: int) -> int:
        for sequence in self.sequences:
            if all(
                index + k < len(words) and words[index + k].surface == part
                for k, part in enumerate(sequence)
            ):
                return len(sequence)
        return 0


def _clauses(all_tokens: list[Token], is_clause_break: ClauseBreak) -> list[Clause]:
    """Clauses end at ; : dashes and words like 'but'; a parenthesis is a clause of its own,
    so the words around it read as if it were not there."""
    words = [token for token in all_tokens if token.is_word]
    word_index = {id(token): index for index, token in enumerate(words)}
    finished: list[Clause] = []
    main = Clause()
    stack: list[Clause] = []  # open parentheses
    segment = 0

    def close() -> None:
        nonlocal main
        if stack:
            finished.append(stack.pop())
            stack.append(Clause())
        else:
            finished.append(main)
            main = Clause()

    for token in all_tokens:
        current = stack[-1] if stack else main
        if token.surface in ("(", "["):
            stack.append(Clause())
        elif token.surface in (")", "]"):
            if stack:
                finished.append(stack.pop())
        elif token.surface in _CLAUSE_PUNCT:
            close()
        elif token.surface in _COMMAS:
            segment += 1
        elif token.is_word:
            if current.words and is_clause_break.length_at(words, word_index[id(token)]):
                close()
                continue  # the word that breaks the clause belongs to neither side
            current.words.append(token)
            current.segments.append(segment)
    finished.extend([main, *stack])
    return [clause for clause in finished if clause.words]
