"""The schema: `schema` for export (schema/schema.graphql), build_schema(settings) to serve."""

from __future__ import annotations

from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
)
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext

from service.config import PROJECT_ROOT, Settings
from service.graphql.errors import ErrorCodes
from service.graphql.fragments import FragmentExecution
from service.graphql.limits import QueryCostLimiter, SchemaPrivacy, StaticCosts, Validations
from service.graphql.queries import Query as ContentQuery
from service.graphql.staff import Mutation as StaffMutation
from service.graphql.staff import StaffQuery
from service.graphql.webhooks import WebhookMutation, WebhookQuery

Query = merge_types("Query", (ContentQuery, StaffQuery, WebhookQuery))


@strawberry.type(description="Staff operations; each needs `Authorization: Bearer <staff key>`.")
class Mutation(StaffMutation, WebhookMutation):
    pass


class ContentSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # a caller's mistake is answered, not logged as a server fault; ErrorCodes logs
        # the unexpected ones
        return


# parsed documents kept (an LRU): far more than the operations partners' pages use
PARSED_DOCUMENTS = 512


def build_schema(settings: Settings) -> strawberry.Schema:
    # The depth and alias limiters make a new rule class each time one is built; built once
    # here, the rules are the same objects for every operation, so a document's validation
    # is cached across requests (the cache is keyed by the rules).
    rules = [
        *QueryDepthLimiter(max_depth=settings.graphql_max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=settings.graphql_max_aliases).validation_rules,
    ]
    # factories, not instances: an extension keeps per-operation state, so each operation
    # gets its own
    extensions: list[Any] = [
        # the same parsed document for the same text: parsing is skipped, and SchemaPrivacy's
        # validation (cached by document) is too, for the few documents partners send
        partial(ParserCache, maxsize=PARSED_DOCUMENTS),
        partial(AddValidationRules, rules),
        partial(MaxTokensLimiter, max_token_count=settings.graphql_max_tokens),
        partial(ErrorCodes, hide_internal_errors=settings.is_production),
        # validates each document once per audience, which in production is what keeps
        # introspection and suggestions from partners
        partial(
            SchemaPrivacy,
            production=settings.is_production,
            validations=Validations(size=PARSED_DOCUMENTS),
        ),
        partial(
            QueryCostLimiter,
            max_cost=settings.graphql_max_cost,
            production=settings.is_production,
            # the cost of the documents no variable changes: counted once each
            costs=StaticCosts(size=PARSED_DOCUMENTS),
        ),
    ]
    return ContentSchema(
        query=Query,
        mutation=Mutation,
        extensions=extensions,
        # items of held releases completed once, then reused (fragments.py)
        execution_context_class=FragmentExecution,
    )


schema = strawberry.Schema(query=Query, mutation=Mutation)
SCHEMA_FILE = PROJECT_ROOT / "schema" / "schema.graphql"


def schema_sdl() -> str:
    return schema.as_str() + "\n"
