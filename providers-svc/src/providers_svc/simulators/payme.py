"""Payme's side of the Merchant API, played against our real ``POST /billing/payme`` over HTTP (through the
gateway, as Payme reaches us), with the simulator account's key: the calls Payme makes for each outcome a
payer can choose, repeated as Payme's sandbox repeats them, each answer checked against PROTOCOLS.md §2.

It is a conformance checker too: every answer is compared with what Payme would accept (the state, the
stored times answered again byte for byte, the error codes), and the first that differs stops the script
and is reported (``PaymeScriptError``), never papered over."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp

from providers_svc.protocols.payme.auth import LOGIN
from providers_svc.protocols.payme.states import TIMEOUT_MS, CancelReason

log = logging.getLogger(__name__)


class PayerChoice(StrEnum):
    PAY = "pay"  # Check, Create twice, Perform twice, CheckTransaction, GetStatement
    DECLINE = "decline"  # the card is declined after Create: Cancel (reason 2, debit error) twice
    REFUND = "refund"  # paid, then Payme cancels the performed transaction (reason 5, refund) twice
    TIMEOUT = "timeout"  # a Create already past 12 h is refused; one that expires meanwhile is cancelled (4)


@dataclass(frozen=True)
class Step:
    """One call the simulator made and what came back."""

    method: str
    params: dict[str, Any]
    answer: dict[str, Any] | None
    raw: bytes
    request_id: int = 0


class PaymeScriptError(Exception):
    """Our endpoint answered what Payme would not accept: ``step`` is the call, ``expected`` what was due."""

    def __init__(self, step: Step, expected: str) -> None:
        super().__init__(f"{step.method}: expected {expected}, got {step.raw[:500]!r}")
        self.step = step
        self.expected = expected


def new_payme_id() -> str:
    """Payme's transaction ids are Mongo ObjectIds: 24 hex characters."""
    return secrets.token_hex(12)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class PaymeScript:
    """The calls for one order (``payment_id`` under ``account_field``, ``amount`` in tiyin)."""

    http: aiohttp.ClientSession
    url: str
    key: str = field(repr=False)
    account_field: str
    payment_id: str
    amount: int
    steps: list[Step] = field(default_factory=list)
    _ids: int = 0
    # How long past its 12 hours the timed-out transaction is left; short, a payer is waiting.
    expiry_margin_ms: int = 1500

    async def run(self, choice: PayerChoice) -> list[Step]:
        match choice:
            case PayerChoice.PAY:
                await self._pay()
            case PayerChoice.DECLINE:
                payme_id = await self._create()
                await self._cancel(payme_id, CancelReason.DEBIT_ERROR, state=-1)
            case PayerChoice.REFUND:
                payme_id = await self._pay()
                await self._cancel(payme_id, CancelReason.REFUND, state=-2)
            case PayerChoice.TIMEOUT:
                await self._time_out()
        return self.steps

    async def _pay(self) -> str:
        payme_id = await self._create()
        first = await self._call("PerformTransaction", {"id": payme_id})
        self._expect(first, "result.state == 2", _result(first).get("state") == 2)
        await self._repeat(first)
        checked = _result(await self._check(payme_id))
        perform_time = _result(first).get("perform_time")
        if checked.get("state") != 2 or checked.get("perform_time") != perform_time:
            self._expect(self.steps[-1], "CheckTransaction state 2 with the stored perform_time", False)
        created_at = next(s.params["time"] for s in self.steps if s.params.get("id") == payme_id)
        statement = await self._call("GetStatement", {"from": created_at, "to": created_at})
        rows = _result(statement).get("transactions")
        ok = isinstance(rows, list) and any(r.get("id") == payme_id and r.get("state") == 2 for r in rows)
        self._expect(statement, "GetStatement listing the performed transaction", ok)
        return payme_id

    async def _create(self, *, at: int | None = None) -> str:
        account = {self.account_field: self.payment_id}
        check = await self._call("CheckPerformTransaction", {"amount": self.amount, "account": account})
        self._expect(check, "result.allow == true", _result(check).get("allow") is True)
        payme_id = new_payme_id()
        params = {"id": payme_id, "time": at or now_ms(), "amount": self.amount, "account": account}
        first = await self._call("CreateTransaction", params)
        self._expect(first, "result.state == 1", _result(first).get("state") == 1)
        # The sandbox sends it twice: the repeat is answered from what the first stored.
        await self._repeat(first)
        return payme_id

    async def _cancel(self, payme_id: str, reason: CancelReason, *, state: int) -> None:
        first = await self._call("CancelTransaction", {"id": payme_id, "reason": int(reason)})
        self._expect(first, f"result.state == {state}", _result(first).get("state") == state)
        await self._repeat(first)
        checked = _result(await self._check(payme_id))
        ok = checked.get("state") == state and checked.get("reason") == int(reason)
        self._expect(self.steps[-1], f"CheckTransaction state {state} reason {int(reason)}", ok)

    async def _time_out(self) -> None:
        # A transaction Payme made more than 12 hours ago is refused and nothing is stored.
        account = {self.account_field: self.payment_id}
        stale = {
            "id": new_payme_id(),
            "time": now_ms() - TIMEOUT_MS - 60_000,
            "amount": self.amount,
            "account": account,
        }
        refused = await self._call("CreateTransaction", stale)
        self._expect(refused, "error -31008 for a transaction older than 12 hours", _error_code(refused) == -31008)
        # One created just before its 12 hours end, then performed after them: cancelled with reason 4.
        payme_id = await self._create(at=now_ms() - TIMEOUT_MS + self.expiry_margin_ms)
        await asyncio.sleep(self.expiry_margin_ms / 1000 + 0.2)
        late = await self._call("PerformTransaction", {"id": payme_id})
        self._expect(late, "error -31008 for an expired transaction", _error_code(late) == -31008)
        checked = _result(await self._check(payme_id))
        ok = checked.get("state") == -1 and checked.get("reason") == int(CancelReason.TIMEOUT)
        self._expect(self.steps[-1], "CheckTransaction state -1 reason 4", ok)

    async def _check(self, payme_id: str) -> Step:
        return await self._call("CheckTransaction", {"id": payme_id})

    async def _repeat(self, first: Step) -> Step:
        """``first`` sent again as Payme resends a call whose answer it lost: the same request, so the
        answer must be the same bytes."""
        again = await self._call(first.method, first.params, request_id=first.request_id)
        self._expect(again, f"the first {first.method} answer again, byte for byte", again.raw == first.raw)
        return again

    async def _call(self, method: str, params: dict[str, Any], *, request_id: int | None = None) -> Step:
        if request_id is None:
            self._ids += 1
            request_id = self._ids
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        token = base64.b64encode(f"{LOGIN}:{self.key}".encode()).decode("ascii")
        headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        try:
            async with self.http.post(self.url, data=body, headers=headers) as response:
                raw = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            step = Step(method, params, None, repr(exc).encode(), request_id)
            self.steps.append(step)
            raise PaymeScriptError(step, "an answer") from None
        answer = _json(raw)
        step = Step(method, params, answer, raw, request_id)
        self.steps.append(step)
        ok = status == 200 and _echoes(answer, request_id)
        self._expect(step, "HTTP 200 with a JSON-RPC answer to our request id", ok)
        return step

    def _expect(self, step: Step, expected: str, ok: bool) -> None:
        if not ok:
            raise PaymeScriptError(step, expected)


def _json(raw: bytes) -> dict[str, Any] | None:
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _echoes(answer: dict[str, Any] | None, request_id: int) -> bool:
    return answer is not None and answer.get("id") == request_id and ("result" in answer) != ("error" in answer)


def _result(step: Step) -> dict[str, Any]:
    result = (step.answer or {}).get("result")
    return result if isinstance(result, dict) else {}


def _error_code(step: Step) -> object:
    error = (step.answer or {}).get("error")
    return error.get("code") if isinstance(error, dict) else None
