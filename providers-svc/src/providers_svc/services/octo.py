"""Octo's notify callback (PROTOCOLS.md §3.4) as a use case: find the transaction and its account,
verify the signature with that account's secret, then ask Octo itself (the status call) what happened,
and only that answer moves money, through ``services.callbacks.handle_notice`` (once per Octo status).

A callback carries no shop id of its own (§3.4 lists none): the account is the one the transaction
was started with (``provider_transactions.account_id``), so a shop can only speak of its own payments.
``waiting_for_capture`` (two-stage) is decided here: capture while the transaction is pending, unexpired
and for our amount, else cancel. The decision is sent to Octo through ``set_accept`` *and* given as
the callback's answer, so the payment is final at Octo before we answer and a repeat of the callback
finds it so (a second decision could otherwise differ once the transaction expired)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from billing_contracts.envelope import utcnow
from billing_runtime.key_ring import KeyRing

from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.adapters.octo import CLOSED, NAME, OctoProvider, formula_of, shop_of, signature_key_of
from providers_svc.db.repositories import transaction_snapshot
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.transactions import Transaction, TransactionStatus, Verdict
from providers_svc.protocols.octo.amounts import AmountError, from_major
from providers_svc.protocols.octo.callbacks import Callback, CallbackRejected, parse_callback, verify
from providers_svc.protocols.octo.responses import PaymentState
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.callbacks import Handled, ProviderNotice, handle_notice
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

Accept = Literal["capture", "cancel"]
# How long Octo holds a two-stage payment: its pages disagree (30 minutes; up to 7 days for Visa and
# Mastercard, 30 for Humo and Uzcard, configurable: PROTOCOLS.md §3.3), so we take the shortest reading
# and release no later than Octo might.
OCTO_AUTHORIZATION = timedelta(minutes=30)
# Far beyond any real payment (10^13 so'm); a bigger sum is bad input, not an amount to compare.
_MAX_MINOR = 10**15


class OctoRetryLater(Exception):
    """Octo could not confirm the callback yet (unreachable, or its status lags behind): nothing was
    changed, and Octo sends the callback again."""


@dataclass(frozen=True)
class OctoHandled:
    """What a verified callback did: ``handled`` None when Octo's status moves no money yet;
    ``accept`` the decision Octo's ``waiting_for_capture`` callback is answered with."""

    handled: Handled | None
    accept: Accept | None


@dataclass(frozen=True)
class OctoCallbacks:
    uow: UowFactory
    ring: KeyRing
    provider: OctoProvider
    # The account a transaction was started with, from the replica's copy (one per callback otherwise).
    copies: AccountCopies
    clock: Callable[[], datetime] = utcnow
    # How long the simulator holds a two-stage payment (PROVIDERS_SANDBOX_AUTHORIZATION_SECONDS).
    simulator_hold: timedelta = timedelta(days=7)

    async def handle(self, raw: bytes) -> OctoHandled:
        """Raises ``CallbackRejected`` (bad input: counted, answered as an error, nothing changed) or
        ``OctoRetryLater``."""
        callback = parse_callback(raw)
        txn, account = await self._authenticate(callback)
        _check_sum(callback.total_sum, txn.currency)
        client = self.provider.client_for(account)
        try:
            state = await client.status(txn.id)
            if state.shop_transaction_id != txn.id:
                raise OctoRetryLater("Octo's status answer names another transaction")
            accept: Accept | None = None
            if state.status == "waiting_for_capture" and self._held_for_tenant(txn, state):
                # Manual capture: the tenant decides (``/set_accept`` when it captures or releases);
                # answered without a decision, so Octo repeats this callback, absorbed once recorded.
                return OctoHandled(await self._record(callback, state, txn, account), None)
            if state.status == "waiting_for_capture":
                accept = self._decide(txn, state)
                try:
                    state = await client.set_accept(state.octo_payment_uuid, accept)
                except ProviderRejectedError:
                    state = await client.status(txn.id)  # decided meanwhile (our cancel): its word stands
        except (ProviderUnavailableError, ProviderRejectedError) as exc:
            raise OctoRetryLater(f"Octo's status call failed: {exc}") from None
        if callback.status == "waiting_for_capture":
            if state.status == "succeeded":
                accept = "capture"
            elif state.status in CLOSED:
                accept = "cancel"
            elif accept is None:
                # Signed, yet Octo's own status says no one paid: it may lag; never guess a decision.
                raise OctoRetryLater(f"callback says waiting_for_capture, Octo says {state.status}")
        return OctoHandled(await self._record(callback, state, txn, account), accept)

    async def _authenticate(self, callback: Callback) -> tuple[Transaction, BoundAccount]:
        async with self.uow() as unit:
            txn = await transaction_snapshot(unit, callback.shop_transaction_id)
        if txn is None or txn.provider != NAME or txn.account_id is None:
            raise CallbackRejected("unknown_transaction")
        account = await self.copies.by_id(NAME, txn.account_id)
        if account is None or account.provider != NAME:
            raise CallbackRejected("unknown_shop")
        named = callback.fields.get("octo_shop_id")
        if named is not None and str(named) != str(shop_of(account).shop_id):
            raise CallbackRejected("unknown_shop")
        verify(callback, secret=signature_key_of(account), formula=formula_of(account))
        if txn.provider_reference is not None and not hmac.compare_digest(
            txn.provider_reference.encode(), callback.octo_payment_uuid.encode()
        ):
            raise CallbackRejected("unknown_payment")
        return txn, account

    def _held_for_tenant(self, txn: Transaction, state: PaymentState) -> bool:
        """A manual-capture hold of our amount, recorded already or still payable when it came."""
        if not txn.manual or txn.status is not TransactionStatus.PENDING:
            return False
        return txn.authorized_at is not None or (not txn.is_expired(self.clock()) and _amount(state, txn) == txn.amount)

    def _decide(self, txn: Transaction, state: PaymentState) -> Accept:
        fresh = txn.status is TransactionStatus.PENDING and not txn.is_expired(self.clock())
        return "capture" if fresh and _amount(state, txn) == txn.amount else "cancel"

    async def _record(
        self, callback: Callback, state: PaymentState, txn: Transaction, account: BoundAccount
    ) -> Handled | None:
        expires = None
        if state.status == "succeeded":
            verdict = Verdict.SUCCEEDED
        elif state.status == "waiting_for_capture" and txn.manual:
            verdict = Verdict.AUTHORIZED
            expires = self.clock() + (self.simulator_hold if account.simulator else OCTO_AUTHORIZATION)
        elif state.status in CLOSED:
            verdict = Verdict.FAILED
        else:
            log.info("octo callback for %s: Octo says %s, nothing to apply yet", txn.id, state.status)
            return None
        failed = verdict is Verdict.FAILED
        notice = ProviderNotice(
            provider=NAME,
            # Octo sends no event id: one payment reaches each status once, so that pair is the event.
            external_id=f"{state.octo_payment_uuid}:{state.status}",
            event_type=f"payment.{state.status}",
            transaction_id=txn.id,
            verdict=verdict,
            amount=_amount(state, txn),
            currency=txn.currency,
            payload=_payload(callback),
            provider_reference=state.octo_payment_uuid,
            failure_code=f"octo_{state.status}" if failed else None,
            failure_message="Octo cancelled the payment" if failed else None,
            test_only=account.test,
            authorization_expires_at=expires,
        )
        return await handle_notice(self.uow, notice, clock=self.clock)


def _payload(callback: Callback) -> str:
    # The callback as Octo sent it minus its signature material (kept as the raw event).
    kept = {k: v for k, v in callback.fields.items() if k not in ("signature", "hash_key")}
    return json.dumps(kept, sort_keys=True, default=str)


def _check_sum(value: object, currency: str) -> None:
    """The callback's ``total_sum`` is not signed and decides nothing, but a malformed one is bad input."""
    if value is None:
        return
    try:
        minor = from_major(value, currency)
    except (AmountError, KeyError):
        raise CallbackRejected("bad_amount") from None
    if minor > _MAX_MINOR:
        raise CallbackRejected("bad_amount")


def _amount(state: PaymentState, txn: Transaction) -> int | None:
    """The sum Octo's status call gives, in minor units; ours when it gives none; None when it is not
    an amount of our currency (an amount mismatch, recorded as an anomaly)."""
    if state.total_sum is None:
        return txn.amount
    try:
        return from_major(state.total_sum, txn.currency)
    except (AmountError, KeyError):
        return None
