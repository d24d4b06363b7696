"""Turning untrusted input into validated values: a body into a pydantic model, query parameters into
ints, bounded text or one of a set. Every failure is a 422 naming the field. Pure (no aiohttp)."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from billing_contracts.problems import FieldError
from pydantic import BaseModel, ValidationError

from billing_runtime.errors import ProblemError

ModelT = TypeVar("ModelT", bound=BaseModel)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def field_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(p) for p in err["loc"]) or "body"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        errors.append(FieldError(field=field, message=message))
    return errors


def parse(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """Validate a body into ``model`` or raise a 422 naming every bad field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        raise ProblemError(422, "validation_error", f"{errors[0].field}: {errors[0].message}", errors=errors) from exc


def query_int(raw: str | None, name: str, *, default: int, lo: int, hi: int) -> int:
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,9}", raw) or not lo <= int(raw) <= hi:
        raise ProblemError(
            422,
            "validation_error",
            f"{name} must be an integer from {lo} to {hi}",
            errors=[FieldError(field=name, message=f"must be an integer from {lo} to {hi}")],
        )
    return int(raw)


def query_text(raw: str | None, name: str, *, max_length: int) -> str | None:
    if raw is None:
        return None
    if not raw or len(raw) > max_length or _CONTROL.search(raw):
        message = f"must be 1-{max_length} printable characters"
        raise ProblemError(
            422, "validation_error", f"{name} {message}", errors=[FieldError(field=name, message=message)]
        )
    return raw


def query_choice(raw: str | None, name: str, choices: frozenset[str] | tuple[str, ...]) -> str | None:
    if raw is None:
        return None
    if raw not in choices:
        message = f"must be one of {', '.join(sorted(choices))}"
        raise ProblemError(
            422, "validation_error", f"{name} {message}", errors=[FieldError(field=name, message=message)]
        )
    return raw
