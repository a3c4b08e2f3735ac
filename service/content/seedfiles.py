"""Reading and validating the seed files: every problem reported as path:line before any write."""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from service.content.errors import Problem, SeedValidationError
from service.content.models import EntryKind
from service.content.rendering import raw_html_lines
from service.content.schemas import (
    BODY_MAX,
    CategoryFile,
    CitationFile,
    ConditionFile,
    DisclaimerFront,
    MarketFile,
    SnippetFront,
    TakeawayFile,
    TopicFile,
)
from service.content.text import character_name, find_forbidden

DEFAULT_LOCALE = "en-US"
# Far above any real seed file (a body is at most 20,000 characters, a catalog a few hundred
# entries); a file past it is a mistake, and reading it whole would only exhaust memory.
MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ENTRY_FILE_BYTES = 1024 * 1024
# far above the largest seed folder measured (benchmarks/seed_bench.py: 10,000 snippets); past
# it, a folder is someone's mistake, and listing it would hold every name in memory
MAX_FOLDER_FILES = 50_000
MAX_CATALOG_ITEMS = 10_000

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)

# Plain data only: anything else (python objects, binary, sets) is refused, not constructed.
_PLAIN_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "timestamp")
)
_STR_TAG = "tag:yaml.org,2002:str"
_BASE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BASE_LOADER):  # type: ignore[misc]
    """The safe loader, remembering how it resolved each plain scalar: seed files repeat the
    same field names and values thousands of times, and resolving is done in Python."""

    _resolved: ClassVar[dict[tuple[str, Any], str]] = {}

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is not ScalarNode:
            return super().resolve(kind, value, implicit)
        key = (value, implicit)
        tag = self._resolved.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._resolved) < 50_000:
                self._resolved[key] = tag
        return tag


CATALOG_FILES: dict[str, tuple[type[BaseModel], str]] = {
    "topics": (TopicFile, "key"),
    "conditions": (ConditionFile, "key"),
    "categories": (CategoryFile, "key"),
    "markets": (MarketFile, "code"),
    "citations": (CitationFile, "key"),
}
ENTRY_FOLDERS: dict[str, tuple[EntryKind, str]] = {
    "snippets": (EntryKind.SNIPPET, ".md"),
    "disclaimers": (EntryKind.DISCLAIMER, ".md"),
    "takeaways": (EntryKind.TAKEAWAY, ".yaml"),
}

_ENTRY_MODELS: dict[EntryKind, type[SnippetFront | DisclaimerFront | TakeawayFile]] = {
    EntryKind.SNIPPET: SnippetFront,
    EntryKind.DISCLAIMER: DisclaimerFront,
    EntryKind.TAKEAWAY: TakeawayFile,
}


class _FileProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass
class YamlDoc:
    """Plain data parsed from YAML, and the line where each value (by path) was written.

    The lines are worked out only when a message needs one: most files are valid, and
    tracking every value's line costs as much as parsing."""

    value: Any
    text: str = ""
    first_line: int = 1
    _lines: dict[Loc, int] | None = None

    @property
    def lines(self) -> dict[Loc, int]:
        if self._lines is None:
            self._lines = load_yaml(self.text, first_line=self.first_line, track_lines=True)._lines
        return self._lines or {}

    def line_of(self, loc: Sequence[str | int]) -> int:
        lines = self.lines
        for end in range(len(loc), -1, -1):
            line = lines.get(tuple(loc[:end]))
            if line is not None:
                return line
        return 1


def _refuse_escaped_characters(node: Node, first_line: int) -> None:
    """A double-quoted YAML string can spell any character as an escape ("\\0", "\\x07"), which
    the check of the file's raw text cannot see. Called for double-quoted scalars only."""
    found = find_forbidden(node.value)
    if found is None:
        return
    raise _FileProblem(
        node.start_mark.line + first_line,
        f"{character_name(found.char)} (written as an escape in the quoted string at column "
        f"{node.start_mark.column + 1}) is not allowed: seed files hold text, without control "
        "characters or Unicode noncharacters",
    )


def _walk(
    node: Node,
    loc: Loc,
    lines: dict[Loc, int] | None,
    seen: set[int],
    first_line: int,
    constructor: SafeConstructor,
) -> Any:
    line = node.start_mark.line + first_line
    if id(node) in seen:
        # the same node twice is an alias: report where it is used, not where it was anchored
        where = lines.get(loc, line) if lines is not None else line
        raise _FileProblem(where, "anchors and aliases (&name, *name) are not allowed")
    seen.add(id(node))
    if lines is not None:
        lines.setdefault(loc, line)
    if isinstance(node, MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise _FileProblem(
                line, f"the tag {node.tag!r} is not allowed: seed files hold plain data"
            )
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != _STR_TAG:
                key_line = key_node.start_mark.line + first_line
                if key_node.tag == "tag:yaml.org,2002:merge":
                    raise _FileProblem(key_line, "merge keys (<<) are not allowed")
                raise _FileProblem(key_line, "mapping keys must be plain words")
            key = str(key_node.value)
            if key_node.style == '"':
                _refuse_escaped_characters(key_node, first_line)
            if key in result:
                raise _FileProblem(key_node.start_mark.line + first_line, f"duplicate key {key!r}")
            if lines is not None:
                lines[(*loc, key)] = key_node.start_mark.line + first_line
            result[key] = _walk(value_node, (*loc, key), lines, seen, first_line, constructor)
        return result
    if isinstance(node, SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise _FileProblem(
                line, f"the tag {node.tag!r} is not allowed: seed files hold plain data"
            )
        return [
            _walk(item, (*loc, index), lines, seen, first_line, constructor)
            for index, item in enumerate(node.value)
        ]
    if node.tag == _STR_TAG:
        if isinstance(node, ScalarNode) and node.style == '"':
            _refuse_escaped_characters(node, first_line)
        return node.value  # the common case, without the constructor's bookkeeping
    if node.tag not in _PLAIN_TAGS:
        raise _FileProblem(line, f"the tag {node.tag!r} is not allowed: seed files hold plain data")
    return constructor.construct_object(node, deep=True)


def load_yaml(text: str, *, first_line: int = 1, track_lines: bool = False) -> YamlDoc:
    """Parse one YAML document as plain data; refuse tags, aliases and duplicate keys."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = (mark.line if mark else 0) + first_line
        raise _FileProblem(line, f"invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise _FileProblem(first_line, f"invalid YAML: {exc}") from exc
    except RecursionError as exc:
        raise _FileProblem(first_line, "invalid YAML: lists or mappings nested too deep") from exc
    lines: dict[Loc, int] | None = {} if track_lines else None
    if root is None:
        return YamlDoc(None, text, first_line, lines)
    try:
        value = _walk(root, (), lines, set(), first_line, SafeConstructor())
    except RecursionError as exc:
        raise _FileProblem(first_line, "lists or mappings nested too deep") from exc
    except _FileProblem:
        if not track_lines:
            # a problem's exact line needs the line map: parse again with it
            return load_yaml(text, first_line=first_line, track_lines=True)
        raise
    return YamlDoc(value, text, first_line, lines)


def decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise _FileProblem(line, f"not valid UTF-8 (byte 0x{data[exc.start]:02x})") from exc
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    found = find_forbidden(text)
    if found is not None:
        raise _FileProblem(found.line, found.describe())
    return text


def read_file(path: Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of one seed file; a file that cannot be read is a problem with its path."""
    try:
        with path.open("rb") as file:
            if os.fstat(file.fileno()).st_size > limit:
                raise _FileProblem(0, f"is larger than {limit // (1024 * 1024)} MiB")
            return file.read()
    except OSError as exc:
        raise _FileProblem(0, f"cannot be read: {exc.strerror or exc}") from exc


def split_front_matter(text: str) -> tuple[str, str, int]:
    """Return (front matter, body, line number where the body starts)."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise _FileProblem(1, "expected front matter: the file must start with a line '---'")
    for index in range(1, len(lines)):
        if lines[index].rstrip() == "---":
            return "\n".join(lines[1:index]), "\n".join(lines[index + 1 :]), index + 2
    raise _FileProblem(len(lines), "front matter is not closed: add a line '---' after it")


def _describe(error: Any, allowed: Iterable[str]) -> str:
    loc = error["loc"]
    # a key may hold a line feed or a tab (written as an escape): quoted, a message stays one line
    name = ".".join(str(part) if str(part).isprintable() else repr(str(part)) for part in loc)
    kind = error["type"]
    if kind == "missing":
        return f"missing field {name!r}"
    if kind == "extra_forbidden":
        hint = difflib.get_close_matches(str(loc[-1]), list(allowed), n=1)
        suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
        return f"unknown field {name!r}{suffix}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}: {message}" if name else message


def validate_model(
    model: type[M], doc: YamlDoc, path: str, problems: list[Problem], loc: Loc = ()
) -> M | None:
    value = doc.value
    for part in loc:
        value = value[part]
    if not isinstance(value, dict):
        problems.append(Problem(path, doc.line_of(loc), "expected a mapping of field: value"))
        return None
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            error_loc = (*loc, *error["loc"])
            where = doc.line_of(error_loc) if error["type"] != "missing" else doc.line_of(loc)
            problems.append(Problem(path, where, _describe(error, model.model_fields)))
        return None


# --- the parsed seed set ---------------------------------------------------------------------


@lru_cache(maxsize=32)
def _line_map(file: Path, front_matter: bool) -> YamlDoc:
    text = decode(read_file(file))
    if front_matter:
        return load_yaml(split_front_matter(text)[0], first_line=2, track_lines=True)
    return load_yaml(text, track_lines=True)


@dataclass(frozen=True)
class Located:
    """Where a value was written: the file shown to the writer, and the file on disk.

    Line numbers are needed only when a check across files finds a problem, so they are read
    again from the file then, rather than kept for every file of a large seed folder.
    """

    path: str
    file: Path
    front_matter: bool

    def line(self, *loc: str | int) -> int:
        return _line_map(self.file, self.front_matter).line_of(loc)


@dataclass(frozen=True)
class EntryDraft:
    """One entry file: what the writer asked for, before it becomes a revision."""

    kind: EntryKind
    front: SnippetFront | DisclaimerFront | TakeawayFile
    body: str
    source: Located

    @property
    def key(self) -> str:
        return self.front.key

    @property
    def locale(self) -> str:
        return self.front.locale


@dataclass(frozen=True)
class CatalogItem:
    model: BaseModel
    source: Located
    index: int


@dataclass
class SeedSet:
    catalogs: dict[str, list[CatalogItem]] = field(default_factory=dict)
    entries: list[EntryDraft] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)

    def catalog_keys(self, name: str) -> set[str]:
        key_field = CATALOG_FILES[name][1]
        return {str(getattr(item.model, key_field)) for item in self.catalogs.get(name, [])}

    def catalog(self, name: str) -> list[Any]:
        return [item.model for item in self.catalogs.get(name, [])]


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


@dataclass
class SeedFiles:
    """What lies below a seed folder: the files to read, what cannot be read as a seed file
    (problems), and what is left out on purpose (skipped, with a warning)."""

    catalogs: dict[str, Path] = field(default_factory=dict)
    entries: list[tuple[EntryKind, Path]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)


def _not_a_regular_file(path: Path, real_root: Path) -> str | None:
    """Why `path` cannot be read as a seed file; None for a regular file in the seed folder.

    Checked before reading: opening a named pipe would wait for ever, and a link that leads
    outside the folder would publish a file nobody reviews as part of the seed content."""
    try:
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            try:
                target = path.resolve(strict=True)
            except FileNotFoundError:
                return f"is a broken symbolic link: {os.readlink(path)} does not exist"
            except (OSError, RuntimeError):  # a loop: RuntimeError before Python 3.13
                return "is a symbolic link that leads back to itself"
            if not target.is_relative_to(real_root):
                return f"is a symbolic link to {target}, outside the seed folder"
            info = target.stat()
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder, not a seed file: rename it or move it out of the seed folder"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a regular file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a regular file"
    return "is a device or other special file, not a regular file"


class _TooManyFiles(Exception):
    pass


def _list_folder(directory: Path, suffix: str) -> list[tuple[str, bool]]:
    """The names ending in `suffix` in a folder, sorted, and whether each is a regular file;
    listing stops once past MAX_FOLDER_FILES."""
    listed = []
    with os.scandir(directory) as scan:
        for item in scan:
            if item.name.endswith(suffix):
                listed.append((item.name, item.is_file(follow_symlinks=False)))
                if len(listed) > MAX_FOLDER_FILES:
                    raise _TooManyFiles
    return sorted(listed)


def _leaves_the_folder(directory: Path, real_root: Path) -> str | None:
    """Why the files of a folder inside the seed folder would come from outside it: the folder
    is, or lies below, a link that leads elsewhere."""
    try:
        target = directory.resolve()
    except (OSError, RuntimeError):
        return None  # a loop or an unreadable folder: reported where its files are read
    if target.is_relative_to(real_root):
        return None
    return f"is a symbolic link to {target}, outside the seed folder"


def discover(root: Path) -> SeedFiles:
    """The catalog files and entry files below `root`, in a stable order, and every path that
    looks like a seed file but cannot be read as one."""
    found = SeedFiles()
    real_root = root.resolve()
    catalog_folder = root / "catalog"
    outside = _leaves_the_folder(catalog_folder, real_root)
    if outside:
        found.problems.append(Problem(_relative(catalog_folder, root), 0, outside))
    for name in () if outside else CATALOG_FILES:
        path = catalog_folder / f"{name}.yaml"
        if not os.path.lexists(path):
            found.problems.append(Problem(str(path), 0, f"missing catalog file ({name})"))
        elif why := _not_a_regular_file(path, real_root):
            found.problems.append(Problem(_relative(path, root), 0, why))
        else:
            found.catalogs[name] = path
    for folder, (kind, suffix) in ENTRY_FOLDERS.items():
        directory = root / folder
        if why := _leaves_the_folder(directory, real_root):
            found.problems.append(Problem(_relative(directory, root), 0, why))
            continue
        try:
            listed = _list_folder(directory, suffix)
        except _TooManyFiles:
            found.problems.append(
                Problem(
                    _relative(directory, root),
                    0,
                    f"holds more than {MAX_FOLDER_FILES:,} {suffix} files, more than a seed "
                    "folder may: split the content into several seed folders",
                )
            )
            continue
        except FileNotFoundError:
            continue
        except NotADirectoryError:
            found.problems.append(
                Problem(_relative(directory, root), 0, f"is not a folder: {folder}/ holds files")
            )
            continue
        except OSError as exc:
            found.problems.append(
                Problem(_relative(directory, root), 0, f"cannot be read: {exc.strerror or exc}")
            )
            continue
        for name, regular in listed:
            path = directory / name
            if name.startswith("."):
                # editors' lock files (.#name.md) and other tools' hidden companions
                found.skipped.append(
                    Problem(_relative(path, root), 0, "skipped: hidden files are not read")
                )
            elif regular or (why := _not_a_regular_file(path, real_root)) is None:
                found.entries.append((kind, path))
            else:
                found.problems.append(Problem(_relative(path, root), 0, why))
    return found


def _read_catalog(
    name: str, path: Path, display: str, seed: SeedSet, problems: list[Problem]
) -> None:
    model, key_field = CATALOG_FILES[name]
    seed.catalogs[name] = []
    try:
        doc = load_yaml(decode(read_file(path)))
    except _FileProblem as exc:
        problems.append(Problem(display, exc.line, exc.message))
        return
    if not isinstance(doc.value, list):
        problems.append(
            Problem(display, 1, f"expected a list of {name}, one '- {key_field}: ...' each")
        )
        return
    if len(doc.value) > MAX_CATALOG_ITEMS:
        problems.append(
            Problem(display, 1, f"holds {len(doc.value):,} {name}; at most {MAX_CATALOG_ITEMS:,}")
        )
        return
    first_seen: dict[str, int] = {}
    for index in range(len(doc.value)):
        item = validate_model(model, doc, display, problems, loc=(index,))
        if item is None:
            continue
        key = str(getattr(item, key_field))
        line = doc.line_of((index, key_field))
        if key in first_seen:
            problems.append(
                Problem(
                    display, line, f"duplicate {key_field} {key!r}: first at line {first_seen[key]}"
                )
            )
            continue
        first_seen[key] = line
        seed.catalogs[name].append(
            CatalogItem(item, Located(display, path, front_matter=False), index)
        )


def _read_entry(
    kind: EntryKind, path: Path, display: str, problems: list[Problem]
) -> EntryDraft | None:
    try:
        text = decode(read_file(path, MAX_ENTRY_FILE_BYTES))
        if kind is EntryKind.TAKEAWAY:
            doc, body, body_line = load_yaml(text), "", 1
        else:
            front, body, body_line = split_front_matter(text)
            doc = load_yaml(front, first_line=2)
    except _FileProblem as exc:
        problems.append(Problem(display, exc.line, exc.message))
        return None
    parsed = validate_model(_ENTRY_MODELS[kind], doc, display, problems)
    leading = len(body) - len(body.lstrip("\n"))
    body = body.strip("\n")
    if kind is not EntryKind.TAKEAWAY:
        if not body.strip():
            problems.append(Problem(display, body_line, "the body after the front matter is empty"))
            return None
        if len(body) > BODY_MAX:
            problems.append(
                Problem(
                    display, body_line, f"the body has {len(body)} characters; at most {BODY_MAX}"
                )
            )
            return None
        for line, markup in raw_html_lines(body):
            problems.append(
                Problem(
                    display,
                    body_line + leading + line - 1,
                    f"raw HTML is not allowed in a body: {markup[:60]!r}; write Markdown instead",
                )
            )
    if isinstance(parsed, TakeawayFile):
        for _, markup in raw_html_lines(parsed.text):
            problems.append(
                Problem(
                    display,
                    doc.line_of(("text",)),
                    f"raw HTML is not allowed in text: {markup[:60]!r}; write Markdown instead",
                )
            )
    if parsed is None:
        return None
    return EntryDraft(kind, parsed, body, Located(display, path, kind is not EntryKind.TAKEAWAY))


def read_seed(root: Path, *, progress: Callable[[int], None] | None = None) -> SeedSet:
    """Read and validate every seed file below `root`; raise with every problem found."""
    if not root.is_dir():
        why = "is not a folder" if root.exists() else "no such directory"
        raise SeedValidationError([Problem(str(root), 0, why)])
    files = discover(root)
    problems = list(files.problems)
    seed = SeedSet(skipped=files.skipped)
    for name in CATALOG_FILES:
        seed.catalogs[name] = []
        if name in files.catalogs:
            path = files.catalogs[name]
            _read_catalog(name, path, _relative(path, root), seed, problems)
    for kind, path in files.entries:
        draft = _read_entry(kind, path, _relative(path, root), problems)
        if draft is not None:
            seed.entries.append(draft)
        if progress is not None:
            progress(1)
    if not problems:
        problems.extend(check_references(seed))
    if problems:
        raise SeedValidationError(problems, rejected=count_rejected(problems), skipped=seed.skipped)
    return seed


def _kind_of_path(path: str) -> str:
    for folder, (kind, _) in ENTRY_FOLDERS.items():
        if f"/{folder}/" in f"/{path}":
            return kind.value
    return "catalog"


def count_rejected(problems: list[Problem]) -> dict[str, int]:
    """How many files of each kind have at least one problem."""
    files: dict[str, set[str]] = {}
    for problem in problems:
        files.setdefault(_kind_of_path(problem.path), set()).add(problem.path)
    return {kind: len(paths) for kind, paths in files.items()}


# --- checks across files -----------------------------------------------------------------------


def check_references(seed: SeedSet) -> list[Problem]:
    """Everything that needs more than one file: duplicates, references, fallbacks, ordering."""
    problems: list[Problem] = []
    known = {name: seed.catalog_keys(name) for name in CATALOG_FILES}

    for name in ("topics", "conditions", "categories"):
        for item in seed.catalogs.get(name, []):
            names = getattr(item.model, "names", {})
            if DEFAULT_LOCALE not in names:
                problems.append(
                    Problem(
                        item.source.path,
                        item.source.line(item.index, "names"),
                        f"names needs the default locale {DEFAULT_LOCALE}",
                    )
                )

    by_key: dict[str, EntryDraft] = {}
    by_key_locale: dict[tuple[str, str], EntryDraft] = {}
    for draft in seed.entries:
        first = by_key.setdefault(draft.key, draft)
        if first.kind is not draft.kind:
            problems.append(
                Problem(
                    draft.source.path,
                    draft.source.line("key"),
                    f"key {draft.key!r} is already a {first.kind.value} ({first.source.path})",
                )
            )
            continue
        other = by_key_locale.setdefault((draft.key, draft.locale), draft)
        if other is not draft:
            problems.append(
                Problem(
                    draft.source.path,
                    draft.source.line("key"),
                    f"duplicate entry {draft.key!r} in {draft.locale}: also in {other.source.path}",
                )
            )
    disclaimer_keys = {d.key for d in seed.entries if d.kind is EntryKind.DISCLAIMER}

    def check(
        draft: EntryDraft, field_name: str, values: Sequence[str], pool: set[str], what: str
    ) -> None:
        for index, value in enumerate(values):
            if value not in pool:
                hint = difflib.get_close_matches(value, sorted(pool), n=1)
                suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
                problems.append(
                    Problem(
                        draft.source.path,
                        draft.source.line(field_name, index),
                        f"unknown {what} {value!r}{suffix}",
                    )
                )

    positions: dict[tuple[str, str, int], EntryDraft] = {}
    for draft in seed.entries:
        front = draft.front
        if draft.locale != DEFAULT_LOCALE and (draft.key, DEFAULT_LOCALE) not in by_key_locale:
            problems.append(
                Problem(
                    draft.source.path,
                    draft.source.line("locale"),
                    f"{draft.key!r} has no {DEFAULT_LOCALE} file, "
                    "the default locale every other one falls back to",
                )
            )
        check(draft, "markets", front.markets, known["markets"], "market")
        if isinstance(front, SnippetFront):
            check(draft, "topics", front.topics, known["topics"], "topic")
            check(draft, "conditions", front.conditions, known["conditions"], "condition")
            check(draft, "categories", front.categories, known["categories"], "category")
            check(draft, "citations", front.citations, known["citations"], "citation")
            check(draft, "disclaimers", front.disclaimers, disclaimer_keys, "disclaimer")
        elif isinstance(front, DisclaimerFront):
            check(draft, "categories", front.categories, known["categories"], "category")
        else:
            check(draft, "topic", [front.topic], known["topics"], "topic")
            check(draft, "citations", front.citations, known["citations"], "citation")
            slot = (front.topic, front.locale, front.position)
            taken = positions.setdefault(slot, draft)
            if taken is not draft:
                problems.append(
                    Problem(
                        draft.source.path,
                        draft.source.line("position"),
                        f"position {front.position} in topic {front.topic!r} ({front.locale}) "
                        f"is taken by {taken.source.path}",
                    )
                )
    return problems
