"""Pydantic models of the seed files: what a writer may put in each file, and its limits."""

from __future__ import annotations

from typing import Annotated

import langcodes
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from service.content.models import DisclaimerKind, EvidenceLevel

KEY_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"

TITLE_MAX = 120
SUMMARY_MAX = 300
BODY_MAX = 20_000
TAKEAWAY_MAX = 280
CHANGE_NOTE_MAX = 500
NAME_MAX = 120
LIST_MAX = 20
# the locales one name, description or market may list: every official language of the EU
# and then some
LOCALES_MAX = 50


def check_locale(value: str) -> str:
    """Accept a BCP 47 tag only in its canonical spelling ('en-US', not 'en_us')."""
    if not langcodes.tag_is_valid(value):
        raise ValueError(f"{value!r} is not a BCP 47 language tag such as 'en-US' or 'fr-FR'")
    canonical = str(langcodes.standardize_tag(value))
    if canonical != value:
        raise ValueError(f"write the locale {value!r} as {canonical!r}")
    return value


Key = Annotated[str, StringConstraints(pattern=KEY_PATTERN, min_length=1, max_length=100)]
Locale = Annotated[
    str, StringConstraints(min_length=2, max_length=35), AfterValidator(check_locale)
]
# spellings people use that are not ISO 3166-1 alpha-2 codes, and what the standard writes
OLD_MARKET_SPELLINGS = {"UK": "GB", "EL": "GR"}


def market_hint(code: str) -> str:
    """A market code as a message shows it, with the ISO spelling when it is an old one."""
    better = OLD_MARKET_SPELLINGS.get(code)
    return f"{code!r} (ISO 3166-1 writes it {better!r})" if better else repr(code)


def check_market_code(value: str) -> str:
    """Markets are ISO 3166-1 alpha-2 countries, or a region such as EU."""
    better = OLD_MARKET_SPELLINGS.get(value)
    if better is not None:
        raise ValueError(f"write the market {value!r} as {better!r} (ISO 3166-1 alpha-2)")
    return value


MarketCode = Annotated[
    str, StringConstraints(pattern=r"^[A-Z]{2,8}$"), AfterValidator(check_market_code)
]
Tag = Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=40)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
ChangeNote = Annotated[str, StringConstraints(strip_whitespace=True, max_length=CHANGE_NOTE_MAX)]
LocalizedNames = Annotated[dict[Locale, Name], Field(max_length=LOCALES_MAX)]


def _unique(values: list[str]) -> list[str]:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value!r} is listed twice")
        seen.add(value)
    return values


Keys = Annotated[list[Key], Field(max_length=LIST_MAX), AfterValidator(_unique)]
MarketCodes = Annotated[list[MarketCode], Field(max_length=LIST_MAX), AfterValidator(_unique)]
Tags = Annotated[list[Tag], Field(max_length=LIST_MAX), AfterValidator(_unique)]


class SeedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


# --- catalogs -------------------------------------------------------------------------------


class TopicFile(SeedModel):
    key: Key
    names: LocalizedNames = Field(min_length=1)
    descriptions: Annotated[
        dict[Locale, Annotated[str, StringConstraints(max_length=SUMMARY_MAX)]],
        Field(max_length=LOCALES_MAX),
    ] = {}


class ConditionFile(SeedModel):
    key: Key
    names: LocalizedNames = Field(min_length=1)


class CategoryFile(SeedModel):
    key: Key
    names: LocalizedNames = Field(min_length=1)


class MarketFile(SeedModel):
    code: MarketCode
    name: Name
    default_locale: Locale
    locales: list[Locale] = Field(min_length=1, max_length=LOCALES_MAX)

    @model_validator(mode="after")
    def _default_is_listed(self) -> MarketFile:
        if self.default_locale not in self.locales:
            raise ValueError(f"default_locale {self.default_locale!r} is not in locales")
        return self


class CitationFile(SeedModel):
    key: Key
    title: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    authors: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    journal: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    year: int = Field(ge=1800, le=2100)
    doi: Annotated[str, StringConstraints(pattern=r"^10\.\d{4,9}/\S+$", max_length=200)] | None = (
        None
    )
    pmid: Annotated[str, StringConstraints(pattern=r"^[1-9]\d{0,9}$")] | None = None
    study_type: Annotated[str, StringConstraints(pattern=KEY_PATTERN, max_length=40)]

    @model_validator(mode="after")
    def _resolvable(self) -> CitationFile:
        if self.doi is None and self.pmid is None:
            raise ValueError("a citation needs a doi or a pmid that resolves")
        return self


# --- entries: one file per entry and locale -------------------------------------------------


class EntryFront(SeedModel):
    key: Key
    locale: Locale
    change_note: ChangeNote = ""


class SnippetFront(EntryFront):
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)
    ]
    summary: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=SUMMARY_MAX)
    ]
    topics: Keys = Field(min_length=1)
    conditions: Keys = []
    categories: Keys = []
    tags: Tags = []
    evidence: EvidenceLevel
    citations: Keys = Field(min_length=1)
    disclaimers: Keys = []
    markets: MarketCodes = Field(min_length=1)


class DisclaimerFront(EntryFront):
    kind: DisclaimerKind
    title: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX)
    ]
    markets: MarketCodes = Field(min_length=1)
    # empty: applies whatever the product; otherwise only to products of these categories
    categories: Keys = []


class TakeawayFile(EntryFront):
    topic: Key
    position: int = Field(ge=1, le=100)
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=TAKEAWAY_MAX)
    ]
    citations: Keys = Field(min_length=1)
    markets: MarketCodes = Field(min_length=1)
