"""Octo's HTTP API as one account sees it (PROTOCOLS.md §3.1): prepare_payment, the status call,
set_accept and refund, over the app's shared ``aiohttp`` session, at the account's ``api_base``.

Errors are the adapter interface's (``adapters/base.py``): unreachable, a 5xx or an answer that is not
the protocol → ``ProviderUnavailableError`` (nothing is assumed; the caller may retry: prepare dedupes
on ``shop_transaction_id``, refund on ``shop_refund_id``); Octo's own refusal → ``ProviderRejectedError``
with its code. The shop secret is in every body and never in an error or a log line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import aiohttp

from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.protocols.octo.requests import (
    PREPARE_PATH,
    REFUND_PATH,
    SET_ACCEPT_PATH,
    PreparePayment,
    ShopCredentials,
    prepare_body,
    refund_body,
    set_accept_body,
    status_body,
)
from providers_svc.protocols.octo.responses import (
    OctoMalformed,
    OctoRefused,
    PaymentState,
    payment_state,
    refund_status,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class OctoClient:
    def __init__(self, session: Callable[[], aiohttp.ClientSession], api_base: str, shop: ShopCredentials) -> None:
        self._session = session
        self.api_base = api_base.rstrip("/")
        self.shop = shop

    async def prepare(self, payment: PreparePayment) -> PaymentState:
        return _read(payment_state, await self._post(PREPARE_PATH, prepare_body(self.shop, payment)))

    async def status(self, shop_transaction_id: str) -> PaymentState:
        return _read(payment_state, await self._post(PREPARE_PATH, status_body(self.shop, shop_transaction_id)))

    async def set_accept(
        self, octo_payment_uuid: str, accept: Literal["capture", "cancel"], *, final_amount: int | None = None,
        currency: str = "UZS",
    ) -> PaymentState:  # fmt: skip
        body = set_accept_body(self.shop, octo_payment_uuid, accept, final_amount=final_amount, currency=currency)
        return _read(payment_state, await self._post(SET_ACCEPT_PATH, body))

    async def refund(
        self,
        octo_payment_uuid: str,
        shop_refund_id: str,
        amount: int,
        currency: str,
        *,
        headers: dict[str, str] | None = None,
    ) -> str:
        body = refund_body(self.shop, octo_payment_uuid, shop_refund_id, amount, currency)
        return _read(refund_status, await self._post(REFUND_PATH, body, headers=headers))

    async def _post(self, path: str, body: dict[str, Any], *, headers: dict[str, str] | None = None) -> object:
        try:
            async with self._session().post(self.api_base + path, json=body, headers=headers) as response:
                if response.status >= 500:
                    raise ProviderUnavailableError(f"octo {path} answered {response.status}")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("octo %s failed: %s", path, type(exc).__name__)
            raise ProviderUnavailableError(f"octo {path} could not be reached") from None
        return answer


def _read(parse: Callable[[object], T], answer: object) -> T:
    try:
        return parse(answer)
    except OctoRefused as exc:
        raise ProviderRejectedError(f"octo_{exc.code}", exc.message) from None
    except OctoMalformed:
        raise ProviderUnavailableError("octo answered outside the protocol") from None
