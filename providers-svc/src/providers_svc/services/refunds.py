"""Refunds at the providers (docs/INTERNAL.md "Refunds (issue 13)"): the request payments-svc sends as
``refund.created`` is stored once (``provider_refunds``, keyed by our refund id), committed, and only then
sent to the payment's provider, idempotent on the refund id; every verdict the provider gives is
recorded and published as ``provider.refund.updated`` in one database transaction.

A provider that cannot be reached leaves the refund ``requested``: never failed, never succeeded on our
own. It is asked again by the worker's retrier (backing off), by a redelivered request, or by the
reconciliation janitor (``sync``). Whoever asks holds the row's lease while the call runs, so one refund
is never sent twice at once (Click has no idempotency key of its own).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from billing_contracts.envelope import utcnow
from billing_contracts.events.refunds import ObservedVia, RefundCreatedV1
from billing_runtime.task_runs import TaskRuns

from providers_svc.adapters.base import (
    OperationNotSupportedError,
    PaymentProvider,
    ProviderRejectedError,
    ProviderUnavailableError,
    RefundOutcomeUnknownError,
    RefundResult,
)
from providers_svc.db.refunds import NewRefund, RefundVerdict
from providers_svc.domain.refunds import Refund, RefundStatus, may_move
from providers_svc.domain.transactions import Transaction, TransactionStatus
from providers_svc.services.directory import ProviderDirectory
from providers_svc.services.refund_anomalies import record_unknown_outcome
from providers_svc.services.refund_events import refund_event
from providers_svc.services.uow import UowFactory

log = logging.getLogger(__name__)

# The name the retrier's passes are tracked under (``TaskRuns``).
REFUND_RETRIES = "refund-retries"

Clock = Callable[[], datetime]
# At least twice the longest refund attempt (settings check PROVIDERS_REFUND_LEASE_SECONDS against
# PROVIDERS_PROVIDER_TIMEOUT); an attempt is also cut off at its lease (``_ask``), so a caller never
# waits on the provider once another caller may hold the refund.
DEFAULT_LEASE = timedelta(seconds=300)
# A refund left requested is asked again after 30 s, doubling, at most hourly.
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)


class RefundRequestError(Exception):
    """A ``refund.created`` that names no refundable transaction of its tenant: a bug upstream (the
    preflight check refuses such a refund), so the message is poison and ends in the dead letters."""


@dataclass(frozen=True)
class Refunds:
    """The refund use cases, built once in ``create_app``."""

    uow: UowFactory
    directory: ProviderDirectory
    clock: Clock = utcnow
    lease: timedelta = DEFAULT_LEASE

    async def accept(self, event: RefundCreatedV1) -> str:
        """Store the refund a ``refund.created`` asks for (once per refund id) and send it to the
        provider. A redelivery of a refund still ``requested`` sends it again (idempotent at the
        provider); of one with a verdict it does nothing; one the provider started is no request.
        Returns what it did (a metric label)."""
        refund, payment = event.data.refund, event.data.payment
        if refund.provider_refund_id is not None:
            # payments-svc announces a refund the provider started (Payme's cancel-after-perform, a
            # Stripe dashboard refund) with refund.created too, for the tenant; only such a refund has
            # the provider's id already. Its money went back: asking the provider would refund it twice.
            log.info(
                "refund %s was started by %s (%s): nothing to ask",
                refund.id,
                refund.provider,
                refund.provider_refund_id,
            )
            return "provider_started"
        provider = refund.provider or payment.provider
        if provider is None:
            raise RefundRequestError(f"refund {refund.id} names no provider")
        now = self.clock()
        async with self.uow() as uow:
            txn = await uow.tenant_transactions(event.tenant_id).get_for_payment(payment.id, provider)
            if txn is None:
                raise RefundRequestError(f"refund {refund.id}: no {provider} transaction of {payment.id}")
            stored = await uow.refunds.get(refund.id)
            if stored is None:
                await uow.refunds.create_once(
                    NewRefund(
                        refund_id=refund.id,
                        tenant_id=txn.tenant_id,
                        livemode=txn.livemode,
                        payment_id=txn.payment_id,
                        provider=txn.provider,
                        provider_transaction_id=txn.id,
                        account_id=txn.account_id,
                        amount=refund.amount,
                        currency=refund.currency,
                        reason=refund.reason,
                    ),
                    now,
                    now + FIRST_RETRY,
                )
                await uow.commit()
        if stored is not None and stored.amount != refund.amount:
            log.error(
                "refund %s repeated with another amount (%s, stored %s): ignored",
                refund.id,
                refund.amount,
                stored.amount,
            )
            return "conflict"
        if stored is not None and stored.status is not RefundStatus.REQUESTED:
            return "duplicate"
        after = await self.send(refund.id)
        return after.status.value if after is not None else "unknown"

    async def send(self, refund_id: str, *, observed_via: ObservedVia = "api") -> Refund | None:
        """Ask the provider to make a ``requested`` refund (again), holding its lease; the refund as it
        is afterwards (still ``requested`` when the provider could not be reached or another caller
        holds it)."""
        token = secrets.token_hex(8)
        now = self.clock()
        async with self.uow() as uow:
            claimed = await uow.refunds.claim(refund_id, token, now, self.lease)
            refund = await uow.refunds.get(refund_id)
            txn = await uow.transactions.get(refund.provider_transaction_id) if refund is not None else None
            await uow.commit()
        if not claimed or refund is None or txn is None:
            return refund
        verdict = await self._ask(refund, txn, first=True)
        if verdict is None:
            await self._release(refund, token)
            return await self._get(refund_id)
        return await self.record(refund_id, verdict, observed_via=observed_via, token=token)

    async def check(self, refund: Refund, *, observed_via: ObservedVia = "status_check") -> Refund:
        """Ask the provider where a ``pending`` refund stands; record (and publish) what changed."""
        async with self.uow() as uow:
            txn = await uow.transactions.get(refund.provider_transaction_id)
        if txn is None:
            return refund
        verdict = await self._ask(refund, txn, first=False)
        if verdict is None:
            raise ProviderUnavailableError(f"provider {refund.provider} could not tell about refund {refund.id}")
        return await self.record(refund.id, verdict, observed_via=observed_via) or refund

    async def _ask(self, refund: Refund, txn: Transaction, *, first: bool) -> RefundVerdict | None:
        """The provider's verdict, or None when it could not be had (unreachable, not configured)."""
        rejected = _refusal_before_asking(refund, txn)
        if rejected is not None:
            return self._verdict(RefundResult("failed", failure_code=rejected[0], failure_message=rejected[1]))
        adapter = await self.directory.for_transaction(txn)
        if adapter is None:
            log.error("refund %s: provider %s (account %s) is not available", refund.id, txn.provider, txn.account_id)
            return None
        try:
            # Never past the lease: from then on another caller may send the refund, so this one stops
            # waiting (its answer is lost, which every retry finds out about before sending again).
            async with asyncio.timeout(self.lease.total_seconds()):
                result = await self._call(adapter, refund, txn, first=first)
        except TimeoutError:
            log.warning("refund %s: %s did not answer within the lease (%s)", refund.id, txn.provider, self.lease)
            return None
        except ProviderUnavailableError as exc:
            log.warning("refund %s: provider %s unavailable: %s", refund.id, txn.provider, exc)
            return None
        except RefundOutcomeUnknownError as exc:
            # Neither failed (the money may be back with the payer) nor succeeded: left unanswered,
            # asked again by the retrier (whose status check heals it once the provider can tell), and
            # recorded once as an anomaly so that reconciliation puts it before a person.
            log.error("refund %s: %s refused a repeated attempt (%s): outcome unknown", refund.id, txn.provider, exc)
            await record_unknown_outcome(self.uow, txn, refund, exc.code, str(exc), self.clock())
            return None
        except ProviderRejectedError as exc:
            result = RefundResult("failed", failure_code=exc.code, failure_message=str(exc))
        except OperationNotSupportedError as exc:
            result = RefundResult("failed", failure_code="refund_not_supported", failure_message=str(exc))
        return self._verdict(result)

    @staticmethod
    async def _call(adapter: PaymentProvider, refund: Refund, txn: Transaction, *, first: bool) -> RefundResult:
        if first:
            # ``attempts`` counts this call too: more than one means an earlier call may have reached
            # the provider and lost its answer, which the adapter must find out about before sending.
            retry = refund.attempts > 1
            return await adapter.refund(
                txn, refund_id=refund.id, amount=refund.amount, reason=refund.reason, retry=retry
            )
        return await adapter.refund_status(
            txn, refund_id=refund.id, provider_refund_id=refund.provider_refund_id, amount=refund.amount
        )

    def _verdict(self, result: RefundResult) -> RefundVerdict:
        failed = result.status == "failed"
        return RefundVerdict(
            status=RefundStatus(result.status),
            provider_refund_id=result.provider_refund_id,
            failure_code=(result.failure_code or "refund_failed") if failed else None,
            failure_message=(result.failure_message or "The provider refused the refund") if failed else None,
            provider_updated_at=self.clock(),
        )

    async def record(
        self, refund_id: str, verdict: RefundVerdict, *, observed_via: ObservedVia, token: str | None = None
    ) -> Refund | None:
        """Store the verdict and its ``provider.refund.updated`` in one transaction, under the row's lock,
        if it moves the refund (a final verdict is final); otherwise change nothing. ``token``: the lease
        the verdict was asked under. A verdict whose lease is gone (expired, and maybe claimed by another
        caller) is still the provider's word and is recorded by the same rule, with a warning: the lease
        keeps two callers from sending at once, it does not make a provider's answer less true."""
        now = self.clock()
        async with self.uow() as uow:
            refund = await uow.refunds.get(refund_id, for_update=True)
            if refund is None:
                return None
            if token is not None and refund.claim_token != token:
                log.warning(
                    "refund %s: %s verdict %s came after its caller's lease (now %s)",
                    refund_id,
                    refund.provider,
                    verdict.status.value,
                    "held by another caller" if refund.claim_token else "free",
                )
            if not may_move(refund.status, verdict.status):
                if refund.status.is_final and verdict.status.is_final and verdict.status is not refund.status:
                    log.error(
                        "refund %s is %s, provider %s now says %s: kept (a final verdict is final)",
                        refund_id,
                        refund.status.value,
                        refund.provider,
                        verdict.status.value,
                    )
                return refund
            await uow.refunds.record(refund_id, verdict, now)
            uow.emit(refund_event(refund, verdict, observed_via))
            await uow.commit()
        log.info("refund %s at %s: %s (%s)", refund_id, refund.provider, verdict.status.value, observed_via)
        return await self._get(refund_id)

    async def publish_unpublished(self, refund: Refund) -> bool:
        """Publish a verdict the row holds that no event carried yet; False when there is none."""
        now = self.clock()
        async with self.uow() as uow:
            current = await uow.refunds.get(refund.id, for_update=True)
            if current is None or not current.unpublished:
                return False
            verdict = RefundVerdict(
                status=current.status,
                provider_refund_id=current.provider_refund_id,
                failure_code=current.failure_code,
                failure_message=current.failure_message,
                provider_updated_at=current.provider_updated_at or now,
            )
            await uow.refunds.mark_published(current.id, current.status, now)
            uow.emit(refund_event(current, verdict, "status_check"))
            await uow.commit()
        return True

    async def _release(self, refund: Refund, token: str) -> None:
        now = self.clock()
        delay = min(FIRST_RETRY * 2 ** max(refund.attempts, 0), LAST_RETRY)
        async with self.uow() as uow:
            await uow.refunds.release(refund.id, token, now, now + delay)
            await uow.commit()

    async def _get(self, refund_id: str) -> Refund | None:
        async with self.uow() as uow:
            return await uow.refunds.get(refund_id)

    async def retry_due(self, *, limit: int = 20) -> int:
        """Send again every requested refund whose next attempt is due; how many were sent."""
        async with self.uow() as uow:
            due = await uow.refunds.due(self.clock(), limit=limit)
        for refund_id in due:
            await self.send(refund_id)
        return len(due)

    async def run_retrier(self, interval: float, runs: TaskRuns) -> None:
        """The worker's loop: every ``interval`` seconds, send the refunds left requested that are due
        (each pass tracked as ``refund-retries``: the status endpoint's ``janitor``)."""
        while True:
            with runs.track(REFUND_RETRIES) as counts:
                counts["sent"] = await self.retry_due()
            await asyncio.sleep(interval)


def _refusal_before_asking(refund: Refund, txn: Transaction) -> tuple[str, str] | None:
    """What no provider needs to be asked to refuse: money the transaction never took."""
    if txn.status is not TransactionStatus.SUCCEEDED:
        return "not_paid", f"The {txn.provider} transaction of the payment is {txn.status.value}, not paid"
    if refund.currency != txn.currency:
        return "currency_mismatch", f"The refund is in {refund.currency}, the payment in {txn.currency}"
    if refund.amount > txn.amount:
        return "amount_exceeds_payment", "The refund is larger than the payment"
    return None
