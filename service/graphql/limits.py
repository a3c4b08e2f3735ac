"""What one operation may ask for and what a caller may learn about the schema: the cost limit,
and in production no introspection or "Did you mean" suggestions for partners."""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    BREAK,
    ArgumentNode,
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    NoSchemaIntrospectionCustomRule,
    NullValueNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    get_named_type,
    get_nullable_type,
    is_list_type,
    validate,
    visit,
)
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from strawberry.extensions import SchemaExtension
from strawberry.schema.validation_rules.maybe_null import MaybeNullValidationRule
from strawberry.schema.validation_rules.one_of import OneOfInputValidationRule

from service.access.principal import Principal

QUERY_TOO_COSTLY = "QUERY_TOO_COSTLY"
# the length assumed for a list that takes no `first`: a snippet's topics or citations, a
# product page's snippets, the catalogs; none holds many more
ASSUMED_LIST_LENGTH = 10
# a page size for a `first` that has no default of its own (the largest page a field serves)
ASSUMED_PAGE = 100


def reveals_schema(caller: Principal | None, *, production: bool) -> bool:
    """Whether the caller may introspect the schema and be told "Did you mean ...": everyone
    in development; in production staff only, since the schema names staff-only fields and a
    partner's pages need only the documented operations."""
    if not production:
        return True
    return caller is not None and not caller.is_partner


def _caller(context: Any) -> Principal | None:
    caller = getattr(context, "caller", None)
    return caller if isinstance(caller, Principal) else None


class _Unsupported(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.errors: list[GraphQLError] = []

    def enter_selection_set(self, node: SelectionSetNode, *_: object) -> None:
        if not node.selections:
            self.errors.append(
                GraphQLError("A selection set cannot be empty: select at least one field.", node)
            )

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        if "\x00" in node.value:
            self.errors.append(GraphQLError(NUL_MESSAGE, node))


NUL_MESSAGE = "A string cannot hold U+0000 NULL (\\u0000): no text in this API does."


def unsupported(document: DocumentNode) -> list[GraphQLError]:
    """What graphql-core parses but no rule refuses: an empty selection set, which the
    specification's grammar does not have and on which the depth limiter fails, and a NULL
    character spelt as an escape, which PostgreSQL cannot compare with any text (SQLite
    can), so both databases give the same answer."""
    finder = _Unsupported()
    visit(document, finder)
    return finder.errors


def _validate(
    schema: GraphQLSchema,
    document: DocumentNode,
    rules: tuple[type[ASTValidationRule], ...],
    hide_suggestions: bool,
) -> list[GraphQLError]:
    # Strawberry's own rules, as its default validation adds them
    errors = unsupported(document)
    if errors:
        return errors
    rules = (*rules, MaybeNullValidationRule, OneOfInputValidationRule)
    return validate(
        schema,
        document,
        rules,
        hide_suggestions=hide_suggestions,
        allow_empty_selection_sets=False,
    )


class Validations:
    """The validation errors of the documents parsed last (none, for most), by the document's
    identity: the parser cache hands the same document object for the same text, and hashing
    a document by value walks every node of it."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._errors: dict[
            tuple[int, tuple[type[ASTValidationRule], ...], bool],
            tuple[weakref.ref[DocumentNode], list[GraphQLError]],
        ] = {}

    def of(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
        hide_suggestions: bool,
    ) -> list[GraphQLError]:
        key = (id(document), rules, hide_suggestions)
        found = self._errors.get(key)
        if found is not None and found[0]() is document:
            return found[1]
        errors = _validate(schema, document, rules, hide_suggestions)
        if self.size:
            if len(self._errors) >= self.size:
                self._errors.pop(next(iter(self._errors)))
            self._errors[key] = (weakref.ref(document), errors)
        return errors


class SchemaPrivacy(SchemaExtension):
    """Validates each document (once per document, rule set and audience: partners send the
    same few again and again), without introspection or suggestions for callers the schema is
    not revealed to."""

    def __init__(self, *, production: bool, validations: Validations | None = None) -> None:
        self.production = production
        # one per schema: rules and documents are that schema's
        self.validations = validations or Validations(size=0)

    def _reveals(self) -> bool:
        return reveals_schema(_caller(self.execution_context.context), production=self.production)

    def on_operation(self) -> Iterator[None]:
        if not self._reveals():
            self.execution_context.validation_rules = (
                *self.execution_context.validation_rules,
                NoSchemaIntrospectionCustomRule,
            )
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.graphql_document is not None:  # always, once parsed
            context.pre_execution_errors = self.validations.of(
                context.schema._schema,
                context.graphql_document,
                tuple(context.validation_rules),
                not self._reveals(),
            )
        yield


@dataclass
class CostCalculator:
    """The cost of one operation: each field 1, and the fields below a list once per item.

    A list's length is its `first` argument (the field's default page when absent or null); the
    edges and nodes of a connection are as long as the connection's `first`; any other list is
    taken to hold ASSUMED_LIST_LENGTH items. Where fragments select on different object types,
    only the costliest counts, as one object is only ever one type. Fragments are costed once
    each (memoised), so a document that spreads fragments into fragments cannot make the
    count itself explode. Introspection reads the schema in memory and costs 1 a field.
    """

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: VariableValues | None
    _fragment_costs: dict[tuple[str, int | None], int] = field(default_factory=dict)

    def selection_set(
        self, selection_set: SelectionSetNode, parent: GraphQLNamedType, page: int | None
    ) -> int:
        common = 0
        by_type: dict[str, int] = {}
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                common += self.field(selection, parent, page)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                cost = self.selection_set(selection.selection_set, inner or parent, page)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None:
                    continue
                condition = fragment.type_condition
                cost = self.fragment(fragment, page)
            else:
                continue
            type_name = condition.name.value if condition else parent.name
            if type_name == parent.name or not isinstance(
                self.schema.get_type(type_name), GraphQLObjectType
            ):
                common += cost  # applies to every object the parent can be
            else:
                by_type[type_name] = by_type.get(type_name, 0) + cost
        return common + max(by_type.values(), default=0)

    def fragment(self, fragment: FragmentDefinitionNode, page: int | None) -> int:
        key = (fragment.name.value, page)
        if key not in self._fragment_costs:
            self._fragment_costs[key] = 0  # a cycle (refused by validation) costs nothing more
            parent = self.schema.get_type(fragment.type_condition.name.value)
            self._fragment_costs[key] = (
                self.selection_set(fragment.selection_set, parent, page) if parent else 0
            )
        return self._fragment_costs[key]

    def field(self, node: FieldNode, parent: GraphQLNamedType, page: int | None) -> int:
        name = node.name.value
        if node.selection_set is None or name.startswith("__"):
            return 1
        if not isinstance(parent, (GraphQLObjectType, GraphQLInterfaceType)):
            return 1
        definition = parent.fields.get(name)
        if definition is None:
            return 1
        is_list = is_list_type(get_nullable_type(definition.type))
        child_page = None
        if "first" in definition.args:
            first = self.first(definition, node)
            # a list with `first` holds that many; a connection's edges and nodes do
            multiplier = first if is_list else 1
            child_page = None if is_list else first
        elif is_list:
            multiplier = ASSUMED_LIST_LENGTH if page is None else page
        else:
            multiplier = 1
        named = get_named_type(definition.type)
        return 1 + multiplier * self.selection_set(node.selection_set, named, child_page)

    def first(self, definition: GraphQLField, node: FieldNode) -> int:
        try:
            value = get_argument_values(definition, node, self.variables).get("first")
        except GraphQLError:
            value = None  # execution reports it
        if not isinstance(value, int) or isinstance(value, bool):
            default = definition.args["first"].default_value
            value = default if isinstance(default, int) else None
        return ASSUMED_PAGE if value is None else max(value, 0)


def operation_cost(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: VariableValues | None,
) -> int:
    """The cost of the operation a request runs (see CostCalculator); 0 when there is none."""
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return 0
    root = schema.get_root_type(operation.operation)
    if root is None:
        return 0
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    return CostCalculator(schema, fragments, variables).selection_set(
        operation.selection_set, root, None
    )


class _PageFromVariable(Visitor):
    """Finds a `first` argument given by a variable."""

    def __init__(self) -> None:
        super().__init__()
        self.found = False

    def enter_argument(self, node: ArgumentNode, *_: object) -> Any:
        if node.name.value == "first" and not isinstance(node.value, IntValueNode | NullValueNode):
            self.found = True
            return BREAK
        return None


def _pages_follow_variables(document: DocumentNode) -> bool:
    """Whether a `first` argument of the document is given by a variable: then the cost of
    its operations depends on the variables."""
    finder = _PageFromVariable()
    visit(document, finder)
    return finder.found


class StaticCosts:
    """The cost of each operation of a document that no variable changes, for the documents
    parsed last (the parser cache hands the same document object for the same text)."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._costs: dict[tuple[int, str | None], tuple[weakref.ref[DocumentNode], int]] = {}

    def get(self, document: DocumentNode, operation_name: str | None) -> int | None:
        found = self._costs.get((id(document), operation_name))
        if found is None or found[0]() is not document:
            return None
        return found[1]

    def put(self, document: DocumentNode, operation_name: str | None, cost: int) -> None:
        if self.size == 0:
            return
        if len(self._costs) >= self.size:
            self._costs.pop(next(iter(self._costs)))
        self._costs[(id(document), operation_name)] = (weakref.ref(document), cost)


class QueryCostLimiter(SchemaExtension):
    """Refuses, before anything is resolved, an operation whose cost with its variables is over
    the limit. Where the cost depends on the variables (or is over the limit), they are coerced
    here first, as execution would, with suggestions only for callers the schema is revealed
    to; otherwise execution coerces them, hiding suggestions alike."""

    def __init__(
        self, *, max_cost: int, production: bool, costs: StaticCosts | None = None
    ) -> None:
        self.max_cost = max_cost
        self.production = production
        self.costs = costs or StaticCosts(size=0)

    def on_execute(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        refusal = self._refusal(document) if document is not None else None
        if refusal is not None:
            # execution sees a result already there and runs nothing
            context.result = GraphQLExecutionResult(data=None, errors=refusal)
        yield

    def _refusal(self, document: DocumentNode) -> list[GraphQLError] | None:
        context = self.execution_context
        schema = context.schema._schema
        operation = get_operation_ast(document, context.operation_name)
        if operation is None:
            return None  # execution names the problem
        static = self.costs.get(document, context.operation_name)
        if static is not None and static <= self.max_cost:
            # no variable changes the cost: execution coerces them (and says what is wrong
            # with them, hiding suggestions as here: FragmentExecution)
            return None
        hide = not reveals_schema(_caller(context.context), production=self.production)
        variables = get_variable_values(
            schema,
            operation.variable_definitions or (),
            context.variables or {},
            max_errors=50,
            hide_suggestions=hide,
        )
        if isinstance(variables, list):
            return variables
        cost = static
        if cost is None:
            cost = operation_cost(schema, document, context.operation_name, variables)
            if not _pages_follow_variables(document):
                self.costs.put(document, context.operation_name, cost)
        if cost <= self.max_cost:
            return None
        return [
            GraphQLError(
                f"This operation costs {cost:,}, over the limit of {self.max_cost:,}: each "
                "field counts 1 and the fields below a list count once per item (its `first`, "
                f"or {ASSUMED_LIST_LENGTH} for a list without one). Ask for smaller pages or "
                "fewer nested lists, or split the operation.",
                extensions={"code": QUERY_TOO_COSTLY, "cost": cost, "maxCost": self.max_cost},
            )
        ]
