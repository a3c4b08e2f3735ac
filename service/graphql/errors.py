"""The one place domain errors become GraphQL errors with `extensions.code`."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from service.content.errors import ContentError
from service.db import is_unavailable
from service.observability import (
    UNAVAILABLE_MESSAGE,
    current_request_id,
    note_database_unavailable,
    note_operation,
)

logger = logging.getLogger("service.graphql")

INTERNAL_MESSAGE = "Internal server error"


def error_code(error: GraphQLError) -> str:
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code  # raised with its code, as the cost limit does
    original = error.original_error
    if isinstance(original, ContentError):
        return original.code
    if original is not None and is_unavailable(original):
        return "SERVICE_UNAVAILABLE"  # the database is away or too slow: retry shortly
    if isinstance(original, GraphQLError):
        return "BAD_USER_INPUT"  # a variable's value does not fit its type
    if original is not None:
        return "INTERNAL"
    # graphql-core's own errors: the document or the variables are wrong
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable '$"):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


def coded(error: GraphQLError, *, hide_internal_errors: bool) -> GraphQLError:
    """The error with its code, and with the text of an unexpected one hidden when asked."""
    code = error_code(error)
    message = error.message
    if code == "INTERNAL":
        logger.error("internal error in %s", error.path, exc_info=error.original_error)
        if hide_internal_errors:
            message = INTERNAL_MESSAGE
    elif code == "SERVICE_UNAVAILABLE":
        note_database_unavailable()
        message = UNAVAILABLE_MESSAGE
    extensions = {**(error.extensions or {}), "code": code}
    request_id = current_request_id()
    if request_id is not None:
        extensions["requestId"] = request_id
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None if hide_internal_errors else error.original_error,
        extensions=extensions,
    )


def uncoded(errors: list[GraphQLError] | None) -> bool:
    return any("code" not in (error.extensions or {}) for error in errors or [])


class ErrorCodes(SchemaExtension):
    """Give every error a code and the request's id (which the service's log line of the
    request carries too); hide the text of unexpected ones when asked (production)."""

    def __init__(self, *, hide_internal_errors: bool) -> None:
        self.hide_internal_errors = hide_internal_errors

    def on_operation(self) -> Iterator[None]:
        yield
        # known once the document is parsed: the request's log line and metrics name it
        note_operation(self.execution_context.operation_name)
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [
                coded(error, hide_internal_errors=self.hide_internal_errors)
                for error in result.errors
            ]
