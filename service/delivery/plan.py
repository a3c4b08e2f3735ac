"""What a GraphQL GET asks, read without running anything: its document (sent, or named by a
persisted query's hash), variables and operation, and the releases its answer depends on.

A question the planner cannot read with certainty is not planned; the request then goes to
the GraphQL endpoint as it came, which answers it (and any mistake in it) in full.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import parse_qsl

import orjson
from graphql import (
    GraphQLError,
    IntValueNode,
    NullValueNode,
    OperationDefinitionNode,
    OperationType,
    VariableNode,
    parse,
)
from graphql.language import FieldNode

PARAMETERS = frozenset({"query", "operationName", "variables", "extensions"})
# root fields whose answer is fixed once the release they name exists, and the argument
# that names it; any other root field follows the latest release
PINNING_ARGUMENT = {
    "topics": "release",
    "conditions": "release",
    "categories": "release",
    "markets": "release",
    "snippet": "release",
    "snippets": "release",
    "takeaways": "release",
    "disclaimers": "release",
    "productPage": "release",
    "release": "id",
    "changes": "until",
}


@dataclass(frozen=True, slots=True)
class Question:
    document_hash: str  # SHA-256 of the document's text, lower-case hex
    document: str | None  # the text, when sent or known here
    operation_name: str | None
    variables: dict[str, object]
    canonical_variables: str
    persisted: bool  # named by a persisted query's hash (`extensions.persistedQuery`)


class Questions:
    """Questions read from query strings, by the exact bytes: a persisted GET repeats the same
    URL, so most are read once."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._read: OrderedDict[bytes, Question | None] = OrderedDict()

    def read(self, query_string: bytes) -> Question | None:
        if query_string in self._read:
            return self._read[query_string]
        question = read_question(query_string)
        self._read[query_string] = question
        if len(self._read) > self.size:
            self._read.popitem(last=False)
        return question


def read_question(query_string: bytes) -> Question | None:
    """The GET's parameters, when they are exactly the GraphQL-over-HTTP ones, each once."""
    try:
        pairs = parse_qsl(query_string.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS or name in params:
            return None
        if value != "":
            params[name] = value
    try:
        # as the endpoint reads them: NaN and Infinity are no JSON
        variables = {}
        if "variables" in params:
            variables = json.loads(params["variables"], parse_constant=_no_constant)
        extensions = json.loads(params["extensions"]) if "extensions" in params else {}
    except ValueError:
        return None
    if not isinstance(variables, dict) or not isinstance(extensions, dict):
        return None
    document = params.get("query")
    persisted = extensions.get("persistedQuery")
    if set(extensions) - {"persistedQuery"}:
        return None
    sent_hash: str | None = None
    if persisted is not None:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return None
        sent_hash = persisted.get("sha256Hash")
        if not isinstance(sent_hash, str):
            return None
    if document is not None:
        document_hash = hashlib.sha256(document.encode("utf-8", "surrogatepass")).hexdigest()
        if sent_hash is not None and sent_hash.lower() != document_hash:
            return None
    elif sent_hash is not None:
        document_hash = sent_hash.lower()
    else:
        return None
    try:
        canonical = orjson.dumps(variables, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits: left to the endpoint
        return None
    return Question(
        document_hash,
        document,
        params.get("operationName"),
        variables,
        canonical,
        persisted=sent_hash is not None,
    )


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


@dataclass(frozen=True, slots=True)
class Shape:
    """What matters of a document's chosen operation for caching it."""

    # per root field: the argument naming its release, as a literal number or a variable
    # name; None for a field that follows the latest release
    pins: tuple[int | str | None, ...]


class Shapes:
    """Documents' shapes, by hash and operation name; parsing happens once per document."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._shapes: OrderedDict[tuple[str, str | None], Shape | None] = OrderedDict()

    def of(self, question: Question, document: str) -> Shape | None:
        key = (question.document_hash, question.operation_name)
        if key in self._shapes:
            self._shapes.move_to_end(key)
            return self._shapes[key]
        shape = _shape(document, question.operation_name)
        self._shapes[key] = shape
        while len(self._shapes) > self.size:
            self._shapes.popitem(last=False)
        return shape


def _shape(document: str, operation_name: str | None) -> Shape | None:
    """The chosen operation's shape; None when it is not one plain query the planner can read
    (the endpoint answers those itself: a mutation over GET, no such operation, fragments at
    the root, directives that could skip fields)."""
    try:
        parsed = parse(document, max_tokens=5_000)
    except GraphQLError:
        return None
    operations = [d for d in parsed.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
        return None
    operation = operations[0]
    if operation.directives:
        return None
    pins: list[int | str | None] = []
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            return None
        if selection.name.value != "__typename":  # the same in every release
            pins.append(_pin(selection))
    return Shape(tuple(pins))


def _pin(field: FieldNode) -> int | str | None:
    argument_name = PINNING_ARGUMENT.get(field.name.value)
    for argument in field.arguments or ():
        if argument.name.value != argument_name:
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            return int(value.value)
        if isinstance(value, VariableNode):
            return value.name.value
        if isinstance(value, NullValueNode):
            return None
    return None


def pinned_releases(shape: Shape, variables: dict[str, object], latest: int) -> str | None:
    """The releases a question is pinned to ("3" or "2,3"), when every root field names one
    that exists already; None when the answer follows the latest release."""
    releases: set[int] = set()
    for pin in shape.pins:
        value = variables.get(pin) if isinstance(pin, str) else pin
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        if not 1 <= value <= latest:
            return None  # a release not published yet: its answer will change
        releases.add(value)
    if not shape.pins:
        return "0"  # only __typename: the same answer whatever the release
    return ",".join(str(number) for number in sorted(releases))
