"""What Stripe's payment events mean for our transaction (PROTOCOLS.md §4.4), inside the webhook's unit
of work with the transaction's row locked: the verdict goes through ``services.callbacks.decide_notice``
(the same rules as every provider: PRV-3 a final state never flips, PRV-8 other money is an anomaly).

Stripe delivers out of order and more than once, so the *object's own state* decides, never the event
type or its arrival: an event not newer (by ``created``) than the last one applied to the transaction is
replaced by the intent as Stripe has it now (re-fetched). ``payment_intent.payment_failed`` is no
failure: the intent returns to ``requires_payment_method`` and the payer may try again; its error is kept
as the reason should the payment fail for good (``payment_intent.canceled``, ``checkout.session.expired``,
``checkout.session.async_payment_failed``). An authorised intent (``requires_capture``) of a payment the
tenant captures itself (``capture_method: manual``) is published as authorized and left for the
tenant's capture; one of an account that captures manually is captured by us while the transaction may
still be paid, else cancelled, as Octo's two-stage payments are."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from providers_svc.adapters.base import ProviderRejectedError
from providers_svc.adapters.stripe import NAME, StripeAdapter
from providers_svc.adapters.stripe.adapter import idempotency_key
from providers_svc.adapters.stripe.amounts import from_stripe
from providers_svc.db.stripe import IntentState
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.domain.stripe_payments import (
    AUTHORISED,
    METADATA_TRANSACTION,
    STRIPE_AUTHORIZATION,
    failure_of,
    intent_verdict,
    last_error,
    session_paid,
)
from providers_svc.domain.transactions import CallbackResult, Transaction, TransactionStatus, Verdict
from providers_svc.services.callbacks import ProviderNotice, decide_notice, log_outcome
from providers_svc.services.stripe_refunds import apply_refunds
from providers_svc.services.uow import ProvidersUnitOfWork

log = logging.getLogger(__name__)
# Older than any event: the time of an intent state that no intent event has set yet.
_NEVER = datetime(1970, 1, 1, tzinfo=UTC)

INTENT_EVENTS = frozenset(
    f"payment_intent.{name}"
    for name in (
        "succeeded",
        "payment_failed",
        "canceled",
        "processing",
        "requires_action",
        "amount_capturable_updated",
    )
)
SESSION_EVENTS = frozenset(
    f"checkout.session.{name}" for name in ("completed", "expired", "async_payment_succeeded", "async_payment_failed")
)
CHARGE_EVENTS = frozenset({"charge.succeeded", "charge.failed"})
# Each refund they carry is published as provider.refund.updated (services/stripe_refunds.py), then
# the event is handed to the followers.
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refunded", "charge.refund.updated"}
)
PENDING = "pending"  # a payment event that decides nothing yet (3-D Secure, processing, a declined try)
REFUND_RECORDED = "refund_recorded"
UNKNOWN_PAYMENT = "unknown_payment"  # names one of our transactions, but another intent or session


@dataclass(frozen=True)
class Outcome:
    """What an event did (the inbox row's ``result``) and what to log once it is committed."""

    result: str
    transaction_id: str | None = None
    anomaly: str | None = None
    after_commit: Callable[[], None] = field(default=lambda: None)


def id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    # Stripe's ids and ours are short and printable; anything else names nothing (and a NUL could not
    # even be looked up in PostgreSQL).
    if isinstance(value, str) and 0 < len(value) <= 255 and value.isprintable():
        return value
    return None


def our_id_of(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    return id_of(metadata.get(METADATA_TRANSACTION)) if isinstance(metadata, Mapping) else None


async def locked_transaction(
    unit: ProvidersUnitOfWork, adapter: StripeAdapter, *, our_id: str | None, intent_id: str | None
) -> Transaction | None:
    """Our transaction the object speaks of, locked; only one started with this very account."""
    txn = None
    if our_id is not None:
        txn = await unit.stripe.lock_transaction(transaction_id=our_id)
    if txn is None and intent_id is not None:
        txn = await unit.stripe.lock_transaction(payment_intent_id=intent_id)
    if txn is None or txn.account_id != adapter.account.id:
        return None
    return txn


async def apply_outcome(
    unit: ProvidersUnitOfWork, event: VerifiedStripeEvent, adapter: StripeAdapter, row_id: str, now: datetime
) -> Outcome | None:
    """The event's effect on a payment; None for an event type that has none."""
    obj = event.object
    if event.type in INTENT_EVENTS:
        intent_id = id_of(obj.get("id"))
        txn = await locked_transaction(unit, adapter, our_id=our_id_of(obj), intent_id=intent_id)
        if txn is None or intent_id is None:
            return Outcome(CallbackResult.UNKNOWN_TRANSACTION.value)
        return await _IntentEvent(unit, event, adapter, row_id, now, txn).apply(intent_id, obj)
    if event.type in CHARGE_EVENTS:
        intent_id = id_of(obj.get("payment_intent"))
        txn = await locked_transaction(unit, adapter, our_id=our_id_of(obj), intent_id=intent_id)
        if txn is None or intent_id is None:
            return Outcome(CallbackResult.UNKNOWN_TRANSACTION.value)
        return await _IntentEvent(unit, event, adapter, row_id, now, txn).charge(intent_id, obj)
    if event.type in SESSION_EVENTS:
        our_id = id_of(obj.get("client_reference_id")) or our_id_of(obj)
        txn = await locked_transaction(unit, adapter, our_id=our_id, intent_id=None)
        if txn is None:
            return Outcome(CallbackResult.UNKNOWN_TRANSACTION.value)
        return await _IntentEvent(unit, event, adapter, row_id, now, txn).session(obj)
    if event.type in REFUND_EVENTS:
        txn = await locked_transaction(unit, adapter, our_id=our_id_of(obj), intent_id=id_of(obj.get("payment_intent")))
        if txn is None:
            return Outcome(CallbackResult.UNKNOWN_TRANSACTION.value)
        if adapter.account.test and txn.livemode:
            log.error("stripe test account %s speaks of live transaction %s: refused", adapter.account.id, txn.id)
            return Outcome(CallbackResult.LIVEMODE_REFUSED.value, txn.id)
        # Each refund's verdict, published as provider.refund.updated in this unit (services/stripe_refunds).
        applied = await apply_refunds(unit, event, txn, row_id)
        return Outcome(REFUND_RECORDED, txn.id, applied.anomaly)
    return None


@dataclass
class _IntentEvent:
    unit: ProvidersUnitOfWork
    event: VerifiedStripeEvent
    adapter: StripeAdapter
    row_id: str
    now: datetime
    txn: Transaction

    def _refused(self) -> Outcome | None:
        if self.adapter.account.test and self.txn.livemode:
            log.error(
                "stripe test account %s speaks of live transaction %s: refused", self.adapter.account.id, self.txn.id
            )
            return Outcome(CallbackResult.LIVEMODE_REFUSED.value, self.txn.id)
        return None

    def _foreign(self, reference: str) -> bool:
        """Whether the transaction is bound to another object of the same kind (``pi_``/``cs_``)."""
        ours = self.txn.provider_reference
        return ours is not None and ours[:3] == reference[:3] and ours != reference

    async def apply(self, intent_id: str, intent: Mapping[str, Any]) -> Outcome:
        if (refused := self._refused()) is not None:
            return refused
        if self._foreign(intent_id):
            return Outcome(UNKNOWN_PAYMENT, self.txn.id)
        state = await self.unit.stripe.intent_state(self.txn.id)
        seen_at = self.event.created
        if state is not None and self.event.created <= state.status_at:
            # Not newer than what we applied: the intent as it is now decides, not this old picture.
            intent = await self.adapter.api.payment_intent(intent_id)
            seen_at = state.status_at
        if intent.get("status") == AUTHORISED and self.txn.manual and self.txn.status is TransactionStatus.PENDING:
            # The payment's own manual capture: the funds are held for the tenant to capture (a hold of a
            # transaction closed meanwhile is released below, as an account's manual capture is).
            await self.unit.stripe.save_intent_state(
                self.txn.id, IntentState(intent_id, AUTHORISED, seen_at, None, None), self.now
            )
            capturable = intent.get("amount_capturable") or intent.get("amount")
            return self._decide(
                Verdict.AUTHORIZED,
                intent_id,
                capturable,
                intent.get("currency"),
                None,
                None,
                authorization_expires_at=self.event.created + STRIPE_AUTHORIZATION,
            )
        if intent.get("status") == AUTHORISED:
            intent = await self._capture_or_cancel(intent_id, intent)
        code, message = last_error(intent)
        if code is None and state is not None:
            code, message = state.failure_code, state.failure_message
        await self.unit.stripe.save_intent_state(
            self.txn.id, IntentState(intent_id, str(intent.get("status")), seen_at, code, message), self.now
        )
        verdict = intent_verdict(intent)
        if verdict is None:
            return Outcome(PENDING, self.txn.id)
        failure_code = failure_message = None
        if verdict is Verdict.FAILED:
            # The payer's last error (this intent's, or one kept from an earlier event) says why.
            failure_code, failure_message = (
                (code, message or "The payment failed at Stripe") if code else failure_of(intent)
            )
        amount = intent.get("amount")
        if verdict is Verdict.SUCCEEDED and self.txn.manual:
            # A manual capture may take part of the amount: ``amount_received`` is what Stripe took (an
            # intent without it, as a fake Stripe's, names no figure of its own: our capture's stands).
            fallback = self.txn.captured_amount if self.txn.captured_amount is not None else amount
            amount = intent.get("amount_received") or fallback
        return self._decide(verdict, intent_id, amount, intent.get("currency"), failure_code, failure_message)

    async def _capture_or_cancel(self, intent_id: str, intent: Mapping[str, Any]) -> Mapping[str, Any]:
        txn = self.txn
        amount = intent.get("amount")
        currency = str(intent.get("currency", "")).upper()
        # Already succeeded through this very intent (a session Stripe reported paid while its intent
        # was still held): the money is ours to capture, never to release.
        ours = txn.status is TransactionStatus.SUCCEEDED and txn.provider_reference == intent_id
        payable = (
            (ours or (txn.status is TransactionStatus.PENDING and not txn.is_expired(self.now)))
            and currency == txn.currency
            and isinstance(amount, int)
            and from_stripe(amount, currency) == txn.amount
        )
        api = self.adapter.api
        try:
            if payable:
                assert isinstance(amount, int)
                return await api.capture_payment_intent(
                    intent_id, amount, idempotency_key=idempotency_key(txn, f"capture:{txn.amount}")
                )
            return await api.cancel_payment_intent(intent_id, idempotency_key=idempotency_key(txn, "cancel"))
        except ProviderRejectedError as exc:
            log.warning(
                "stripe %s of %s refused (%s): asking Stripe", "capture" if payable else "cancel", intent_id, exc.code
            )
            return await api.payment_intent(intent_id)  # decided meanwhile (our cancel, Stripe's expiry)

    async def charge(self, intent_id: str, charge: Mapping[str, Any]) -> Outcome:
        if (refused := self._refused()) is not None:
            return refused
        if self._foreign(intent_id):
            return Outcome(UNKNOWN_PAYMENT, self.txn.id)
        state = await self.unit.stripe.intent_state(self.txn.id)
        newer = state is None or self.event.created > state.status_at
        if self.event.type == "charge.failed":
            if newer:
                code = charge.get("failure_code")
                kept = IntentState(
                    intent_id,
                    state.status if state is not None else "requires_payment_method",
                    # A session event says nothing of the intent's own status: it orders no intent event
                    # (the session's success and the intent's come in the same second; the intent's must
                    # not then be taken for an older picture and cost a call to Stripe under the lock).
                    state.status_at if state is not None else _NEVER,
                    f"stripe_{code}" if code else "stripe_payment_failed",
                    str(charge.get("failure_message") or "The card was declined")[:500],
                )
                await self.unit.stripe.save_intent_state(self.txn.id, kept, self.now)
            return Outcome(PENDING, self.txn.id)
        if charge.get("status") != "succeeded" or charge.get("captured") is not True:
            return Outcome(PENDING, self.txn.id)  # authorised only: amount_capturable_updated decides
        amount = charge.get("amount_captured") if self.txn.manual else None
        return self._decide(
            Verdict.SUCCEEDED, intent_id, amount or charge.get("amount"), charge.get("currency"), None, None
        )

    async def session(self, session: Mapping[str, Any]) -> Outcome:
        if (refused := self._refused()) is not None:
            return refused
        session_id = id_of(session.get("id")) or ""
        if self._foreign(session_id):
            return Outcome(UNKNOWN_PAYMENT, self.txn.id)
        intent_id = id_of(session.get("payment_intent"))
        state = await self.unit.stripe.intent_state(self.txn.id)
        if intent_id is not None and (state is None or state.payment_intent_id != intent_id):
            kept = IntentState(
                intent_id,
                state.status if state is not None else f"session_{session.get('status')}",
                # A session event says nothing of the intent's own status: it orders no intent event
                # (the session's success and the intent's come in the same second; the intent's must
                # not then be taken for an older picture and cost a call to Stripe under the lock).
                state.status_at if state is not None else _NEVER,
                state.failure_code if state is not None else None,
                state.failure_message if state is not None else None,
            )
            await self.unit.stripe.save_intent_state(self.txn.id, kept, self.now)
        kind = self.event.type.removeprefix("checkout.session.")
        reference = intent_id or session_id
        amount, currency = session.get("amount_total"), session.get("currency")
        if self.txn.manual and kind in ("completed", "async_payment_succeeded"):
            # A manual-capture session's payment is held, not taken: the intent's events decide.
            return Outcome(PENDING, self.txn.id)
        if kind == "async_payment_succeeded" or (kind == "completed" and session_paid(session)):
            return self._decide(Verdict.SUCCEEDED, reference, amount, currency, None, None)
        if kind in ("expired", "async_payment_failed"):
            code = state.failure_code if state is not None else None
            message = state.failure_message if state is not None else None
            fallback = ("stripe_session_expired", "The Checkout Session expired")
            if kind == "async_payment_failed":
                fallback = ("stripe_async_payment_failed", "The payment failed after the payer left Stripe's page")
            return self._decide(
                Verdict.FAILED, reference, amount, currency, code or fallback[0], message or fallback[1]
            )
        return Outcome(PENDING, self.txn.id)  # completed but unpaid: the async events decide

    def _decide(
        self,
        verdict: Verdict,
        reference: str,
        amount: Any,
        currency: Any,
        failure_code: str | None,
        failure_message: str | None,
        *,
        authorization_expires_at: datetime | None = None,
    ) -> Outcome:
        code = str(currency or "").upper()
        ours = from_stripe(amount, code) if isinstance(amount, int) and not isinstance(amount, bool) else None
        notice = ProviderNotice(
            provider=NAME,
            external_id=self.event.event_id,
            event_type=self.event.type,
            transaction_id=self.txn.id,
            verdict=verdict,
            amount=ours,
            currency=code,
            payload="",
            # The intent's id (a session's success brings it); a failed session keeps its own.
            provider_reference=reference if reference.startswith("pi_") else None,
            failure_code=failure_code,
            failure_message=failure_message,
            test_only=self.adapter.account.test,
            authorization_expires_at=authorization_expires_at,
        )
        result, kind, anomaly = decide_notice(self.unit, self.txn, notice, self.row_id, self.now)
        txn = self.txn
        return Outcome(result.value, txn.id, kind, lambda: log_outcome(notice, txn, result, anomaly))
