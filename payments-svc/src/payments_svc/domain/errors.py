"""Expected business outcomes, each with its HTTP status and stable code (rendered as problem+json)."""

from __future__ import annotations

from billing_runtime.errors import ProblemError


class InvalidState(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(409, "invalid_state", detail)


class NotFound(ProblemError):
    def __init__(self, what: str = "payment") -> None:
        super().__init__(404, "not_found", f"No such {what}.")
