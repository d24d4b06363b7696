"""``build_document``: declared operations → one OpenAPI 3.1 document (a JSON-ready dict)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from billing_contracts.openapi.operations import HTML, JSON, PROBLEM_JSON, Auth, Operation, Param, Reply
from billing_contracts.openapi.schemas import Mode, SchemaSet
from billing_contracts.problems import ProblemDetails

OPENAPI_VERSION = "3.1.0"


class Problem(ProblemDetails):
    """RFC 9457 problem details (`application/problem+json`): clients branch on `code`, never on
    `title` or `detail`. A 422 names each invalid field in `errors`; some carry more members (a
    refund's `amount_refundable`)."""


IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]{1,255}$"},
    "Retries with the same key replay the first answer (API.md, Idempotency).",
    required=True,
)
HEADERS: dict[str, dict[str, Any]] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    },
    "Idempotent-Replayed": {
        "description": "`true` when the answer is the stored one of an earlier request with this key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Cache-Control": {"description": "`no-store` on answers that carry a secret.", "schema": {"type": "string"}},
    "ETag": {"description": "Identifies this version of the document.", "schema": {"type": "string"}},
    "Location": {"description": "Where the payer is sent next.", "schema": {"type": "string"}},
}
ERRORS = {
    400: "The body is not a JSON object, or a required header is missing or malformed.",
    401: "Missing, malformed, expired, revoked or forged credentials.",
    403: "Authenticated, but not allowed here (a tenant token on an admin route).",
    404: "No such object (or another tenant's: never said which).",
    409: "Not allowed in the object's current state, or the same Idempotency-Key is still in flight.",
    413: "The body is over the size limit.",
    415: "The body is not `application/json`.",
    422: "A field is invalid (`errors` names each), or an Idempotency-Key was reused with another body.",
    429: "Rate limit exceeded: retry after `Retry-After` seconds.",
    503: "A dependency is unavailable; nothing was half-done. Retry after `Retry-After` seconds.",
}
RETRY_STATUSES = (429, 503)
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "tenantToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "A tenant access token from `POST /v1/auth/token`.",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "The platform operator's token (`BILLING_ADMIN_TOKEN`).",
    },
    "paymeBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "Payme's Merchant API credentials: `Paycom:<the kassa key>`.",
    },
    "stripeSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Stripe-Signature",
        "description": "Stripe's signature of the event with the endpoint's signing secret.",
    },
    "sandboxSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Sandbox-Signature",
        "description": "The sandbox bank's signature of its callback (docs/INTERNAL.md).",
    },
}
SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    Auth.TENANT: [{"tenantToken": []}],
    Auth.ADMIN: [{"adminToken": []}],
}
AUTH_NOTES = {
    Auth.CHECKOUT: "No credential: the checkout token in the path is the payer's only credential.",
    Auth.PAYER_LINK: "No credential: the unguessable link is the payer's credential.",
    Auth.PROVIDER: "Called by the provider, authenticated by its own signature or credentials; "
    "answers are in the provider's own format, never problem+json.",
    Auth.PUBLIC: "No credential.",
}


def implied_errors(op: Operation) -> list[int]:
    """The problem+json statuses an operation can give because of what it declares."""
    if not op.problems:
        return sorted(set(op.errors))
    statuses = {503, *op.errors}  # an upstream or a database can always be away
    if op.auth is Auth.TENANT:
        statuses |= {401, 429}
    elif op.auth is Auth.ADMIN:
        statuses |= {401, 403}
    if any(p.location == "path" for p in op.params):
        statuses.add(404)
    if any(p.location == "query" for p in op.params):
        statuses.add(422)
    if op.body is not None or op.body_schema is not None:
        statuses |= {413, 422}
        if op.body_content_type == JSON:
            statuses |= {400, 415}
    if op.idempotency_key:
        statuses |= {400, 409, 422}
    return sorted(statuses)


def build_document(
    operations: Iterable[Operation],
    *,
    title: str,
    version: str,
    description: str = "",
    tags: Sequence[tuple[str, str]] = (),
    webhooks: Sequence[tuple[str, str, type[BaseModel]]] = (),
) -> dict[str, Any]:
    """The document of ``operations``. ``tags``: (name, description) in display order. ``webhooks``:
    (event type, summary, body model) of the calls the platform makes to tenants."""
    ops = sorted(operations, key=lambda o: (o.path, o.method.upper()))
    seen: set[tuple[str, str]] = set()
    for op in ops:
        if op.key in seen:
            raise ValueError(f"{op.method} {op.path} is declared twice")
        seen.add(op.key)
    schemas = SchemaSet(_models(ops, webhooks))
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": version, "description": description},
        "tags": [{"name": name, "description": text} for name, text in tags],
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }
    if webhooks:
        document["webhooks"] = {
            event: {
                "post": {
                    "summary": summary,
                    "tags": ["Webhooks"],
                    "requestBody": {
                        "required": True,
                        "content": {JSON: {"schema": schemas.ref(model, "serialization")}},
                    },
                    "responses": {"2XX": {"description": "Received; any other answer is retried."}},
                }
            }
            for event, summary, model in webhooks
        }
    return document


def _models(ops: Sequence[Operation], webhooks: Sequence[tuple[str, str, type[BaseModel]]]) -> list[tuple[Any, Mode]]:
    pairs: list[tuple[Any, Mode]] = [(Problem, "validation")]
    for op in ops:
        if op.body is not None:
            pairs.append((op.body, "validation"))
        pairs.extend((r.model, "serialization") for r in op.replies if r.model is not None)
    pairs.extend((model, "serialization") for _, _, model in webhooks)
    return pairs


def _operation(op: Operation, schemas: SchemaSet) -> dict[str, Any]:
    params = list(op.params) + ([IDEMPOTENCY_KEY] if op.idempotency_key else [])
    description = op.description
    note = AUTH_NOTES.get(op.auth)
    if note:
        description = f"{description}\n\n{note}".strip()
    item: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": description,
        "tags": [op.tag],
        "security": [{name: []} for name in op.security] or SECURITY.get(op.auth, []),
    }
    if params:
        item["parameters"] = [_param(p) for p in params]
    if op.body is not None or op.body_schema is not None:
        schema = schemas.ref(op.body, "validation") if op.body is not None else op.body_schema
        item["requestBody"] = {"required": op.body_required, "content": {op.body_content_type: {"schema": schema}}}
    responses: dict[str, Any] = {}
    for reply in op.replies:
        responses[str(reply.status)] = _reply(reply, schemas)
    problem = schemas.ref(Problem, "validation")
    for status in implied_errors(op):
        if str(status) in responses:
            continue
        answer: dict[str, Any] = {
            "description": ERRORS.get(status, "Error."),
            "content": {PROBLEM_JSON: {"schema": problem}},
        }
        if status in RETRY_STATUSES:
            answer["headers"] = {"Retry-After": {**HEADERS["Retry-After"], "required": True}}
        responses[str(status)] = answer
    item["responses"] = dict(sorted(responses.items()))
    item.update(op.extensions)
    return item


def _param(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.location, "required": p.required or p.location == "path"}
    if p.description:
        out["description"] = p.description
    out["schema"] = p.schema
    return out


def _reply(reply: Reply, schemas: SchemaSet) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description}
    if reply.headers:
        out["headers"] = {name: HEADERS.get(name, {"schema": {"type": "string"}}) for name in reply.headers}
    schema: dict[str, Any] | None = None
    if reply.model is not None:
        schema = schemas.ref(reply.model, "serialization")
    elif reply.schema is not None:
        schema = reply.schema
    elif reply.content_type == HTML:
        schema = {"type": "string"}
    if schema is not None:
        media: dict[str, Any] = {"schema": schema}
        if reply.example is not None:
            media["example"] = reply.example
        out["content"] = {reply.content_type: media}
    return out
