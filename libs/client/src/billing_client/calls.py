"""One logical API operation, described once for both clients: what to send and how to read the answer.

A ``Call`` is built when the caller invokes a resource method, so its Idempotency-Key (a uuid4 unless
the caller gave one) is fixed for that operation and sent unchanged on every retry of it: a create
retried after a lost answer is replayed by the server, never made twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from pydantic import BaseModel

T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)

Params = dict[str, str | int]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: Params = field(default_factory=dict)
    json: Mapping[str, Any] | None = None
    idempotency_key: str | None = None
    # Safe to send again whatever happened to the previous try (see retries.py).
    repeatable: bool = True
    authenticated: bool = True

    @property
    def keyed(self) -> bool:
        return self.idempotency_key is not None


def path(template: str, *ids: str) -> str:
    """``template`` with each id quoted as one path segment (an id can never reach another route)."""
    return template.format(*(quote(i, safe="") for i in ids))


def new_idempotency_key(given: str | None) -> str:
    return given if given is not None else str(uuid.uuid4())


def compact(**fields: Any) -> dict[str, Any]:
    """The fields that were given: an omitted optional field is left to the server's default."""
    return {k: v for k, v in fields.items() if v is not None}


def reader(model: type[ModelT]) -> Callable[[Any], ModelT]:
    return model.model_validate


def keyed_post(template_path: str, model: type[ModelT], body: Mapping[str, Any], key: str | None) -> Call[ModelT]:
    """A POST that takes an Idempotency-Key: one key per logical operation, reused by every retry."""
    return Call("POST", template_path, reader(model), json=body, idempotency_key=new_idempotency_key(key))


def get(template_path: str, model: type[ModelT], params: Params | None = None) -> Call[ModelT]:
    return Call("GET", template_path, reader(model), params=params or {})


class Unset:
    """The type of ``UNSET``: a parameter not given, where ``None`` means "clear this field"."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = Unset()
