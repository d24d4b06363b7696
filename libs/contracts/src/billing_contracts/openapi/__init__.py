"""The public API's OpenAPI 3.1 document, built from declared operations and their pydantic models.

Each service declares its own operations (``Operation``) next to its routes; ``build_document``
turns any collection of them into one document. Pure: pydantic and the standard library only."""

from billing_contracts.openapi.document import build_document
from billing_contracts.openapi.operations import (
    Auth,
    Operation,
    Param,
    Reply,
    path_param,
    query_choice,
    query_int,
    query_text,
)

__all__ = [
    "Auth",
    "Operation",
    "Param",
    "Reply",
    "build_document",
    "path_param",
    "query_choice",
    "query_int",
    "query_text",
]
