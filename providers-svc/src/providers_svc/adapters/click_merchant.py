"""Click's Merchant API as one account sees it (PROTOCOLS.md §1.10): payment status by our id and
reversal, the requests built by ``protocols/click/merchant_api``, sent over the app's ``aiohttp``
session to the account's Merchant API base.

Unreachable, a 5xx or an answer that is not JSON → ``ProviderUnavailableError`` (safe to retry); Click's
refusal (a 4xx, or ``error_code`` other than 0) → ``ProviderRejectedError("click_<code>")``. The ``Auth``
header carries a digest of the secret: never in an error or a log line."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.protocols.click.merchant_api import BASE_URL, MerchantApiRequest

log = logging.getLogger(__name__)

# Click's Merchant API lives at this path below its host (``BASE_URL``); an account's ``api_base`` is a host.
MERCHANT_PATH = BASE_URL.removeprefix("https://api.click.uz")


# Click's refusals we can name (PROTOCOLS.md §1.10 documents the HTTP statuses, not the codes: these are
# the ones its Merchant API is known to answer); any other is ``click_<error_code>``.
_REFUSALS = {
    -1: "click_authorization_failed",
    -2: "click_service_not_allowed",
    -8: "click_bad_request",
    -16: "click_payment_not_found",
    -17: "click_payment_not_reversible",
}


@dataclass(frozen=True)
class MerchantAnswer:
    """A 2xx answer with ``error_code`` 0, or a 404 (Click knows no such payment): its JSON body."""

    status: int
    body: dict[str, Any]


class ClickMerchantClient:
    def __init__(self, session: Callable[[], aiohttp.ClientSession], base: str) -> None:
        self._session = session
        self.base = base.rstrip("/")

    async def send(self, request: MerchantApiRequest, *, extra_headers: dict[str, str] | None = None) -> MerchantAnswer:
        # The operation's name for logs and errors, never its path (which holds our ids, not secrets,
        # but keeps log lines short and stable).
        operation = request.path.split("/")[2] if request.path.count("/") >= 2 else request.path
        try:
            async with self._session().request(
                request.method, self.base + request.path, headers={**request.headers, **(extra_headers or {})}
            ) as response:
                if response.status >= 500:
                    raise ProviderUnavailableError(f"click {operation} answered {response.status}")
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("click %s failed: %s", operation, type(exc).__name__)
            raise ProviderUnavailableError(f"click {operation} could not be reached") from None
        if not isinstance(body, dict):
            raise ProviderUnavailableError(f"click {operation} answered outside the protocol")
        code = body.get("error_code", 0 if status < 400 else None)
        if status == 404:
            return MerchantAnswer(status, body)
        if status >= 400 or code != 0:
            note = body.get("error_note")
            shown = note if isinstance(note, str) and len(note) <= 200 else "refused"
            label = code if isinstance(code, int) and not isinstance(code, bool) else f"http_{status}"
            name = _REFUSALS.get(label, f"click_{label}") if isinstance(label, int) else f"click_{label}"
            raise ProviderRejectedError(name, f"Click refused {operation}: {shown}")
        return MerchantAnswer(status, body)
