"""The one family of domain errors; the CLI and the GraphQL layer each map them in one place."""

from __future__ import annotations

from dataclasses import dataclass


class ContentError(Exception):
    """A problem a person can act on; `code` is stable, `message` is for a person."""

    code = "CONTENT_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ContentError):
    code = "NOT_FOUND"


class BadInput(ContentError):
    code = "BAD_USER_INPUT"


class Forbidden(ContentError):
    code = "FORBIDDEN"


class Conflict(ContentError):
    code = "CONFLICT"


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one seed file, at one line."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class SeedValidationError(ContentError):
    code = "SEED_INVALID"

    def __init__(
        self,
        problems: list[Problem],
        rejected: dict[str, int] | None = None,
        skipped: list[Problem] | None = None,
    ) -> None:
        self.problems = sorted(problems)
        self.rejected = rejected or {}
        self.skipped = skipped or []
        count = len(self.problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in the seed files")


class Unauthenticated(ContentError):
    """No credentials where they are required, or credentials that are not valid."""

    code = "UNAUTHENTICATED"
