"""The Click side of the simulator: Prepare and Complete posted to our real endpoints over HTTP, as Click
posts them (url-encoded, every value a string, signed per §1.4 with the simulator account's secret),
and the answers Click expects to each step of each scenario."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import aiohttp

from providers_svc.adapters.click import TASHKENT
from providers_svc.protocols.click.amounts import format_som
from providers_svc.protocols.click.credentials import ClickCredentials
from providers_svc.protocols.click.signing import SignedFields, sign

log = logging.getLogger(__name__)


class Scenario(StrEnum):
    PAY = "pay"  # Prepare, Complete error=0 (repeated once, as Click retries): the payment succeeds
    DECLINE = "decline"  # Prepare, Complete error=-5017 (the payer's card has no funds): Click cancels
    CANCEL = "cancel"  # Prepare, Complete error=-9 (the payer cancelled at Click)
    # Prepare, then the payer never completes at Click; once the payment's time is up Click cancels it:
    # Complete error=-5017 (§1.7's cancellation path). The simulator compresses time: the cancelling
    # Complete follows the Prepare at once. §1 documents no code of its own for an expired payment; it
    # names -5017 (§1.3) and says any error<0 cancels (§1.6), so -5017 it is, its note saying why.
    TIMEOUT = "timeout"
    FORGED = "forged"  # a Prepare signed with a wrong key: refused with -1, nothing changes
    # Prepare, then Click debits the payer but its Complete never reaches the shop: the payment is
    # paid at Click (its Merchant API says so) and pending with us until reconciliation's sync asks.
    PAY_LOST = "pay_lost"


# Complete's error and note per scenario (Click's own codes: < 0 cancels).
_COMPLETE_ERRORS = {
    Scenario.PAY: ("0", "Success"),
    Scenario.DECLINE: ("-5017", "Insufficient funds"),
    Scenario.CANCEL: ("-9", "Payment cancelled by the payer"),
    Scenario.TIMEOUT: ("-5017", "Payment time expired: the payer did not complete it"),
}


class UnexpectedAnswer(Exception):
    """Our endpoint answered what Click would not accept for this step (shown and logged, never hidden)."""

    def __init__(self, step: str, answer: object) -> None:
        super().__init__(f"{step}: {answer!r}")
        self.step = step
        self.answer = answer


@dataclass(frozen=True)
class ClickCaller:
    """Plays Click for one simulator account against ``{gateway}/billing/click/*``."""

    http: Callable[[], aiohttp.ClientSession]
    gateway_url: str
    credentials: ClickCredentials
    clock: Callable[[], datetime]

    async def play(self, scenario: Scenario, *, merchant_trans_id: str, amount: int) -> int:
        """Run ``scenario`` for the order and return its ``click_trans_id``; raises ``UnexpectedAnswer``
        on an answer Click would refuse."""
        attempt = {
            "click_trans_id": str(secrets.randbelow(9 * 10**11) + 10**11),
            "click_paydoc_id": str(secrets.randbelow(9 * 10**11) + 10**11),
            "merchant_trans_id": merchant_trans_id,
            "amount": format_som(amount),
        }
        if scenario is Scenario.FORGED:
            forged = ClickCredentials(**{**self.credentials.model_dump(), "secret_key": secrets.token_hex(16)})
            answer = await self._post("prepare", self._form("0", attempt, credentials=forged))
            self._expect("forged prepare", answer, -1)
            return int(attempt["click_trans_id"])
        prepared = await self._post("prepare", self._form("0", attempt))
        self._expect("prepare", prepared, 0)
        prepare_id = prepared.get("merchant_prepare_id")
        if not isinstance(prepare_id, int):
            raise UnexpectedAnswer("prepare", prepared)
        if scenario is Scenario.PAY_LOST:
            return int(attempt["click_trans_id"])
        error, note = _COMPLETE_ERRORS[scenario]
        form = self._form("1", attempt, merchant_prepare_id=str(prepare_id), error=error, error_note=note)
        first_expected, repeat_expected = (0, -4) if scenario is Scenario.PAY else (-9, -9)
        self._expect("complete", await self._post("complete", form), first_expected, confirm_id=prepare_id)
        # Click delivers again when unsure it was heard: the repeat must not move money again.
        self._expect("repeated complete", await self._post("complete", form), repeat_expected, confirm_id=prepare_id)
        return int(attempt["click_trans_id"])

    def _form(
        self,
        action: str,
        attempt: dict[str, str],
        *,
        credentials: ClickCredentials | None = None,
        merchant_prepare_id: str | None = None,
        error: str = "0",
        error_note: str = "Success",
    ) -> dict[str, str]:
        credentials = credentials or self.credentials
        sign_time = self.clock().astimezone(TASHKENT).strftime("%Y-%m-%d %H:%M:%S")
        signed = SignedFields(
            click_trans_id=attempt["click_trans_id"],
            service_id=str(credentials.service_id),
            merchant_trans_id=attempt["merchant_trans_id"],
            merchant_prepare_id=merchant_prepare_id,
            amount=attempt["amount"],
            action=action,
            sign_time=sign_time,
        )
        form = {
            **attempt,
            "service_id": str(credentials.service_id),
            "action": action,
            "error": error,
            "error_note": error_note,
            "sign_time": sign_time,
            "sign_string": sign(signed, credentials.secret_key),
        }
        if merchant_prepare_id is not None:
            form["merchant_prepare_id"] = merchant_prepare_id
        return form

    async def _post(self, step: str, form: dict[str, str]) -> dict[str, Any]:
        url = f"{self.gateway_url.rstrip('/')}/billing/click/{step}"
        try:
            async with self.http().post(url, data=form) as response:
                answer = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise UnexpectedAnswer(step, type(exc).__name__) from None
        if status != 200 or not isinstance(answer, dict):
            raise UnexpectedAnswer(step, f"HTTP {status}")
        return answer

    @staticmethod
    def _expect(step: str, answer: dict[str, Any], error: int, *, confirm_id: int | None = None) -> None:
        if answer.get("error") != error:
            raise UnexpectedAnswer(step, answer)
        if error == 0 and confirm_id is not None and answer.get("merchant_confirm_id") != confirm_id:
            raise UnexpectedAnswer(step, answer)
