"""``POST /billing/stripe`` as a use case: verify the signature, find the provider account, record the
event once in the inbox (``provider_events``) and, in that same unit of work, act on it: the payment's
outcome, a dispute, and every follower (the billing projections) in turn. Either all of it commits with
the inbox row or none of it does, so a redelivery after a failure is applied then, and a duplicate never.

The account is the one whose webhook secret verifies the signature (each distinct secret of the Stripe
accounts is tried once, constant time, by the library), then, among the accounts sharing that secret
(a Connect endpoint's secret is shared by the accounts of its connected accounts), the one whose
``connected_account`` is the event's ``account`` (none for an account endpoint's own events). Its
environment must match the event's ``livemode``.

Stripe signs every delivery attempt afresh (a retry carries a new ``t``), so the inbox row keeps each
accepted delivery's ``t`` and verifying account (``deliveries``): a later request of the same event with
one of them is the same signed request again, sent by someone else within the signature's tolerance, and
is refused (``replayed``) with nothing changed; a new ``t`` is Stripe's redelivery, a duplicate. A first
delivery costs nothing more (its ``t`` goes in with the inbox row); the check runs on duplicates only."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from billing_contracts.envelope import utcnow
from billing_runtime.ids import new_id

from providers_svc.adapters.stripe import NAME, StripeAdapter, StripeProvider
from providers_svc.adapters.stripe.webhooks import signed_at, signed_by
from providers_svc.db.stripe import StripeRepository
from providers_svc.domain.accounts import BoundAccount
from providers_svc.domain.stripe_events import ClaimedUpsert, StripeEventFollower, VerifiedStripeEvent
from providers_svc.domain.stripe_invoice_payments import LINK_EVENT_TYPES, links_of
from providers_svc.domain.stripe_locks import first_lock_keys
from providers_svc.domain.stripe_objects import PROJECTED_EVENTS, state_of
from providers_svc.domain.transactions import CallbackResult
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.stripe_disputes import DISPUTE_EVENTS, apply_dispute
from providers_svc.services.stripe_outcomes import (
    CHARGE_EVENTS,
    INTENT_EVENTS,
    REFUND_EVENTS,
    SESSION_EVENTS,
    Outcome,
    apply_outcome,
    id_of,
    our_id_of,
)
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.uow import ProvidersUnitOfWork, UowFactory

log = logging.getLogger(__name__)

# What an event did, stored on its inbox row (``result``) and counted.
RECORDED = "recorded"  # verified and kept; nothing of ours to move (a refund, a customer, an unknown type)
UNKNOWN_ACCOUNT = "unknown_account"  # a Connect event of an account none of ours acts for
OTHER_MODE = "other_mode"  # a Connect event of the other mode than every account acting for its account
DUPLICATE = "duplicate"

# Every event type the service acts on: a payment's outcome, a refund's or a dispute's verdict, and the
# billing projections (``project_event``, the follower ``create_app`` always installs: the objects, and
# the invoice_payment links of API versions from 2025-03-31). The webhook
# endpoint an operator creates at Stripe sends exactly these (providers-svc README "Setting up a
# Stripe account", checked against this set by tests/unit/test_stripe_event_types.py); any other type
# is recorded and acknowledged, nothing more.
HANDLED_EVENT_TYPES: frozenset[str] = (
    INTENT_EVENTS
    | SESSION_EVENTS
    | CHARGE_EVENTS
    | REFUND_EVENTS
    | DISPUTE_EVENTS
    | PROJECTED_EVENTS
    | LINK_EVENT_TYPES
)


# The types whose event may move a payment, a refund or a dispute of ours (``_act``); any other one's
# result is ``RECORDED``, known before it is applied.
MOVING_EVENT_TYPES: frozenset[str] = INTENT_EVENTS | SESSION_EVENTS | CHARGE_EVENTS | REFUND_EVENTS | DISPUTE_EVENTS
# A moving event's result when it names none of our transactions (a payment made elsewhere on the same
# Stripe account: most of such an account's traffic): claimed with it, rewritten only when it differs.
NOT_OURS = CallbackResult.UNKNOWN_TRANSACTION.value


class StripeWebhookRejected(Exception):
    """Bad input: nothing was recorded or changed; answered 400 with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class StripeHandled:
    result: str
    event_type: str
    anomaly: str | None = None


@dataclass(frozen=True)
class _Signed:
    """Who signed a request: the accounts sharing the webhook secret that verified it, and the
    delivery it names, ``"<t>:<account id>"`` (the first of those accounts by id)."""

    accounts: list[BoundAccount]
    delivery: str


@dataclass(frozen=True)
class _Envelope:
    """The fields of an event we rely on, checked before anything is recorded."""

    event_id: str
    type: str
    created: datetime
    livemode: bool
    account: str | None
    object: Mapping[str, Any]
    previous_attributes: Mapping[str, Any] | None
    raw: Mapping[str, Any]


def parse_event(body: str) -> _Envelope:
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):
        raise StripeWebhookRejected("invalid_payload") from None
    if not isinstance(event, dict):
        raise StripeWebhookRejected("invalid_payload")
    event_id, type_, created, livemode = event.get("id"), event.get("type"), event.get("created"), event.get("livemode")
    data = event.get("data")
    account = event.get("account")
    if (
        not isinstance(event_id, str)
        or not 0 < len(event_id) <= 255
        or not isinstance(type_, str)
        or not 0 < len(type_) <= 64
        or not isinstance(created, int)
        or isinstance(created, bool)
        or not 0 <= created < 2**40
        or not isinstance(livemode, bool)
        or not isinstance(data, dict)
        or not isinstance(data.get("object"), dict)
        or not (account is None or (isinstance(account, str) and len(account) <= 255))
        or any(_control(text) for text in (event_id, type_, account or ""))
    ):
        raise StripeWebhookRejected("invalid_payload")
    previous = data.get("previous_attributes")
    return _Envelope(
        event_id=event_id,
        type=type_,
        created=datetime.fromtimestamp(created, UTC),
        livemode=livemode,
        account=account,
        object=data["object"],
        previous_attributes=previous if isinstance(previous, dict) else None,
        raw=event,
    )


def _control(text: str) -> bool:
    # A NUL (or any control character) names nothing of Stripe's and cannot be stored by PostgreSQL.
    return any(ord(c) < 32 for c in text)


@dataclass(frozen=True)
class StripeWebhooks:
    uow: UowFactory
    copies: AccountCopies
    provider: StripeProvider
    # The billing projections and whatever else follows Stripe's events (built in ``create_app``).
    followers: Sequence[StripeEventFollower] = ()
    clock: Callable[[], datetime] = utcnow

    async def handle(self, raw: bytes, signature: str | None) -> StripeHandled:
        """Raises ``StripeWebhookRejected`` (nothing recorded) or whatever the database raised (nothing
        committed: the caller answers 503 and Stripe sends the event again)."""
        if not signature:
            raise StripeWebhookRejected("missing_signature")
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise StripeWebhookRejected("invalid_payload") from None
        signed = await self._signers(body, signature)
        event = parse_event(body)
        account = _account_for(signed.accounts, event.account, event.livemode)
        if account is None:
            return await self._record_only(event, body, signed.delivery, UNKNOWN_ACCOUNT)
        if event.livemode != (not account.test) and event.account is not None:
            # A Connect endpoint in live mode gets its connected accounts' test events too (Stripe's
            # Connect webhooks): expected traffic, recorded and acknowledged, never applied.
            return await self._record_only(event, body, signed.delivery, OTHER_MODE)
        if event.livemode != (not account.test):
            # A live event under a test account's secret (or the reverse): never applied.
            raise StripeWebhookRejected("livemode_mismatch")
        return await self._apply(event, body, signed.delivery, account)

    async def _signers(self, body: str, signature: str) -> _Signed:
        stamp = signed_at(signature, self.clock().timestamp())
        if stamp is None:
            raise StripeWebhookRejected("invalid_signature")
        accounts = [a for a in await self.copies.of(NAME) if not a.simulator]
        by_secret: dict[str, list[BoundAccount]] = {}
        for account in accounts:
            by_secret.setdefault(account.credentials["webhook_secret"], []).append(account)
        for secret, sharing in by_secret.items():
            if signed_by(body, signature, secret):
                # The account, not only the time: two endpoints of ours (two secrets) may each get the
                # same event signed in the same second, and an event of no account of ours has one row.
                return _Signed(sharing, f"{stamp}:{min(a.id for a in sharing)}")
        raise StripeWebhookRejected("invalid_signature")

    def _row(
        self,
        event: _Envelope,
        body: str,
        delivery: str,
        row_id: str,
        result: str | None,
        account_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": row_id,
            "provider": NAME,
            # Once per account: two of our accounts on one Stripe account (an account replaced by
            # another, each with its endpoint) both receive every event, and the one whose payment it is
            # must not find the other's delivery recorded as its own.
            "external_id": event.event_id if account_id is None else f"{account_id}/{event.event_id}",
            "event_type": event.type,
            "transaction_id": None,
            "payload": body,
            "received_at": self.clock(),
            "result": result,
            "deliveries": [delivery],
        }

    async def _record_only(self, event: _Envelope, body: str, delivery: str, result: str) -> StripeHandled:
        log.warning(
            "stripe event %s (%s) of connected account %s (livemode %s): %s, recorded only",
            event.event_id,
            event.type,
            event.account,
            event.livemode,
            result,
        )
        async with self.uow().driven() as unit:
            row = self._row(event, body, delivery, new_id("pev"), result)
            if not await unit.stripe.record_event(row):
                return await _duplicate(unit, event, row["external_id"], delivery)
            await unit.commit()
        return StripeHandled(result, event.type)

    async def _apply(self, event: _Envelope, body: str, delivery: str, account: BoundAccount) -> StripeHandled:
        adapter = self.provider.bound(account)
        row_id = new_id("pev")
        # The inbox row is claimed with the result the event has unless it moves something of ours:
        # ``RECORDED`` for one that cannot (a customer, an invoice, a product...), ``NOT_OURS`` for one
        # that can. Only a result that differs is written again at the commit (a second version of the
        # row, the whole payload, and one statement more).
        moves = event.type in MOVING_EVENT_TYPES
        presumed = NOT_OURS if moves else RECORDED
        row = self._row(event, body, delivery, row_id, presumed, account.id)
        verified = VerifiedStripeEvent(
            event_id=event.event_id,
            type=event.type,
            created=event.created,
            livemode=event.livemode,
            account_id=account.id,
            stripe_account=event.account,
            tenant_ids=(),
            object=event.object,
            previous_attributes=event.previous_attributes,
            raw=event.raw,
        )
        if (intent_id := self._intent_made_elsewhere(verified)) is not None:
            # One statement that commits itself: the inbox row, unless a transaction of ours is the
            # intent's (or the event was recorded before): then the unit below decides, as for any event.
            async with self.uow() as unit:
                # (The repository's static builders: no session is opened for the statement.)
                if await unit.commit_unless_exists(
                    StripeRepository.event_insert(row), StripeRepository.no_transaction_of(intent_id)
                ):
                    return StripeHandled(NOT_OURS, event.type)
        async with self._unit(event.type) as unit:
            # The projection's first locks go with the claim (before the outcome's row locks, in every
            # event that takes both: one order); the tenants come back from it. An event that moves
            # nothing and takes no lock (a customer, a product...) has its object upserted in the
            # claim's statement instead: one round trip fewer.
            keys = first_lock_keys(verified)
            state = state_of(verified) if not moves and not keys and project_event in self.followers else None
            if state is not None:
                claimed = await unit.stripe.claim_and_upsert(row, account.id, state, self.clock())
                if claimed is None:
                    return await _duplicate(unit, event, row["external_id"], delivery)
                verified = replace(verified, tenant_ids=claimed[0], upserted=ClaimedUpsert(claimed[1]))
            else:
                tenant_ids = await unit.stripe.claim_event(row, account.id, keys)
                if tenant_ids is None:
                    return await _duplicate(unit, event, row["external_id"], delivery)
                verified = replace(verified, tenant_ids=tenant_ids, locked=tuple(keys))
            outcome = await self._act(unit, verified, adapter, row_id) if moves else Outcome(RECORDED)
            for follower in self.followers:
                await follower(unit, verified)
            if outcome.result != presumed or outcome.transaction_id is not None:
                unit.write(unit.stripe.event_result(row_id, outcome.result, outcome.transaction_id))
            await unit.commit()
        outcome.after_commit()
        return StripeHandled(outcome.result, event.type, outcome.anomaly)

    def _intent_made_elsewhere(self, event: VerifiedStripeEvent) -> str | None:
        """The PaymentIntent of an intent's event that carries none of our ids (every intent we create
        does: ``metadata_of``), when no follower would act on it (the projection's only: intents are not
        projected): most likely a payment made elsewhere on the account, recorded in one statement if
        no transaction of ours is the intent's. None for any other event."""
        if event.type not in INTENT_EVENTS or our_id_of(event.object) is not None:
            return None
        if any(f is not project_event for f in self.followers) or state_of(event) is not None or links_of(event):
            return None
        return id_of(event.object.get("id"))

    def _unit(self, event_type: str) -> AbstractAsyncContextManager[ProvidersUnitOfWork]:
        """The event's unit of work: driven (its transaction and statements sent by asyncpg itself,
        no ORM session) unless it may move one of our refunds, whose repository is the ORM's."""
        unit = self.uow()
        return unit if event_type in REFUND_EVENTS else unit.driven()

    async def _act(
        self, unit: ProvidersUnitOfWork, event: VerifiedStripeEvent, adapter: StripeAdapter, row_id: str
    ) -> Outcome:
        if event.type in DISPUTE_EVENTS:
            return await apply_dispute(unit, event, adapter, row_id)
        outcome = await apply_outcome(unit, event, adapter, row_id, self.clock())
        return outcome if outcome is not None else Outcome(RECORDED)


async def _duplicate(unit: ProvidersUnitOfWork, event: _Envelope, external_id: str, delivery: str) -> StripeHandled:
    """An event recorded before: Stripe's redelivery (a new signature) is a duplicate, its delivery kept;
    the same signed request again is a replay, refused with nothing written."""
    if not await unit.stripe.redelivered(external_id, delivery):
        log.warning("stripe event %s (%s): a copy of a delivery already received, refused", event.event_id, event.type)
        raise StripeWebhookRejected("replayed")
    await unit.commit()
    return StripeHandled(DUPLICATE, event.type)


def _account_for(candidates: list[BoundAccount], connected: str | None, livemode: bool) -> BoundAccount | None:
    """The account among those sharing the verifying secret that acts for ``connected`` (None: the
    platform's own events, an account without ``connected_account``), of the event's mode when there
    is one (a test and a production account may act for one connected account on one secret)."""
    wanted = connected or ""
    matching = [a for a in candidates if a.settings.get("connected_account", "") == wanted]
    same_mode = [a for a in matching if a.test != livemode]
    matching = same_mode or matching
    if len(matching) > 1:
        # Two accounts for the same Stripe account and secret: the admin's mistake. The first one by id
        # decides, the same one every time.
        log.error("stripe accounts %s share one secret and one Stripe account", [a.id for a in matching])
    return min(matching, key=lambda a: a.id) if matching else None
