"""The compliance rule files: their pydantic models, and word classes compiled for matching.

A rule file holds one rule; `lexicon/<language>.yaml` holds the word classes every rule of
that language shares (negations, hedges, skin conditions ...). Words are written as lemmas.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import simplemma
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service.content.errors import ContentError
from service.content.models import DisclaimerKind, EntryKind, EvidenceLevel
from service.vetting.text import Token, tokens

RULES_DIRECTORY = Path(__file__).parent / "rules"
LEXICON_FOLDER = "lexicon"
SLOT_PATTERN = r"^@?[a-z][a-z0-9-]*$"

# the classes the blockers read; every lexicon must define them (they may be empty)
LEXICON_CLASSES = (
    "negation", "negation-after", "negation-exception", "list-conjunction", "complementizer",
    "clause-break", "hedge", "indirect-question", "study", "study-link", "result",
    "professional", "consult", "endorsement", "reported", "requirement", "limitation",
    "passive-aux", "skin-type", "weak-finding", "condition",
)  # fmt: skip


class RuleFileError(ContentError):
    code = "RULES_INVALID"


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Blocker(StrEnum):
    """Contexts in which a matched phrase is not a claim; what each reads is in the README."""

    NEGATION = "negation"
    QUESTION = "question"
    HEDGE = "hedge"
    HEDGED = "hedged"
    STUDY = "study"
    REFERRAL = "referral"
    REPORTED = "reported"
    REQUIREMENT = "requirement"
    LIMITATION = "limitation"
    SKIN_TYPE = "skin-type"
    WEAK_FINDING = "weak-finding"


Evidence = Literal["established", "moderate", "limited", "emerging", "unknown"]
SlotName = Annotated[str, Field(pattern=SLOT_PATTERN)]
Term = Annotated[str, Field(min_length=1, max_length=120)]


class RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Example(RuleModel):
    """One sentence and the entry around it; defaults make every other rule quiet."""

    text: str = Field(min_length=1)
    kind: EntryKind = EntryKind.SNIPPET
    evidence: EvidenceLevel | None = EvidenceLevel.LIMITED
    citations: list[str] = ["example-2020"]
    substantiated: list[str] | None = None  # default: every citation has a DOI or PMID
    categories: list[str] = []
    markets: list[str] = []
    conditions: list[str] = []
    disclaimers: list[DisclaimerKind] | None = None  # default: every kind

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value


class Examples(RuleModel):
    must_fire: list[Example] = Field(min_length=1)
    must_not_fire: list[Example] = Field(min_length=1)


class Pattern(RuleModel):
    """Slots (word classes) that must appear in this order, at most `max_gap` words apart."""

    slots: list[SlotName] = Field(min_length=1, max_length=5)
    max_gap: int | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        return {"slots": value} if isinstance(value, list) else value


class TextLanguage(RuleModel):
    classes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], list[Term]] = {}
    patterns: list[Pattern] = Field(min_length=1)
    examples: Examples


class ExamplesOnly(RuleModel):
    examples: Examples


class RuleBase(RuleModel):
    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=60)]
    severity: Severity
    message: Annotated[str, Field(min_length=1, max_length=400)]
    description: str = ""
    applies_to: list[EntryKind] = [EntryKind.SNIPPET, EntryKind.TAKEAWAY]


class TextRule(RuleBase):
    check: Literal["text"]
    blocked_by: list[Blocker] = []
    not_between: list[SlotName] = []
    max_gap: int = Field(default=6, ge=0, le=20)
    # the severity for each evidence level of the entry; "off" means the rule does not apply
    evidence_severity: dict[Evidence, Severity | Literal["off"]] = {}
    only_without_citations: bool = False
    languages: dict[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")], TextLanguage] = Field(
        min_length=1
    )


class DisclaimerCondition(RuleModel):
    categories: list[str] | None = None  # any of these; None: whatever the categories
    markets: list[str] | None = None  # any of these; None: whatever the markets
    names_condition: bool = False  # lists a condition, or a condition word is in the text


class RequiredDisclaimerRule(RuleBase):
    check: Literal["required-disclaimer"]
    requires: DisclaimerKind
    when: DisclaimerCondition
    languages: dict[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")], ExamplesOnly] = Field(
        min_length=1
    )


class SubstantiationRule(RuleBase):
    check: Literal["substantiation"]
    languages: dict[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")], ExamplesOnly] = Field(
        min_length=1
    )


RuleFile = Annotated[
    TextRule | RequiredDisclaimerRule | SubstantiationRule, Field(discriminator="check")
]


class RuleDocument(RuleModel):
    rule: RuleFile


class LexiconFile(RuleModel):
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]
    # how a verb lemma is inflected when the lemmatiser does not know a form:
    # {lemma ending: [endings that replace it]}, e.g. {"er": ["e", "é", "ée"]}
    inflections: dict[str, list[str]] = {}
    classes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")], list[Term]]

    @model_validator(mode="after")
    def _has_blocker_classes(self) -> LexiconFile:
        missing = [name for name in LEXICON_CLASSES if name not in self.classes]
        if missing:
            raise ValueError(f"classes is missing {', '.join(missing)}")
        return self


# --- compiled word classes -----------------------------------------------------------------


@dataclass(frozen=True)
class WordTest:
    """One word of a term: a lemma (with its inflected forms), an exact form, or a prefix or
    suffix (for compounds such as German 'Hautentzündung')."""

    lemmas: frozenset[str] = frozenset()
    forms: frozenset[str] = frozenset()
    prefix: str = ""
    suffix: str = ""

    def matches(self, token: Token) -> bool:
        if token.lemma in self.lemmas or token.surface in self.forms:
            return True
        if self.prefix:
            return token.surface.startswith(self.prefix) or token.lemma.startswith(self.prefix)
        if self.suffix:
            return token.surface.endswith(self.suffix) or token.lemma.endswith(self.suffix)
        return False


@dataclass
class WordClass:
    """Every term of one class; single words are looked up in sets, phrases word by word."""

    name: str
    lemmas: set[str] = field(default_factory=set)
    forms: set[str] = field(default_factory=set)
    affixes: list[WordTest] = field(default_factory=list)
    phrases: list[tuple[WordTest, ...]] = field(default_factory=list)

    def add(self, words: tuple[WordTest, ...]) -> None:
        if len(words) == 1 and not (words[0].prefix or words[0].suffix):
            self.lemmas |= words[0].lemmas
            self.forms |= words[0].forms
        elif len(words) == 1:
            self.affixes.append(words[0])
        else:
            self.phrases.append(words)

    def matches_word(self, token: Token) -> bool:
        return (
            token.lemma in self.lemmas
            or token.surface in self.forms
            or any(test.matches(token) for test in self.affixes)
        )

    def spans(self, words: Sequence[Token]) -> list[tuple[int, int]]:
        """(start, end) word indexes of every occurrence, longest first at each start."""
        found: list[tuple[int, int]] = []
        for index in range(len(words)):
            longest = 0
            for phrase in self.phrases:
                size = len(phrase)
                if (
                    size > longest
                    and index + size <= len(words)
                    and all(test.matches(words[index + k]) for k, test in enumerate(phrase))
                ):
                    longest = size
            if not longest and self.matches_word(words[index]):
                longest = 1
            if longest:
                found.append((index, index + longest))
        return found


class ClassCompiler:
    """Turns the terms of a language into word classes; '@name' includes a lexicon class."""

    def __init__(self, language: str, inflections: dict[str, list[str]]) -> None:
        self.language = language
        self.inflections = sorted(inflections.items(), key=lambda item: -len(item[0]))

    def word(self, part: str) -> WordTest:
        if part.startswith("="):
            return WordTest(forms=frozenset({part[1:].lower()}))
        if part.endswith("*") and len(part) > 1:
            return WordTest(prefix=part[:-1].lower())
        if part.startswith("*") and len(part) > 1:
            return WordTest(suffix=part[1:].lower())
        lower = part.lower()
        lemma = simplemma.lemmatize(part, self.language).lower()
        forms = {lower}
        for ending, replacements in self.inflections:
            if lower.endswith(ending) and len(lower) > len(ending) + 2:
                stem = lower[: len(lower) - len(ending)] if ending else lower
                forms.update(stem + replacement for replacement in replacements)
        return WordTest(lemmas=frozenset({lower, lemma}), forms=frozenset(forms))

    def words(self, term: str) -> tuple[WordTest, ...]:
        """A term's words, split as texts are ("l'acné", "anti-inflammatory", "100%")."""
        tests: list[WordTest] = []
        for part in term.split():
            if part.startswith(("=", "*")) or part.endswith("*"):
                tests.append(self.word(part))
                continue
            pieces = [token for token in tokens(part, 0, len(part), self.language) if token.is_word]
            tests.extend(self.word(token.original or token.surface) for token in pieces)
        return tuple(tests)

    def compile(self, name: str, terms: Iterable[str], known: dict[str, WordClass]) -> WordClass:
        compiled = WordClass(name)
        for term in terms:
            if term.startswith("@"):
                included = known.get(term[1:])
                if included is None:
                    raise ValueError(f"class {name!r} includes unknown class {term!r}")
                compiled.lemmas |= included.lemmas
                compiled.forms |= included.forms
                compiled.affixes += included.affixes
                compiled.phrases += included.phrases
                continue
            words = self.words(term)
            if not words:
                raise ValueError(f"class {name!r}: {term!r} has no word")
            compiled.add(words)
        return compiled


# --- reading the files ----------------------------------------------------------------------


def _problem(path: Path, exc: ValidationError) -> RuleFileError:
    details = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'file'}: {error['msg']}"
        for error in exc.errors()[:5]
    )
    return RuleFileError(f"{path}: invalid rule file: {details}")


class _RuleLoader(yaml.SafeLoader):
    """The safe loader, except that only true and false are booleans: in a word list,
    no, on and off are words (YAML 1.1 would read them as booleans)."""


_RuleLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _first in "tTfF":
    _RuleLoader.add_implicit_resolver(
        "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), [_first]
    )


def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_RuleLoader)  # noqa: S506
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleFileError(f"{path}: cannot read the rule file: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise RuleFileError(f"{path}{where}: invalid YAML: {exc}") from exc


def read_rule(path: Path) -> TextRule | RequiredDisclaimerRule | SubstantiationRule:
    try:
        rule = RuleDocument.model_validate({"rule": read_yaml(path)}).rule
    except ValidationError as exc:
        raise _problem(path, exc) from exc
    if rule.id != path.stem:
        raise RuleFileError(f"{path}: the rule id {rule.id!r} must match the file name")
    return rule


def read_lexicon(path: Path) -> LexiconFile:
    try:
        lexicon = LexiconFile.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise _problem(path, exc) from exc
    if lexicon.language != path.stem:
        raise RuleFileError(f"{path}: language {lexicon.language!r} must match the file name")
    return lexicon
