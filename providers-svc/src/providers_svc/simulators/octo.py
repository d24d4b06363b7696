"""A fake Octo server, written from PROTOCOLS.md §3 (no real Octo runs offline): prepare_payment (and
its status call), set_accept and refund, with Octo's answers and refusals.

Its state is an ``OctoStore``: ``OctoBook`` keeps it in memory (a test's private Octo on a loopback
server); ``simulators.octo_store.DatabaseOctoStore`` keeps it in PostgreSQL, so the simulator mounted
in providers-svc answers alike from every api process. A change of a payment runs inside the store's
``change`` (under a row lock in the database), so concurrent decisions and refunds never interleave.

The payer's side is ``pay`` (``OctoBook.pay``, the payer page ``simulators/octo_pages``): a payment
the payer paid becomes ``succeeded`` (one-stage) or ``waiting_for_capture`` (two-stage). A payment
the payer never pays ends ``canceled`` (§3.3): ``decline`` (the card was declined), ``cancel`` (the
payer abandoned Octo's page) and ``time_out`` (the pay page's ``ttl`` lapsed, or a two-stage hold was
never captured nor cancelled and Octo released it, §3.3 "Uncaptured holds are cancelled automatically")."""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from aiohttp import web

from providers_svc.domain.refunds import SIMULATOR_OUTCOME_HEADER

WRONG_SECRET = (2, "Wrong secret")
BAD_DATA = (1, "Data format error")
BAD_REFUND_AMOUNT = (3, "Wrong refund amount")


@dataclass
class OctoPayment:
    shop_id: int
    shop_transaction_id: str
    uuid: str
    total_sum: Decimal
    currency: str
    auto_capture: bool
    test: bool
    status: str = "created"
    refunds: dict[str, Decimal] = field(default_factory=dict)
    # Each refund's status (Octo's words: pending, succeeded, canceled); a refund without one succeeded.
    refund_statuses: dict[str, str] = field(default_factory=dict)
    # Where the payer goes back to, and where Octo posts its callbacks (the payer page uses them).
    return_url: str | None = None
    notify_url: str | None = None


T = TypeVar("T")


class NotPayable(ValueError):
    """The payment is not waiting for its payer (already paid, declined, decided)."""


def pay(payment: OctoPayment) -> OctoPayment:
    """The payer paid: one-stage → succeeded, two-stage → waiting for the shop's decision."""
    if payment.status not in ("created", "wait_user_action"):
        raise NotPayable("no payment waiting for its payer")
    payment.status = "succeeded" if payment.auto_capture else "waiting_for_capture"
    return payment


def decline(payment: OctoPayment) -> OctoPayment:
    """The payer's card was declined (or the payer gave up): Octo cancels the payment."""
    if payment.status not in ("created", "wait_user_action"):
        raise NotPayable("no payment waiting for its payer")
    payment.status = "canceled"
    return payment


def cancel(payment: OctoPayment) -> OctoPayment:
    """The payer abandoned Octo's page (cancelled there): Octo cancels the payment, as for a decline."""
    if payment.status not in ("created", "wait_user_action"):
        raise NotPayable("no payment waiting for its payer")
    payment.status = "canceled"
    return payment


def time_out(payment: OctoPayment) -> OctoPayment:
    """Time ran out: a payment still waiting for its payer when its pay page's ``ttl`` lapsed, or a
    two-stage hold (``waiting_for_capture``) left undecided until Octo released it: Octo cancels it."""
    if payment.status not in ("created", "wait_user_action", "waiting_for_capture"):
        raise NotPayable("no payment waiting for its payer or its shop")
    payment.status = "canceled"
    return payment


class OctoStore(Protocol):
    """Where the fake keeps its shops' payments."""

    @property
    def base_url(self) -> str:
        """The fake's own address: pay links are ``{base_url}/pay/{uuid}``."""
        ...

    async def secret_of(self, shop_id: int) -> str | None: ...

    async def find(self, shop_id: int, shop_transaction_id: str) -> OctoPayment | None: ...

    async def by_uuid(self, payment_uuid: str) -> OctoPayment | None: ...

    async def add(self, payment: OctoPayment) -> OctoPayment:
        """Store a new payment, or give the one already stored for its (shop, shop_transaction_id)."""
        ...

    async def change(self, payment_uuid: str, apply: Callable[[OctoPayment], T]) -> T | None:
        """Run ``apply`` on the payment (which it may change) alone, store it, give what it returned.
        None: no such payment. An exception from ``apply`` stores nothing."""
        ...


@dataclass
class OctoBook:
    """Every shop this fake knows (id → secret) and every payment made at it."""

    shops: dict[int, str]
    base_url: str = "http://127.0.0.1"
    payments: dict[tuple[int, str], OctoPayment] = field(default_factory=dict)

    def _get(self, payment_uuid: str) -> OctoPayment | None:
        return next((p for p in self.payments.values() if p.uuid == payment_uuid), None)

    def pay(self, payment_uuid: str) -> OctoPayment:
        """The payer paid (tests drive the payer's side with it)."""
        payment = self._get(payment_uuid)
        if payment is None:
            raise NotPayable("no such payment")
        return pay(payment)

    # OctoStore: in memory, one event loop, so each call is atomic as it is.
    async def secret_of(self, shop_id: int) -> str | None:
        return self.shops.get(shop_id)

    async def find(self, shop_id: int, shop_transaction_id: str) -> OctoPayment | None:
        return self.payments.get((shop_id, shop_transaction_id))

    async def by_uuid(self, payment_uuid: str) -> OctoPayment | None:
        return self._get(payment_uuid)

    async def add(self, payment: OctoPayment) -> OctoPayment:
        return self.payments.setdefault((payment.shop_id, payment.shop_transaction_id), payment)

    async def change(self, payment_uuid: str, apply: Callable[[OctoPayment], T]) -> T | None:
        payment = self._get(payment_uuid)
        return None if payment is None else apply(payment)


store_key: web.AppKey[OctoStore] = web.AppKey("octo_store")


def _error(code_message: tuple[int, str]) -> web.Response:
    code, message = code_message
    return web.json_response({"error": code, "errMessage": message, "data": None})


def _state(payment: OctoPayment, store: OctoStore) -> web.Response:
    return web.json_response(
        {
            "error": 0,
            "data": {
                "shop_transaction_id": payment.shop_transaction_id,
                "octo_payment_UUID": payment.uuid,
                "status": payment.status,
                "octo_pay_url": f"{store.base_url}/pay/{payment.uuid}",
                "total_sum": float(payment.total_sum),
            },
        }
    )


async def _body(request: web.Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def _shop(store: OctoStore, body: dict[str, Any]) -> int | None:
    shop_id, secret = body.get("octo_shop_id"), body.get("octo_secret")
    if not isinstance(shop_id, int) or isinstance(shop_id, bool) or not isinstance(secret, str):
        return None
    known = await store.secret_of(shop_id)
    return shop_id if known is not None and hmac.compare_digest(known.encode(), secret.encode()) else None


async def _authenticated(request: web.Request, store: OctoStore) -> tuple[dict[str, Any], int] | web.Response:
    """The body and the shop it names with the right secret, or Octo's refusal (bad data, wrong secret)."""
    body = await _body(request)
    if body is None:
        return _error(BAD_DATA)
    shop_id = await _shop(store, body)
    if shop_id is None:
        return _error(WRONG_SECRET)
    return body, shop_id


def _sum(value: object) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    # Two decimals at most, and below Octo's own limits: anything else is a data format error.
    if not number.is_finite() or number <= 0 or number >= 10**13 or number != number.quantize(Decimal("0.01")):
        return None
    return number


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def prepare_payment(request: web.Request) -> web.Response:
    store = request.app[store_key]
    checked = await _authenticated(request, store)
    if isinstance(checked, web.Response):
        return checked
    body, shop_id = checked
    txn = body.get("shop_transaction_id")
    if not isinstance(txn, str) or not txn or len(txn) > 64:
        return _error(BAD_DATA)
    existing = await store.find(shop_id, txn)
    if set(body) == {"octo_shop_id", "octo_secret", "shop_transaction_id"}:  # the status call
        return _state(existing, store) if existing is not None else _error(BAD_DATA)
    if existing is not None:  # Octo drops a repeat of a shop_transaction_id: the same payment
        return _state(existing, store)
    total = _sum(body.get("total_sum"))
    auto_capture = body.get("auto_capture")
    if total is None or not isinstance(auto_capture, bool) or body.get("currency") not in ("UZS", "USD"):
        return _error(BAD_DATA)
    payment = OctoPayment(
        shop_id,
        txn,
        str(uuid.uuid4()),
        total,
        str(body["currency"]),
        auto_capture,
        body.get("test") is True,
        return_url=_optional_str(body.get("return_url")),
        notify_url=_optional_str(body.get("notify_url")),
    )
    return _state(await store.add(payment), store)


def decide(accept: str, final_amount: Decimal | None = None) -> Callable[[OctoPayment], bool]:
    """The shop's decision on a hold; a capture's ``final_amount`` (at most the hold) is what it takes."""

    def apply(payment: OctoPayment) -> bool:
        if payment.status == "waiting_for_capture":
            if accept == "capture" and final_amount is not None:
                if final_amount > payment.total_sum:
                    return False
                payment.total_sum = final_amount
            payment.status = "succeeded" if accept == "capture" else "canceled"
        elif payment.status in ("created", "wait_user_action") and accept == "cancel":
            payment.status = "canceled"
        elif (payment.status, accept) not in (("succeeded", "capture"), ("canceled", "cancel")):
            return False  # a decision on a payment that is past deciding (a repeat of it is fine)
        return True

    return apply


async def set_accept(request: web.Request) -> web.Response:
    store = request.app[store_key]
    checked = await _authenticated(request, store)
    if isinstance(checked, web.Response):
        return checked
    body, shop_id = checked
    payment = await store.by_uuid(str(body.get("octo_payment_UUID")))
    accept = body.get("accept_status")
    if payment is None or payment.shop_id != shop_id or accept not in ("capture", "cancel"):
        return _error(BAD_DATA)
    final_amount = None
    if "final_amount" in body:
        final_amount = _sum(body["final_amount"])
        if final_amount is None:
            return _error(BAD_DATA)
    if not await store.change(payment.uuid, decide(str(accept), final_amount)):
        return _error(BAD_DATA)
    decided = await store.by_uuid(payment.uuid)
    assert decided is not None
    return _state(decided, store)


# Octo's documented refund limits (PROTOCOLS.md §3.3), as far as the fake can tell without exchange
# rates: at least 1 USD (a USD payment's refund), at most 10 million so'm per refund.
_MIN_USD = Decimal(1)
_MAX_UZS = Decimal(10_000_000)


def _within_limits(currency: str, amount: Decimal) -> bool:
    return not ((currency == "USD" and amount < _MIN_USD) or (currency == "UZS" and amount > _MAX_UZS))


def _take_refund(refund_id: str, amount: Decimal | None, outcome: str | None) -> Callable[[OctoPayment], str | None]:
    """The refund's status after this call, or None when Octo refuses it (error 3). A repeat of a
    shop_refund_id is the same refund: it is answered with its status, and a pending one (the
    test-mode rule's ``sandbox:pending``) is finished by it: the next ask finds it succeeded."""

    def apply(payment: OctoPayment) -> str | None:
        if refund_id in payment.refunds:
            if payment.refund_statuses.get(refund_id) == "pending":
                payment.refund_statuses[refund_id] = "succeeded"
            return payment.refund_statuses.get(refund_id, "succeeded")
        if amount is None or payment.status != "succeeded" or not _within_limits(payment.currency, amount):
            return None
        taken = sum(
            (a for key, a in payment.refunds.items() if payment.refund_statuses.get(key) != "canceled"), Decimal(0)
        )
        if taken + amount > payment.total_sum:
            return None
        status = {"fail": "canceled", "pending": "pending"}.get(outcome or "", "succeeded")
        payment.refunds[refund_id] = amount
        payment.refund_statuses[refund_id] = status
        return status

    return apply


async def refund(request: web.Request) -> web.Response:
    store = request.app[store_key]
    checked = await _authenticated(request, store)
    if isinstance(checked, web.Response):
        return checked
    body, shop_id = checked
    payment = await store.by_uuid(str(body.get("octo_payment_UUID")))
    refund_id, amount = body.get("shop_refund_id"), _sum(body.get("amount"))
    if payment is None or payment.shop_id != shop_id or not isinstance(refund_id, str) or not refund_id:
        return _error(BAD_DATA)
    # Our adapter asks the simulator (never a real Octo) for a test outcome with this header.
    outcome = request.headers.get(SIMULATOR_OUTCOME_HEADER)
    status = await store.change(payment.uuid, _take_refund(refund_id, amount, outcome))
    if status is None:
        return _error(BAD_REFUND_AMOUNT)
    return web.json_response({"error": 0, "data": {"shop_refund_id": refund_id, "status": status}})


def add_octo_routes(app: web.Application) -> None:
    """Octo's API on ``app`` (whose ``store_key`` holds the store)."""
    app.router.add_post("/prepare_payment", prepare_payment)
    app.router.add_post("/set_accept", set_accept)
    app.router.add_post("/refund", refund)


def create_octo_app(store: OctoStore) -> web.Application:
    app = web.Application()
    app[store_key] = store
    add_octo_routes(app)
    return app
