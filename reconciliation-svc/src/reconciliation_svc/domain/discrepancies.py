"""A discrepancy: one fact on which our records and a provider's disagree, with the evidence of both.

**The dedupe key** (REC-1) names the fact, never the values found: the same fact found again (by a
second run over the same period, a redelivered anomaly event, a rebuild) has the same key and adds
nothing, because ``discrepancies.dedupe_key`` is unique. It is ``<kind>:<provider>:<subject>``, where
the subject is, in this order of preference, our refund id, our payment id, or the provider's reference
of the record (``discrepancy_key``); an anomaly is ``anomaly:<source>:<anomaly id>`` (``anomaly_key``),
one per anomaly the publisher recorded. A matcher that wants a fact counted again once it has been
resolved must put something into the subject that tells the occurrences apart (a run id, a date).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

DiscrepancyKind = Literal[
    # The provider has a record we have none of (money may have moved without our knowing).
    "missing_ours",
    # We have a record the provider has none of.
    "missing_at_provider",
    "amount_mismatch",
    "currency_mismatch",
    # Both have it, in states that contradict each other (we say SUCCEEDED, it says failed...).
    "status_mismatch",
    # The provider has several records for one of ours (a double charge).
    "duplicate",
    # A publisher recorded evidence its state machine could not apply (billing_contracts Anomaly).
    "anomaly",
]
DISCREPANCY_KINDS: frozenset[str] = frozenset(get_args(DiscrepancyKind))

DiscrepancyState = Literal["open", "resolved", "ignored"]
DISCREPANCY_STATES: frozenset[str] = frozenset(get_args(DiscrepancyState))

# What an admin may do to a discrepancy in each state (REC-5). Resolved and ignored are final: a fact
# that comes back is found again only under a new key.
_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "open": frozenset({"resolved", "ignored"}),
    "resolved": frozenset(),
    "ignored": frozenset(),
}

# A subject's parts are joined with ":"; the separator may not appear inside one of them, or two facts
# could share a key.
_SEPARATOR = ":"


def can_change(from_state: str, to_state: str) -> bool:
    return to_state in _TRANSITIONS.get(from_state, frozenset())


def _part(value: str) -> str:
    if not value or _SEPARATOR in value:
        raise ValueError(f"a dedupe key part must be non-empty and free of {_SEPARATOR!r}: {value!r}")
    return value


def discrepancy_key(
    kind: str,
    provider: str,
    *,
    refund_id: str | None = None,
    payment_id: str | None = None,
    provider_reference: str | None = None,
) -> str:
    """The dedupe key of a fact found by comparing records (see the module docstring)."""
    if kind not in DISCREPANCY_KINDS or kind == "anomaly":
        raise ValueError(f"not a matching kind: {kind!r}")
    subject = refund_id or payment_id or provider_reference
    if subject is None:
        raise ValueError("a discrepancy needs a refund id, a payment id or a provider reference")
    # A provider reference may contain ":" (nothing constrains a provider's ids); it goes last and only
    # the other parts are checked, so a key still names exactly one (kind, provider, subject).
    return f"{_part(kind)}{_SEPARATOR}{_part(provider)}{_SEPARATOR}{subject}"


def anomaly_key(source: str, anomaly_id: str) -> str:
    """The dedupe key of an anomaly event's discrepancy: one per recorded anomaly."""
    return f"anomaly{_SEPARATOR}{_part(source)}{_SEPARATOR}{anomaly_id}"


@dataclass(frozen=True)
class NewDiscrepancy:
    """What a finder (the matcher, the anomaly consumer) records; ``record_discrepancy`` stores it once."""

    kind: DiscrepancyKind
    provider: str
    dedupe_key: str
    detail: str
    account_id: str | None = None
    tenant_id: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    provider_reference: str | None = None
    # The evidence: our record and theirs as found (JSON objects), either None when it has none.
    ours: Mapping[str, Any] | None = None
    theirs: Mapping[str, Any] | None = None
    run_id: str | None = None
    detected_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in DISCREPANCY_KINDS:
            raise ValueError(f"unknown discrepancy kind {self.kind!r}")


@dataclass(frozen=True)
class Change:
    """One state change of a discrepancy (its audit row)."""

    from_state: str
    to_state: str
    reason: str | None
    changed_by: str
    changed_at: datetime


@dataclass(frozen=True)
class Discrepancy:
    id: str
    kind: str
    provider: str
    dedupe_key: str
    detail: str
    state: str
    detected_at: datetime
    updated_at: datetime
    account_id: str | None = None
    tenant_id: str | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    provider_reference: str | None = None
    ours: Mapping[str, Any] | None = None
    theirs: Mapping[str, Any] | None = None
    state_reason: str | None = None
    changed_by: str | None = None
    changed_at: datetime | None = None
    run_id: str | None = None
    changes: tuple[Change, ...] = field(default=())
