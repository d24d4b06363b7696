"""Why a pending delivery was given up without a further attempt: its endpoint was disabled or deleted."""

from __future__ import annotations


def given_up_reason(*, deleted: bool, disabled_reason: str | None) -> str:
    """The delivery's ``last_error``: a tenant's own disabling ("manual") is plain, the dispatcher's
    says why ("gone", "failing")."""
    if deleted:
        return "endpoint deleted"
    if disabled_reason in (None, "manual"):
        return "endpoint disabled"
    return f"endpoint disabled ({disabled_reason})"


def given_up_label(*, deleted: bool) -> str:
    """The ``reason`` label of ``webhook_deliveries_given_up_total``."""
    return "deleted" if deleted else "disabled"
