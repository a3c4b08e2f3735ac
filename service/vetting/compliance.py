"""The claims-compliance rules engine: what a reviewer must not approve, found in an entry's text.

Rules are data (`rules/*.yaml`, one rule a file, with word classes per language in
`rules/lexicon/`); this module reads them once and applies them. It knows nothing of HTTP,
GraphQL or the database: callers build a `Reviewable` and get `Finding`s back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from service.content.models import EntryKind
from service.vetting.rulefiles import (
    LEXICON_FOLDER,
    RULES_DIRECTORY,
    Blocker,
    ClassCompiler,
    RequiredDisclaimerRule,
    RuleFileError,
    Severity,
    SubstantiationRule,
    TextRule,
    WordClass,
    read_lexicon,
    read_rule,
)
from service.vetting.text import Clause, ClauseBreak, Sentence, Token, language_of, sentences

__all__ = [
    "Finding",
    "Reviewable",
    "RuleFileError",
    "RuleSet",
    "Severity",
    "TextPart",
    "check",
    "load_rules",
]

UNSUPPORTED_LANGUAGE = "unsupported-language"
NEGATION_REACH = 8  # words between a negation and the phrase it negates
NEGATION_AFTER = 2  # "heilt Akne nicht", "guérit pas"
LIST_ITEM_WORDS = 3  # "diagnose, treat, cure, or prevent": short items share one negation
STUDY_REACH = 8
REQUIREMENT_REACH = 4
SKIN_TYPE_AFTER = 2
STUDY_AFTER = 4  # "... is being studied"
PROFESSIONAL_REACH = 2  # "dermatologists treat acne": the doctor is the one treating
HEDGED_REACH = 3  # "could confirm", "may be proven"
WEAK_AFTER = 3  # "studies have shown mixed results"


@dataclass(frozen=True)
class TextPart:
    """One piece of text the rules read."""

    field: str  # "title", "summary", "body", "text" (a takeaway)
    text: str  # markdown as written
    line: int = 1  # line of the text's first character in its file (1 when not from a file)
    column: int = 1
    # (line, column) of each character, when the text is not laid out as written in its file
    # (a folded or escaped YAML string); empty: count from line and column
    layout: tuple[tuple[int, int], ...] = ()

    def position(self, offset: int) -> tuple[int, int]:
        if self.layout:
            return self.layout[min(offset, len(self.layout) - 1)] if self.layout else (1, 1)
        before = self.text[:offset]
        newlines = before.count("\n")
        if not newlines:
            return self.line, self.column + offset
        return self.line + newlines, offset - before.rfind("\n")


@dataclass(frozen=True)
class Reviewable:
    """Everything the rules need about one entry revision."""

    kind: EntryKind
    locale: str  # BCP 47, e.g. "en-US", "fr-FR", "de-DE"
    parts: tuple[TextPart, ...]
    evidence: str | None  # EvidenceLevel value: established / moderate / limited / emerging
    citations: tuple[str, ...]  # citation keys the entry cites
    substantiated_citations: frozenset[str]  # keys of catalog citations with a DOI or PMID
    categories: tuple[str, ...]  # product categories, e.g. "supplement", "skincare"
    markets: tuple[str, ...]  # market codes
    conditions: tuple[str, ...]  # condition keys the entry names
    disclaimer_kinds: frozenset[str]  # DisclaimerKind values of the disclaimers it carries
    # (field, line) of fields that are not text, such as "disclaimers" and "citations": where a
    # finding about the entry as a whole is reported
    anchors: tuple[tuple[str, int], ...] = ()


_MARKUP = re.compile(r"[*_`~\[\]()#>|\\]+")


def _normalised(excerpt: str) -> str:
    """The excerpt without Markdown, case or spacing: rewrapping a line keeps a waiver."""
    return " ".join(_MARKUP.sub(" ", excerpt).casefold().split())


@dataclass(frozen=True)
class Finding:
    rule: str
    severity: Severity
    message: str
    field: str
    line: int
    column: int
    end_column: int  # the column just after the excerpt, on `line`
    excerpt: str
    occurrence: int = 0  # how many earlier findings of this rule have the same excerpt

    @property
    def fingerprint(self) -> str:
        """Stable id of this finding within one revision's text, to waive this one finding:
        the same wording found again in the same revision gets the same fingerprint."""
        digest = hashlib.sha256(_normalised(self.excerpt).encode("utf-8")).hexdigest()[:16]
        return f"{self.rule}:{digest}:{self.occurrence}"


# --- the compiled rule set ------------------------------------------------------------------


@dataclass
class Lexicon:
    language: str
    classes: dict[str, WordClass]
    clause_break: ClauseBreak

    def __getitem__(self, name: str) -> WordClass:
        return self.classes[name]


@dataclass(frozen=True)
class CompiledPattern:
    slots: tuple[WordClass, ...]
    max_gap: int


@dataclass
class CompiledTextRule:
    spec: TextRule
    patterns: dict[str, list[CompiledPattern]]  # by language
    not_between: dict[str, list[WordClass]]

    def severity_for(self, evidence: str | None) -> Severity | None:
        chosen = self.spec.evidence_severity.get(evidence or "unknown", self.spec.severity)  # type: ignore[call-overload]
        return None if chosen == "off" else Severity(chosen)


@dataclass
class RuleSet:
    directory: Path
    lexicons: dict[str, Lexicon]
    text_rules: list[CompiledTextRule]
    disclaimer_rules: list[RequiredDisclaimerRule]
    substantiation_rules: list[SubstantiationRule]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def rules(self) -> list[TextRule | RequiredDisclaimerRule | SubstantiationRule]:
        return [
            *(rule.spec for rule in self.text_rules),
            *self.disclaimer_rules,
            *self.substantiation_rules,
        ]


def load_rules(directory: Path | None = None) -> RuleSet:
    """The rule set in `directory` (default: the rules shipped with the package), read once."""
    return _load((directory or RULES_DIRECTORY).resolve())


@cache
def _load(directory: Path) -> RuleSet:
    if not directory.is_dir():
        raise RuleFileError(f"{directory}: no such rules directory")
    lexicons: dict[str, Lexicon] = {}
    compilers: dict[str, ClassCompiler] = {}
    for path in sorted((directory / LEXICON_FOLDER).glob("*.yaml")):
        lexicon = read_lexicon(path)
        compiler = ClassCompiler(lexicon.language, lexicon.inflections)
        classes: dict[str, WordClass] = {}
        try:
            # a class may include one defined above it in the file
            for name, terms in lexicon.classes.items():
                classes[name] = compiler.compile(name, terms, classes)
        except ValueError as exc:
            raise RuleFileError(f"{path}: {exc}") from exc
        breaks = [tuple(term.lower().split()) for term in lexicon.classes["clause-break"]]
        lexicons[lexicon.language] = Lexicon(lexicon.language, classes, ClauseBreak(breaks))
        compilers[lexicon.language] = compiler
    rule_set = RuleSet(directory, lexicons, [], [], [])
    for path in sorted(directory.glob("*.yaml")):
        rule = read_rule(path)
        if rule.id in rule_set.files:
            raise RuleFileError(f"{path}: rule {rule.id!r} is already in {rule_set.files[rule.id]}")
        rule_set.files[rule.id] = path
        missing = sorted(set(rule.languages) - set(lexicons))
        if missing:
            raise RuleFileError(
                f"{path}: no lexicon for {', '.join(missing)}: add {LEXICON_FOLDER}/<language>.yaml"
            )
        if isinstance(rule, TextRule):
            try:
                rule_set.text_rules.append(_compile_text_rule(rule, lexicons, compilers))
            except ValueError as exc:
                raise RuleFileError(f"{path}: {exc}") from exc
        elif isinstance(rule, RequiredDisclaimerRule):
            rule_set.disclaimer_rules.append(rule)
        else:
            rule_set.substantiation_rules.append(rule)
    return rule_set


def _compile_text_rule(
    rule: TextRule, lexicons: dict[str, Lexicon], compilers: dict[str, ClassCompiler]
) -> CompiledTextRule:
    patterns: dict[str, list[CompiledPattern]] = {}
    not_between: dict[str, list[WordClass]] = {}
    for language, spec in rule.languages.items():
        shared = lexicons[language].classes
        local: dict[str, WordClass] = {}
        for name, terms in spec.classes.items():
            local[name] = compilers[language].compile(name, terms, shared)

        def resolve(
            slot: str,
            language: str = language,
            shared: dict[str, WordClass] = shared,
            local: dict[str, WordClass] = local,
        ) -> WordClass:
            found = shared.get(slot[1:]) if slot.startswith("@") else local.get(slot)
            if found is None:
                raise ValueError(f"{language}: unknown class {slot!r}")
            return found

        patterns[language] = [
            CompiledPattern(
                tuple(resolve(slot) for slot in pattern.slots),
                rule.max_gap if pattern.max_gap is None else pattern.max_gap,
            )
            for pattern in spec.patterns
        ]
        not_between[language] = [resolve(slot) for slot in rule.not_between]
    return CompiledTextRule(rule, patterns, not_between)


# --- reading one clause -------------------------------------------------------------------


class ClauseView:
    """One clause and the spans of each class in it, each looked up once."""

    def __init__(self, sentence: Sentence, clause: Clause, lexicon: Lexicon) -> None:
        self.sentence = sentence
        self.words = clause.words
        self.segments = clause.segments
        self.lexicon = lexicon
        self._spans: dict[int, list[tuple[int, int]]] = {}

    def spans(self, word_class: WordClass) -> list[tuple[int, int]]:
        key = id(word_class)
        if key not in self._spans:
            self._spans[key] = word_class.spans(self.words)
        return self._spans[key]

    def cues(self, name: str) -> list[tuple[int, int]]:
        return self.spans(self.lexicon[name])

    def negations(self) -> list[tuple[int, int]]:
        excepted = {i for start, end in self.cues("negation-exception") for i in range(start, end)}
        return [span for span in self.cues("negation") if span[0] not in excepted]

    def negation_reaches(self, cue_end: int, start: int) -> bool:
        """A negation reaches across commas only into a list ('diagnose, treat, cure, or
        prevent') or a clause it introduces ('nicht bewiesen, dass ...')."""
        first, last = self.segments[cue_end - 1], self.segments[start]
        if first == last:
            return True
        for segment in range(first + 1, last):
            if sum(1 for s in self.segments if s == segment) > LIST_ITEM_WORDS:
                return False
        lead = [i for i in range(cue_end, start) if self.segments[i] == last]
        if not lead:
            return True
        if any(self.lexicon["complementizer"].matches_word(self.words[i]) for i in lead[:1]):
            return True
        conjunction = self.lexicon["list-conjunction"]
        if all(conjunction.matches_word(self.words[i]) for i in lead):
            return True
        # "guérir ou prévenir": the last items of a list, joined by a conjunction
        return len(lead) <= LIST_ITEM_WORDS and conjunction.matches_word(self.words[lead[-1]])

    def negated(self, start: int, end: int) -> bool:
        for cue_start, cue_end in self.negations():
            if start <= cue_start < end:
                return True
            reachable = cue_end <= start and start - cue_end <= NEGATION_REACH
            if reachable and self.negation_reaches(cue_end, start):
                return True
        return any(
            0 <= cue_start - end < NEGATION_AFTER
            and self.segments[cue_start] == self.segments[end - 1]
            for cue_start, _ in self.cues("negation-after")
        )

    def before(self, name: str, start: int, reach: int | None = None) -> list[tuple[int, int]]:
        return [
            (s, e)
            for s, e in self.cues(name)
            if e <= start and (reach is None or start - e <= reach)
        ]

    def in_study_context(self, start: int, end: int) -> bool:
        """The phrase says what research looked at, not what a product does: 'studied for
        the prevention of eczema', 'trials testing whether probiotics prevent eczema'."""
        if self.before("indirect-question", start):
            return True
        negations = [cue_start for cue_start, _ in self.negations()]
        weak = [cue_start for cue_start, _ in self.cues("weak-finding")]
        if any(
            not any(result_start - 3 <= cue < result_start for cue in negations)
            and not any(result_end <= cue < result_end + WEAK_AFTER for cue in weak)
            for result_start, result_end in self.cues("result")
        ):
            return False  # "studies show that ..." reports a finding: the claim stands
        link = self.lexicon["study-link"]
        for _, cue_end in self.before("study", start, STUDY_REACH):
            if any(link.matches_word(word) for word in self.words[cue_end:start]):
                return True
        # "treating acne with probiotics is being studied", "wurden zur Vorbeugung ... untersucht"
        aux = self.lexicon["passive-aux"]
        passive = any(aux.matches_word(word) for word in self.words[:start]) or any(
            aux.matches_word(word) for word in self.words[end:]
        )
        return passive and any(
            end <= cue_start <= end + STUDY_AFTER for cue_start, _ in self.cues("study")
        )

    def referral(self, start: int) -> bool:
        """Advice to see a doctor ('ask your dermatologist about acne treatment'), or a doctor
        doing the treating ('your doctor can treat eczema'), unless the doctor endorses."""
        words = self.sentence.words
        if self.lexicon["professional"].spans(words) and self.lexicon["consult"].spans(words):
            return True
        endorsement = self.lexicon["endorsement"]
        return any(
            not any(endorsement.matches_word(word) for word in self.words[cue_end:start])
            for _, cue_end in self.before("professional", start, PROFESSIONAL_REACH)
        )

    def blocked(self, blockers: Sequence[Blocker], start: int, end: int) -> bool:
        for blocker in blockers:
            if (
                (blocker is Blocker.QUESTION and self.sentence.is_question)
                or (blocker is Blocker.NEGATION and self.negated(start, end))
                or (blocker is Blocker.HEDGE and self.cues("hedge"))
                or (
                    blocker is Blocker.HEDGED
                    and any(s < end and start - e <= HEDGED_REACH for s, e in self.cues("hedge"))
                )
                or (blocker is Blocker.STUDY and self.in_study_context(start, end))
                or (blocker is Blocker.REFERRAL and self.referral(start))
                or (blocker is Blocker.REPORTED and self.before("reported", start))
                or (
                    blocker is Blocker.REQUIREMENT
                    and self.before("requirement", start, REQUIREMENT_REACH)
                )
                or (blocker is Blocker.LIMITATION and self.before("limitation", start))
                or (
                    blocker is Blocker.SKIN_TYPE
                    and any(start <= s < end + SKIN_TYPE_AFTER for s, _ in self.cues("skin-type"))
                )
                or (
                    blocker is Blocker.WEAK_FINDING
                    and any(end <= s < end + WEAK_AFTER for s, _ in self.cues("weak-finding"))
                )
            ):
                return True
        return False


def _chains(view: ClauseView, pattern: CompiledPattern) -> list[list[tuple[int, int]]]:
    """Each way the pattern's slots occur in order, the nearest next slot taken each time."""
    per_slot = [view.spans(slot) for slot in pattern.slots]
    chains: list[list[tuple[int, int]]] = []
    for first in per_slot[0]:
        chain = [first]
        for spans in per_slot[1:]:
            end = chain[-1][1]
            following = [span for span in spans if 0 <= span[0] - end <= pattern.max_gap]
            if not following:
                break
            chain.append(following[0])
        else:
            chains.append(chain)
    return chains


# --- applying the rules ---------------------------------------------------------------------


@dataclass
class _Read:
    """A text part, read once for every rule."""

    index: int
    part: TextPart
    sentences: list[Sentence]
    views: list[ClauseView]


def _read(item: Reviewable, lexicon: Lexicon) -> list[_Read]:
    read = []
    for index, part in enumerate(item.parts):
        found = sentences(part.text, lexicon.language, lexicon.clause_break)
        views = [ClauseView(s, clause, lexicon) for s in found for clause in s.clauses]
        read.append(_Read(index, part, found, views))
    return read


def _text_finding(
    rule: CompiledTextRule, severity: Severity, part: TextPart, first: Token, last: Token
) -> Finding:
    line, column = part.position(first.start)
    end_line, end_column = part.position(last.end)
    if end_line != line:
        line_end = part.text.find("\n", first.start)
        end_column = part.position(line_end)[1] if line_end >= 0 else end_column
    excerpt = " ".join(part.text[first.start : last.end].split())
    return Finding(
        rule.spec.id, severity, rule.spec.message, part.field, line, column, end_column, excerpt
    )


def _apply_text_rule(
    rule: CompiledTextRule, severity: Severity, language: str, read: list[_Read]
) -> list[tuple[int, Finding]]:
    found: list[tuple[int, Finding]] = []
    for part in read:
        for view in part.views:
            matches: list[tuple[int, int]] = []
            for pattern in rule.patterns[language]:
                for chain in _chains(view, pattern):
                    start, end = chain[0][0], chain[-1][1]
                    inner = view.words[chain[0][1] : chain[-1][0]]
                    if any(
                        word_class.matches_word(word)
                        for word_class in rule.not_between[language]
                        for word in inner
                    ):
                        continue
                    if not view.blocked(rule.spec.blocked_by, start, end):
                        matches.append((start, end))
            # overlapping matches are one claim: "treat, cure, or prevent acne", "the truth is
            # simple"
            merged: list[list[int]] = []
            for start, end in sorted(matches):
                if merged and start < merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            for start, end in merged:
                first, last = view.words[start], view.words[end - 1]
                found.append((part.index, _text_finding(rule, severity, part.part, first, last)))
    return found


def _anchor(item: Reviewable, name: str) -> int:
    anchors = dict(item.anchors)
    if name in anchors:
        return anchors[name]
    return item.parts[0].line if item.parts else 1


def _entry_finding(
    item: Reviewable, rule_id: str, severity: Severity, message: str, anchor: str, excerpt: str = ""
) -> Finding:
    line = _anchor(item, anchor)
    return Finding(rule_id, severity, message, anchor, line, 1, 1, excerpt)


def _names_condition(item: Reviewable, read: list[_Read], lexicon: Lexicon | None) -> bool:
    if item.conditions:
        return True
    if lexicon is None:
        return False
    return any(view.cues("condition") for part in read for view in part.views)


def check(item: Reviewable, rules: RuleSet | None = None) -> list[Finding]:
    """Every finding of every rule on one entry revision, sorted by line and column."""
    rules = rules or load_rules()
    language = language_of(item.locale)
    lexicon = rules.lexicons.get(language)
    read = _read(item, lexicon) if lexicon is not None else []
    found: list[tuple[int, Finding]] = []
    if lexicon is None:
        message = (
            f"no compliance rules for the language of {item.locale}: "
            "a reviewer must check its claims by hand"
        )
        found.append(
            (
                -1,
                _entry_finding(
                    item, UNSUPPORTED_LANGUAGE, Severity.WARNING, message, "locale", item.locale
                ),
            )
        )
    for text_rule in rules.text_rules:
        spec = text_rule.spec
        severity = text_rule.severity_for(item.evidence)
        if (
            lexicon is None
            or language not in text_rule.patterns
            or item.kind not in spec.applies_to
            or severity is None
            or (spec.only_without_citations and item.citations)
        ):
            continue
        found.extend(_apply_text_rule(text_rule, severity, language, read))
    for disclaimer_rule in rules.disclaimer_rules:
        when = disclaimer_rule.when
        if (
            item.kind in disclaimer_rule.applies_to
            and disclaimer_rule.requires.value not in item.disclaimer_kinds
            and (when.categories is None or set(when.categories) & set(item.categories))
            and (when.markets is None or set(when.markets) & set(item.markets))
            and (not when.names_condition or _names_condition(item, read, lexicon))
        ):
            finding = _entry_finding(
                item,
                disclaimer_rule.id,
                disclaimer_rule.severity,
                disclaimer_rule.message,
                "disclaimers",
            )
            found.append((-1, finding))
    for substantiation_rule in rules.substantiation_rules:
        if item.kind in substantiation_rule.applies_to and not (
            set(item.citations) & item.substantiated_citations
        ):
            excerpt = ", ".join(item.citations)
            finding = _entry_finding(
                item, substantiation_rule.id, substantiation_rule.severity,
                substantiation_rule.message, "citations", excerpt,
            )  # fmt: skip
            found.append((-1, finding))
    ordered = [
        finding
        for _, finding in sorted(
            found, key=lambda pair: (pair[1].line, pair[1].column, pair[0], pair[1].rule)
        )
    ]
    return _numbered(ordered)


def _numbered(findings: list[Finding]) -> list[Finding]:
    """Number findings of the same rule and wording, so each has its own fingerprint."""
    seen: dict[tuple[str, str], int] = {}
    numbered = []
    for finding in findings:
        key = (finding.rule, _normalised(finding.excerpt))
        numbered.append(replace(finding, occurrence=seen.get(key, 0)))
        seen[key] = seen.get(key, 0) + 1
    return numbered
