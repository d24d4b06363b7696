"""The matching rules: one key's records on both sides (our payment or refund, and every statement
line the provider gave for it) → the discrepancies they show. Pure: the streaming join that feeds it
lives in ``services/matching.py``. README "Matching rules" states the same rules in prose.

Which fields decide each kind:

- ``missing_ours``: a line that moved money (payment ``succeeded``/``refunded``, refund ``succeeded``)
  inside the period, and no record of ours under its key.
- ``missing_at_provider``: our payment that took money (``SUCCEEDED``, ``PARTIALLY_REFUNDED``,
  ``REFUNDED``) or our ``SUCCEEDED`` refund, inside the period, and no line for it.
- ``duplicate``: more than one money-moving line under one key (the same reference twice, or two
  references for one of our payments or refunds).
- ``currency_mismatch``, else ``amount_mismatch``: the currency, else the amount (minor units) of our
  record and of the provider's line (the money-moving one, else the latest).
- ``status_mismatch``: one side says money moved and the other says it did not; or the provider
  reports a payment reversed in full that we hold as kept.

Disputes are compared as their money movements (``dispute`` records): a withdrawal (money out) and a
reinstatement (money back, a won dispute), each under ``<dispute id>:withdrawn|reinstated``, with the
same rules: a settlement line of a movement we never saw is ``missing_ours``, a movement of ours the
file lacks ``missing_at_provider``, a line of a movement ours says did not happen ``status_mismatch``.
A won dispute's two movements both match, and net to zero on both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from reconciliation_svc.domain.discrepancies import DiscrepancyKind, NewDiscrepancy, discrepancy_key
from reconciliation_svc.domain.periods import Window

RecordKind = Literal["payment", "refund", "dispute"]

OUR_PAYMENT_MONEY = frozenset({"SUCCEEDED", "PARTIALLY_REFUNDED", "REFUNDED"})
OUR_PAYMENT_KEPT = frozenset({"SUCCEEDED", "PARTIALLY_REFUNDED"})
OUR_REFUND_MONEY = frozenset({"SUCCEEDED"})
THEIR_PAYMENT_MONEY = frozenset({"succeeded", "refunded"})
THEIR_REFUND_MONEY = frozenset({"succeeded"})
OUR_DISPUTE_MONEY = frozenset({"WITHDRAWN", "REINSTATED"})
THEIR_DISPUTE_MONEY = frozenset({"withdrawn", "reinstated"})
_THEIR_MONEY: dict[str, frozenset[str]] = {
    "payment": THEIR_PAYMENT_MONEY,
    "refund": THEIR_REFUND_MONEY,
    "dispute": THEIR_DISPUTE_MONEY,
}
_OUR_MONEY: dict[str, frozenset[str]] = {
    "payment": OUR_PAYMENT_MONEY,
    "refund": OUR_REFUND_MONEY,
    "dispute": OUR_DISPUTE_MONEY,
}
# Lines of one key kept as evidence; more are counted, not kept (memory stays flat on any input).
MAX_EVIDENCE_LINES = 20


@dataclass(frozen=True)
class OurRecord:
    """Our payment or refund as the projection holds it; ``at`` places it in a period (a payment's
    success, else its creation; a refund's last change)."""

    id: str
    status: str
    amount: int
    currency: str
    at: datetime | None
    tenant_id: str | None = None
    provider: str | None = None
    provider_reference: str | None = None
    account_id: str | None = None
    # A refund's (a dispute's) payment.
    payment_id: str | None = None

    def evidence(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass(frozen=True)
class TheirLine:
    """One statement line (a ``StatementRecord`` as staged)."""

    seq: int
    provider: str
    provider_reference: str
    amount: int
    currency: str
    status: str
    occurred_at: datetime
    origin: str = "api"
    line: int | None = None
    payment_id: str | None = None
    refund_id: str | None = None
    # A dispute line's payment as the provider names it.
    payment_reference: str | None = None

    def evidence(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


@dataclass
class Group:
    """Everything under one key: our record (or none) and the provider's lines (kept up to
    ``MAX_EVIDENCE_LINES``, all counted)."""

    key: str
    ours: OurRecord | None = None
    theirs: list[TheirLine] = field(default_factory=list)
    line_count: int = 0
    money_lines: list[TheirLine] = field(default_factory=list)
    money_count: int = 0

    def add(self, line: TheirLine, money: bool) -> None:
        self.line_count += 1
        if len(self.theirs) < MAX_EVIDENCE_LINES:
            self.theirs.append(line)
        if money:
            self.money_count += 1
            if len(self.money_lines) < MAX_EVIDENCE_LINES:
                self.money_lines.append(line)

    @property
    def primary(self) -> TheirLine | None:
        """The line that stands for the provider: the first that moved money, else the latest."""
        if self.money_lines:
            return self.money_lines[0]
        if self.theirs:
            return max(self.theirs, key=lambda t: (t.occurred_at, t.seq))
        return None


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items() if v is not None}


@dataclass(frozen=True)
class Matcher:
    """The rules for one kind of record (payments or refunds) of one account and period."""

    kind: RecordKind
    account_id: str
    window: Window
    run_id: str | None = None
    provider: str | None = None

    def is_money(self, line: TheirLine) -> bool:
        return line.status in _THEIR_MONEY[self.kind]

    def compare(self, group: Group) -> list[NewDiscrepancy]:
        ours, primary = group.ours, group.primary
        if primary is None:
            if ours is not None and self._ours_moved_money(ours) and self.window.owns(ours.at):
                return [
                    self._found("missing_at_provider", group, f"{self._ours_text(ours)}; the provider has no record")
                ]
            return []
        found: list[NewDiscrepancy] = []
        if group.money_count > 1:
            refs = sorted({t.provider_reference for t in group.money_lines})
            found.append(
                self._found(
                    "duplicate",
                    group,
                    f"the provider reports {group.money_count} {self.kind}s that moved money under one key "
                    f"({', '.join(refs)})",
                )
            )
        if ours is None:
            if self.is_money(primary) and self.window.owns(primary.occurred_at):
                found.append(
                    self._found(
                        "missing_ours",
                        group,
                        f"the provider reports a {primary.status} {self.kind} of {primary.amount} {primary.currency} "
                        f"({primary.provider_reference}); we have no record of it",
                    )
                )
            return found
        if primary.currency != ours.currency:
            found.append(
                self._found(
                    "currency_mismatch", group, f"we hold {ours.currency}, the provider reports {primary.currency}"
                )
            )
        elif primary.amount != ours.amount:
            found.append(
                self._found(
                    "amount_mismatch",
                    group,
                    f"we hold {ours.amount} {ours.currency}, the provider reports {primary.amount} {primary.currency}",
                )
            )
        if self._statuses_disagree(ours, primary):
            found.append(
                self._found(
                    "status_mismatch",
                    group,
                    f"we hold {self.kind} {ours.status}, the provider reports {primary.status}",
                )
            )
        return found

    def _ours_moved_money(self, ours: OurRecord) -> bool:
        return ours.status in _OUR_MONEY[self.kind]

    def _statuses_disagree(self, ours: OurRecord, theirs: TheirLine) -> bool:
        if self._ours_moved_money(ours) != self.is_money(theirs):
            return True
        if self.kind == "dispute":
            return False
        if self.kind == "payment":
            # Reversed in full at the provider, kept (wholly or partly) by us. The converse is fine: a
            # Stripe charge stays "succeeded" after its refunds, which are lines of their own.
            return theirs.status == "refunded" and ours.status in OUR_PAYMENT_KEPT
        # A refund pending on our side that the provider says failed: a verdict we missed.
        return ours.status == "PENDING" and theirs.status in ("failed", "cancelled")

    @staticmethod
    def _ours_text(ours: OurRecord) -> str:
        return f"we hold {ours.status} {ours.amount} {ours.currency}"

    def _found(self, kind: DiscrepancyKind, group: Group, detail: str) -> NewDiscrepancy:
        ours, primary = group.ours, group.primary
        provider = (primary.provider if primary is not None else None) or (ours.provider if ours else None)
        provider = provider or self.provider or "unknown"
        reference = primary.provider_reference if primary is not None else (ours.provider_reference if ours else None)
        if self.kind == "payment":
            payment_id = ours.id if ours is not None else (primary.payment_id if primary is not None else None)
            refund_id = None
            key = discrepancy_key(kind, provider, payment_id=payment_id, provider_reference=reference)
        elif self.kind == "dispute":
            payment_id = ours.payment_id if ours is not None else (primary.payment_id if primary is not None else None)
            refund_id = None
            # "dispute:<dispute id>:<withdrawn|reinstated>": never the key of its payment's own facts.
            key = discrepancy_key(kind, provider, provider_reference=f"dispute:{group.key}")
        else:
            refund_id = ours.id if ours is not None else (primary.refund_id if primary is not None else None)
            payment_id = ours.payment_id if ours is not None else (primary.payment_id if primary is not None else None)
            # A refund the provider names only by its own id: "refund:<id>", so it never shares a key
            # with the payment line of the same provider id (Payme's and Click's refunds reuse it).
            subject = None if refund_id else f"refund:{reference}"
            key = discrepancy_key(kind, provider, refund_id=refund_id, provider_reference=subject)
        if kind == "duplicate":
            theirs: dict[str, Any] | None = {
                "count": group.money_count,
                "lines": [t.evidence() for t in group.money_lines],
            }
        else:
            theirs = primary.evidence() if primary is not None else None
        return NewDiscrepancy(
            kind=kind,
            provider=provider,
            dedupe_key=key,
            detail=detail,
            account_id=self.account_id,
            tenant_id=ours.tenant_id if ours is not None else None,
            payment_id=payment_id,
            refund_id=refund_id,
            provider_reference=reference,
            ours=ours.evidence() if ours is not None else None,
            theirs=theirs,
            run_id=self.run_id,
        )
