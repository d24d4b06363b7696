"""The sandbox "bank": it records what the payer chose on the payer page and owes providers-svc a signed
callback for it, delivered by ``CallbackSender`` with retries until a 2xx.

It shares the service's database for convenience, but behaves like an outside party: it reads
``provider_transactions`` (as a real provider knows the amount it was asked for) and writes only its own
``sandbox_charges``; transactions move only through the verified callback, never from here (PRV-10).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import aiohttp
from billing_contracts.envelope import utcnow
from billing_runtime.ids import new_id
from billing_runtime.outbox import wait_or_timeout

from providers_svc.adapters.base import StatusResult
from providers_svc.adapters.sandbox import FAILURE_MESSAGES, SIGNATURE_HEADER, sign
from providers_svc.db.models import SandboxChargeRow
from providers_svc.db.sandbox_charges import ChargeDecision, DueCallback, SandboxChargeRepository
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.metrics import ProvidersMetrics
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


class PayerChoice(StrEnum):
    """The three buttons of the payer page."""

    SUCCEED = "succeed"
    DECLINE = "decline"
    PENDING = "pending"  # stay pending, then succeed after ``sandbox_pending_delay``
    # Succeed, but the bank never delivers the callback: the payment stays pending here until
    # reconciliation's sync asks the bank (docs/INTERNAL.md "Reconciliation"). Stored as ``succeed``.
    SUCCEED_LOST = "succeed_lost"

    @property
    def outcome(self) -> str:
        """What the ledger records: the money's fate, whatever happens to the callback."""
        return PayerChoice.SUCCEED.value if self is PayerChoice.SUCCEED_LOST else self.value


_CANCELLED = "cancelled"
# Manual capture: the payer's "succeed" only holds the funds (``authorized``) until our capture takes
# some of them (``captured``, with ``captured_amount``) or a cancellation releases them.
AUTHORIZED = "authorized"
CAPTURED = "captured"


class CaptureRefused(LookupError):
    """The bank holds nothing to capture for the transaction (never authorized, or released)."""


class PageState(StrEnum):
    PAYABLE = "payable"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    PAID = "paid"
    PROCESSING = "processing"
    DECLINED = "declined"
    # A live tenant's transaction: the sandbox moves no real money, so it never decides one.
    LIVE = "live"


@dataclass(frozen=True)
class PageView:
    state: PageState
    transaction: Transaction | None


def _page_state(txn: Transaction | None, charge: SandboxChargeRow | None, now: datetime) -> PageState:
    if txn is None:
        return PageState.UNKNOWN
    if txn.livemode:
        return PageState.LIVE
    if charge is not None and charge.outcome == PayerChoice.PENDING.value and txn.status is TransactionStatus.SUCCEEDED:
        return PageState.PAID
    if charge is not None:
        return {
            AUTHORIZED: PageState.PAID,
            CAPTURED: PageState.PAID,
            PayerChoice.SUCCEED.value: PageState.PAID,
            PayerChoice.PENDING.value: PageState.PROCESSING,
            PayerChoice.DECLINE.value: PageState.DECLINED,
            _CANCELLED: PageState.CANCELLED,
        }[charge.outcome]
    if txn.status is TransactionStatus.CANCELLED:
        return PageState.CANCELLED
    if txn.status is TransactionStatus.SUCCEEDED:
        return PageState.PAID
    if txn.status is TransactionStatus.FAILED:
        return PageState.DECLINED
    if txn.is_expired(now):
        return PageState.EXPIRED
    return PageState.PAYABLE


def callback_body(
    txn: Transaction, choice: PayerChoice, event_id: str, created: datetime, hold_until: datetime | None = None
) -> str:
    """The JSON the bank will POST to ``/billing/sandbox`` (docs/INTERNAL.md, sandbox protocol). A
    manual-capture transaction's success is ``payment.authorized`` (held until ``hold_until``)."""
    declined = choice is PayerChoice.DECLINE
    kind = "payment.failed" if declined else "payment.succeeded"
    if txn.manual and not declined:
        kind = "payment.authorized"
    body: dict[str, object] = {
        "id": event_id,
        "type": kind,
        "transaction": txn.id,
        "amount": txn.amount,
        "currency": txn.currency,
        "created": int(created.timestamp()),
    }
    if declined:
        body["failure_code"] = "card_declined"
    if kind == "payment.authorized" and hold_until is not None:
        body["authorization_expires_at"] = int(hold_until.timestamp())
    return json.dumps(body, separators=(",", ":"))


class SandboxBank:
    """Decisions of the sandbox bank. Each transaction gets at most one decision (PRV-6): the payer's
    choice or a cancellation, whichever the database records first."""

    def __init__(
        self,
        uow_factory: UowFactory,
        *,
        pending_delay: float,
        authorization_seconds: int = 7 * 24 * 3600,
        on_decision: Callable[[], None] | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._uow_factory = uow_factory
        self._pending_delay = timedelta(seconds=pending_delay)
        self._hold = timedelta(seconds=authorization_seconds)
        self._on_decision = on_decision
        self._clock = clock

    async def view(self, txn_id: str) -> PageView:
        async with self._uow_factory() as uow:
            txn, charge = await uow.sandbox_charges.with_transaction(txn_id)
        return PageView(_page_state(txn, charge, self._clock()), txn)

    async def decide(self, txn_id: str, choice: PayerChoice) -> tuple[bool, PageView]:
        """Record the payer's choice; (False, the current view) when it is no longer payable."""
        now = self._clock()
        async with self._uow_factory() as uow:
            txn, charge = await uow.sandbox_charges.with_transaction(txn_id)
            state = _page_state(txn, charge, now)
            if txn is None or state is not PageState.PAYABLE:
                return False, PageView(state, txn)
            event_id = new_id("sbevt")
            due: datetime | None = now + self._pending_delay if choice is PayerChoice.PENDING else now
            if choice is PayerChoice.SUCCEED_LOST:
                due = None  # never due: the sender never claims it
            outcome = choice.outcome
            if txn.manual and outcome == PayerChoice.SUCCEED.value:
                outcome = AUTHORIZED
            recorded = await uow.sandbox_charges.decide_once(
                ChargeDecision(
                    transaction_id=txn.id,
                    outcome=outcome,
                    event_id=event_id,
                    callback_body=callback_body(txn, choice, event_id, now, now + self._hold),
                    due_at=due,
                ),
                now,
            )
            if not recorded:
                charge = await uow.sandbox_charges.get(txn_id)
                return False, PageView(_page_state(txn, charge, now), txn)
            await uow.commit()
        if self._on_decision is not None:
            self._on_decision()
        return True, PageView(PageState.PAYABLE, txn)

    async def cancel(self, txn_id: str) -> bool:
        """True unless the bank took (or is taking) the money."""
        now = self._clock()
        async with self._uow_factory() as uow:
            recorded = await uow.sandbox_charges.decide_once(
                ChargeDecision(
                    transaction_id=txn_id, outcome=_CANCELLED, event_id=None, callback_body=None, due_at=None
                ),
                now,
            )
            if recorded:
                await uow.commit()
                return True
            # A hold is released (nothing was taken); a capture or a payment is not undone.
            if await uow.sandbox_charges.move(txn_id, AUTHORIZED, _CANCELLED):
                await uow.commit()
                return True
            charge = await uow.sandbox_charges.get(txn_id)
        assert charge is not None
        return charge.outcome in (_CANCELLED, PayerChoice.DECLINE.value)

    async def capture(self, txn_id: str, amount: int) -> int:
        """Take ``amount`` of the funds held for the transaction (releasing the rest); what the capture
        took. A repeat answers with the first capture; ``CaptureRefused`` when nothing is held."""
        async with self._uow_factory() as uow:
            if await uow.sandbox_charges.move(txn_id, AUTHORIZED, CAPTURED, captured_amount=amount):
                await uow.commit()
                return amount
            charge = await uow.sandbox_charges.get(txn_id)
        if charge is None or charge.outcome != CAPTURED or charge.captured_amount is None:
            raise CaptureRefused(txn_id)
        return charge.captured_amount

    async def status(self, txn_id: str) -> StatusResult:
        async with self._uow_factory() as uow:
            charge = await uow.sandbox_charges.get(txn_id)
        if charge is None:
            return StatusResult(TransactionStatus.PENDING)
        if charge.outcome == _CANCELLED:
            return StatusResult(TransactionStatus.CANCELLED)
        if charge.outcome == PayerChoice.DECLINE.value:
            return StatusResult(
                TransactionStatus.FAILED,
                failure_code="card_declined",
                failure_message=FAILURE_MESSAGES["card_declined"],
            )
        if charge.outcome == PayerChoice.PENDING.value and charge.due_at is not None and charge.due_at > self._clock():
            return StatusResult(TransactionStatus.PENDING)
        if charge.outcome == AUTHORIZED:
            return StatusResult(
                TransactionStatus.PENDING, authorized=True, authorization_expires_at=charge.created_at + self._hold
            )
        if charge.outcome == CAPTURED:
            return StatusResult(TransactionStatus.SUCCEEDED, amount=charge.captured_amount)
        return StatusResult(TransactionStatus.SUCCEEDED)


@dataclass(frozen=True)
class _Attempt:
    callback: DueCallback
    status: int | None
    error: str | None


class CallbackSender:
    """Delivers the bank's due callbacks to ``url``, signed afresh on every attempt (so a retry hours
    later is still inside the receiver's tolerance), with backoff until a 2xx or ``max_attempts``.

    Rows are leased (``SKIP LOCKED`` on PostgreSQL), so several workers may run; the event id inside the
    body stays the same, so the receiver dedupes a callback delivered twice (PRV-7).
    """

    def __init__(
        self,
        uow_factory: UowFactory,
        client: Callable[[], aiohttp.ClientSession],
        *,
        url: str,
        secret: str,
        retry_schedule: list[float],
        max_attempts: int,
        timeout: float,
        poll_interval: float,
        metrics: ProvidersMetrics,
        batch_size: int = 20,
        clock: Clock = utcnow,
    ) -> None:
        self._uow_factory = uow_factory
        self._client = client
        self._url = url
        self._secret = secret
        self._retry_schedule = retry_schedule
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._metrics = metrics
        self._batch_size = batch_size
        self._clock = clock
        # Calls run concurrently, so one lease covers the batch: longer than a timeout, with margin.
        self._lease = timedelta(seconds=timeout * 2 + 30)
        self._wake = asyncio.Event()
        self._stopping = False

    def wake(self) -> None:
        """Look for due callbacks now (called after the payer page records a decision)."""
        self._wake.set()

    def stop(self) -> None:
        """The graceful stop: ``run`` finishes the batch it holds (sends and records each callback, so
        none waits out its lease on a stopped worker) and returns."""
        self._stopping = True
        self._wake.set()

    def backoff(self, attempts: int) -> float:
        """Seconds before the retry that follows attempt number ``attempts`` (1-based)."""
        return self._retry_schedule[min(attempts, len(self._retry_schedule)) - 1]

    async def run(self) -> None:
        """Send what is due, then sleep until the next callback falls due, a decision wakes it
        (in-process, or another process's NOTIFY through the plumbing), or ``poll_interval`` passes:
        a bank with nothing owed costs one statement per ``poll_interval``."""
        while not self._stopping:
            # Cleared before the claim: a decision recorded from here on is either claimed below or
            # wakes the next pass; one woken meanwhile needs no "when is the next one due" read.
            self._wake.clear()
            sent = await self.run_once()
            if sent >= self._batch_size or self._wake.is_set():
                continue
            await wait_or_timeout(self._wake, await self._idle_seconds())

    async def _idle_seconds(self) -> float:
        async with self._uow_factory() as uow:
            upcoming = await uow.sandbox_charges.next_due()
        if upcoming is None:
            return self._poll_interval
        return min(self._poll_interval, max((upcoming - self._clock()).total_seconds(), 0.0) + 0.005)

    async def run_once(self) -> int:
        """Attempt every due callback once; return how many attempts were made."""
        async with self._uow_factory() as uow:
            token, due = await uow.sandbox_charges.claim_due(self._clock(), limit=self._batch_size, lease=self._lease)
            await uow.commit()
        if not due:
            return 0
        attempts = await asyncio.gather(*(self._send(callback) for callback in due))
        async with self._uow_factory() as uow:
            delivered: dict[int, list[str]] = {}
            for attempt in attempts:
                if attempt.error is None:
                    assert attempt.status is not None
                    delivered.setdefault(attempt.status, []).append(attempt.callback.transaction_id)
                else:
                    await self._record_failure(uow.sandbox_charges, token, attempt)
            # The callbacks taken, one statement per status (almost always a single 200).
            for status, txn_ids in delivered.items():
                await uow.sandbox_charges.mark_delivered(txn_ids, token, status, self._clock())
                self._metrics.sandbox_callbacks_sent.labels("delivered").inc(len(txn_ids))
            await uow.commit()
        return len(due)

    async def _send(self, callback: DueCallback) -> _Attempt:
        body = callback.body.encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body, int(time.time())),
        }
        try:
            async with self._client().post(
                self._url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                await response.content.read(2048)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return _Attempt(callback, None, f"{type(exc).__name__}: {exc}")
        if 200 <= status < 300:
            return _Attempt(callback, status, None)
        return _Attempt(callback, status, f"HTTP {status}")

    async def _record_failure(self, charges: SandboxChargeRepository, token: str, attempt: _Attempt) -> None:
        callback = attempt.callback
        now = self._clock()
        assert attempt.error is not None
        if callback.attempts >= self._max_attempts:
            log.error(
                "sandbox callback %s for %s undeliverable after %d attempts: %s",
                callback.event_id,
                callback.transaction_id,
                callback.attempts,
                attempt.error,
            )
            await charges.give_up(callback.transaction_id, token, status=attempt.status, error=attempt.error, now=now)
            self._metrics.sandbox_callbacks_sent.labels("gave_up").inc()
            return
        delay = self.backoff(callback.attempts)
        log.warning(
            "sandbox callback %s for %s failed (attempt %d): %s; retrying in %.1fs",
            callback.event_id,
            callback.transaction_id,
            callback.attempts,
            attempt.error,
            delay,
        )
        await charges.schedule_retry(
            callback.transaction_id,
            token,
            due_at=now + timedelta(seconds=delay),
            status=attempt.status,
            error=attempt.error,
        )
        self._metrics.sandbox_callbacks_sent.labels("failed").inc()
