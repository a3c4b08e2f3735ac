"""Completed fragments of held content, kept across requests.

A published item read from a held release never changes, so the part of an answer that shows
it (a snippet with its body and citations, as one operation selects them) is the same in every
answer that shows it, for callers of one scope. `FragmentExecution` completes such an item once
and keeps the completed value; the next answer that shows the item with the same selection
takes it as it is, without running a field.

An item offers its identity as `fragment_key`: everything its fields read besides the operation
and the caller (for a published item, the release read, the locale preference and the revision
served). A completion is kept only when it finished at once, without an error; what it noted
as served (the entries named in the cache tags) is kept with it and noted again on each use.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, cast

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLResolveInfo,
    Node,
    VariableNode,
    Visitor,
    visit,
)
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from service.content.served import note_served, noting


def footprint(value: Any) -> int:
    """About how many bytes `value` (a completed GraphQL value) holds of its own: its dicts and
    lists, and the strings nothing else holds (ids, not the texts a held revision keeps)."""
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(_item_footprint(item) for item in value.values())
    if isinstance(value, list):
        return sys.getsizeof(value) + sum(_item_footprint(item) for item in value)
    return sys.getsizeof(value)


def _item_footprint(item: Any) -> int:
    if isinstance(item, str):
        # referenced from its container and by this frame only: the fragment's own string
        return sys.getsizeof(item) if sys.getrefcount(item) <= _OWN else 0
    if isinstance(item, dict | list):
        return footprint(item)
    return 0  # numbers, booleans and None are shared or small


def _own_references() -> int:
    """How many references a string that only its container holds has, seen from
    `_item_footprint` (measured, rather than assumed, on this interpreter)."""
    seen: list[int] = []

    def probe(item: Any) -> int:
        seen.append(sys.getrefcount(item))
        return 0

    container = {"own": "".join(("x", str(id(seen))))}
    for item in container.values():
        probe(item)
    return seen[0]


_OWN = _own_references()


@dataclass(frozen=True, slots=True)
class Fragment:
    value: dict[str, Any]
    served: frozenset[str]
    size: int
    # the selection's nodes: held, so that the node ids in the key stay theirs
    nodes: tuple[FieldNode, ...]


class Fragments:
    """Completed fragments, least recently used first out, bounded by their estimated bytes."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = 0
        self.misses = 0
        self._kept: OrderedDict[Hashable, Fragment] = OrderedDict()
        # the variables each selection reads, by the ids of its nodes (held by its fragments)
        self._reads: dict[tuple[int, ...], tuple[tuple[FieldNode, ...], tuple[str, ...]]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, key: Hashable) -> Fragment | None:
        fragment = self._kept.get(key)
        if fragment is None:
            self.misses += 1
            return None
        self._kept.move_to_end(key)
        self.hits += 1
        return fragment

    def put(self, key: Hashable, fragment: Fragment) -> None:
        if fragment.size > self.max_bytes // 8:
            return
        old = self._kept.pop(key, None)
        if old is not None:
            self.bytes -= old.size
        self._kept[key] = fragment
        self.bytes += fragment.size
        while self.bytes > self.max_bytes:
            _, dropped = self._kept.popitem(last=False)
            self.bytes -= dropped.size
        if len(self._reads) > 4 * len(self._kept) + 1024:
            # selections no kept fragment uses any more
            live = {tuple(id(node) for node in kept.nodes) for kept in self._kept.values()}
            self._reads = {ids: reads for ids, reads in self._reads.items() if ids in live}

    def variables_read(
        self,
        ids: tuple[int, ...],
        nodes: tuple[FieldNode, ...],
        fragments: dict[str, Any],
    ) -> tuple[str, ...]:
        """The variables the selections of `nodes` read, anywhere below them."""
        found = self._reads.get(ids)
        if found is None:
            found = (nodes, _variables_below(nodes, fragments))
            self._reads[ids] = found
        return found[1]


class _VariablesNamed(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()
        self.spread: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.names.add(node.name.value)

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: object) -> None:
        self.spread.add(node.name.value)


def _variables_below(nodes: tuple[FieldNode, ...], fragments: dict[str, Any]) -> tuple[str, ...]:
    """Every variable named below `nodes`, through the fragments they spread."""
    found = _VariablesNamed()
    pending: list[Node] = [node.selection_set for node in nodes if node.selection_set]
    visited: set[str] = set()
    while pending:
        visit(pending.pop(), found)
        for name in found.spread - visited:
            visited.add(name)
            if name in fragments:
                pending.append(fragments[name])
    return tuple(sorted(found.names))


def _frozen(value: Any) -> Hashable:
    """A variable's value as a key: input objects and lists become sorted tuples."""
    if isinstance(value, dict):
        return tuple(sorted((name, _frozen(item)) for name, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return cast(Hashable, value)  # one that cannot be a key fails the lookup (TypeError)


# a selection's nodes, their ids, and the values of the variables read below it
_Selection = tuple[tuple[FieldNode, ...], tuple[int, ...], Hashable]


class FragmentExecution(StrawberryGraphQLCoreExecutionContext):
    """Strawberry's execution, completing items that offer a `fragment_key` from the fragments
    in the context (`Context.fragments`), when it has them; and telling a caller the schema is
    not revealed to what is wrong with its variables without "Did you mean ...?"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # the selections items were completed with, by the id of the selection object
        self._selections: dict[int, tuple[FieldDetailsList, _Selection | None]] = {}

    @classmethod
    def build(
        cls,
        schema: Any,
        document: Any,
        root_value: Any = None,
        context_value: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if getattr(context_value, "hides_suggestions", False):
            kwargs["hide_suggestions"] = True
        return super().build(schema, document, root_value, context_value, *args, **kwargs)

    def complete_object_value(
        self,
        return_type: GraphQLObjectType,
        field_details_list: FieldDetailsList,
        info: GraphQLResolveInfo[Any],
        path: Path,
        result: Any,
        position_context: Any,
    ) -> AwaitableOrValue[dict[str, Any]]:
        identity = getattr(result, "fragment_key", None)
        context = self.context_value
        fragments: Fragments | None = getattr(context, "fragments", None)
        selection = (
            self._selection(fragments, field_details_list)
            if identity is not None and fragments is not None
            else None
        )
        if selection is None or fragments is None:
            return super().complete_object_value(
                return_type, field_details_list, info, path, result, position_context
            )
        nodes, ids, variables = selection
        key = (return_type.name, ids, identity, context.fragment_scope, variables)
        try:
            kept = fragments.get(key)
        except TypeError:  # a variable's value that cannot be a key: completed every time
            return super().complete_object_value(
                return_type, field_details_list, info, path, result, position_context
            )
        if kept is not None:
            if kept.served:
                note_served(kept.served)
            return kept.value
        errors = len(self.collected_errors.errors)
        with noting() as served:
            value = super().complete_object_value(
                return_type, field_details_list, info, path, result, position_context
            )
        if isinstance(value, dict) and len(self.collected_errors.errors) == errors:
            fragments.put(key, Fragment(value, frozenset(served), footprint(value), nodes))
        return value

    def _selection(
        self, fragments: Fragments, field_details_list: FieldDetailsList
    ) -> _Selection | None:
        """A selection's nodes, their ids and the values of the variables read below it, once
        per operation: the items of a list are completed with the same selection object. None
        when it cannot be kept (@defer, fragment arguments)."""
        memo = self._selections
        found = memo.get(id(field_details_list))
        if found is not None and found[0] is field_details_list:
            return found[1]
        selection = None
        if _plain(field_details_list):
            nodes = tuple(details.node for details in field_details_list)
            ids = tuple(id(node) for node in nodes)
            reads = fragments.variables_read(ids, nodes, self.fragment_definitions)
            given = self.variable_values.coerced
            selection = (nodes, ids, tuple(_frozen(given.get(name)) for name in reads))
        # the selection object is held with its entry, so its id stays its own
        memo[id(field_details_list)] = (field_details_list, selection)
        return selection


def _plain(field_details_list: FieldDetailsList) -> bool:
    """No @defer and no fragment arguments: a selection completed the same way every time."""
    return all(
        details.defer_usage is None and details.fragment_variable_values is None
        for details in field_details_list
    )
