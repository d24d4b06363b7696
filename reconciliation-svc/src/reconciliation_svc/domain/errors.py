"""The service's expected errors (problem+json with a stable code)."""

from __future__ import annotations

from billing_runtime.errors import ProblemError


class NotFound(ProblemError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"No such {what}.")


class InvalidState(ProblemError):
    def __init__(self, detail: str) -> None:
        super().__init__(409, "invalid_state", detail)
