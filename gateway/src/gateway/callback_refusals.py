"""Provider callbacks (``/billing/...``) the gateway itself refuses, answered in the provider's own
format, never problem+json (API.md: a provider reads only its own): a body over the limit, a path that
names nothing safely, or providers-svc unreachable. The formats are providers-svc's own answers to the
same cases, so a provider cannot tell which of the two refused it:

- Payme: a JSON-RPC error, HTTP 200 (Payme reads any other status as -32400): -32600 for a request
  that cannot be one, -32400 (a system error: Payme calls again) when providers-svc is away; the
  request's ``id`` echoed when the body names one.
- Click: its JSON answer, HTTP 200 (Click reads ``error``, not the status): -8 for a request that cannot
  be one, -7 ("failed to update": Click calls again, nothing was stored) when providers-svc is away,
  with Click's ids echoed when the form carries them.
- Everyone else (Octo, Stripe, the sandbox bank): they send again on any status but 2xx, so the status
  says it, with ``{"error": ...}`` as providers-svc answers them (and ``Retry-After`` on a 503).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

# Payme's JSON-RPC codes and their messages, as providers-svc answers them (PROTOCOLS.md §2.4).
_PAYME_INVALID_REQUEST = (
    -32600,
    {
        "ru": "В RPC-запросе отсутствуют обязательные поля или тип полей не соответствует спецификации.",  # noqa: RUF001
        "uz": "RPC soʻrovida majburiy maydonlar yoʻq yoki ularning turi spetsifikatsiyaga mos emas.",  # noqa: RUF001
        "en": "Required RPC fields are missing or have the wrong type.",
    },
)
_PAYME_SYSTEM_ERROR = (-32400, {"ru": "Системная ошибка.", "uz": "Tizim xatosi.", "en": "Internal system error."})
# Click's codes (PROTOCOLS.md §1.6).
_CLICK_BAD_REQUEST = (-8, "Error in request from click")
_CLICK_FAILED_TO_UPDATE = (-7, "Failed to update user")
_ERROR_WORDS = {404: "not_found", 413: "payload_too_large", 503: "temporarily_unavailable"}
# The providers that call /billing/<provider>/... (providers-svc's callback routes).
PROVIDERS = frozenset({"payme", "click", "octo", "stripe", "sandbox"})


def provider_of(path: str) -> str:
    """``payme``, ``click``, ``octo``, ``stripe``, ``sandbox``...: the segment after ``/billing/``."""
    return path.removeprefix("/billing").strip("/").partition("/")[0] or "unknown"


def echoes_ids(path: str) -> bool:
    """Whether the refusal repeats ids the request carried (Payme's and Click's answers do)."""
    return provider_of(path) in ("payme", "click")


def refusal(path: str, status: int, body: bytes | None, headers: dict[str, str]) -> web.Response | None:
    """The provider's own answer to a callback the gateway could not pass on (``status``: what the
    gateway would have answered; ``body``: the request's, when it was read); None for a path that
    names no provider of ours (no provider reads it: the usual problem+json)."""
    provider = provider_of(path)
    if provider not in PROVIDERS:
        return None
    unavailable = status >= 500
    if provider == "payme":
        code, message = _PAYME_SYSTEM_ERROR if unavailable else _PAYME_INVALID_REQUEST
        document = {"jsonrpc": "2.0", "id": _payme_id(body), "error": {"code": code, "message": message}}
        return web.json_response(document, headers={"Cache-Control": "no-store"})
    if provider == "click":
        code, note = _CLICK_FAILED_TO_UPDATE if unavailable else _CLICK_BAD_REQUEST
        form = _click_form(body)
        answer: dict[str, Any] = {
            "click_trans_id": _int_or_none(form.get("click_trans_id")),
            "merchant_trans_id": form.get("merchant_trans_id"),
            "error": code,
            "error_note": note,
        }
        answer["merchant_prepare_id" if path.endswith("/prepare") else "merchant_confirm_id"] = None
        return web.json_response(answer)
    kept = {name: value for name, value in headers.items() if name == "Retry-After"}
    return web.json_response({"error": _ERROR_WORDS.get(status, "refused")}, status=status, headers=kept or None)


def _payme_id(body: bytes | None) -> int | str | None:
    if not body:
        return None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    request_id = document.get("id") if isinstance(document, dict) else None
    # JSON-RPC ids are numbers or strings (a bool is an int to Python, not to JSON).
    if isinstance(request_id, bool) or not isinstance(request_id, int | str):
        return None
    return request_id


def _click_form(body: bytes | None) -> dict[str, str]:
    if not body:
        return {}
    try:
        return dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, max_num_fields=64))
    except (UnicodeDecodeError, ValueError):
        return {}


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) <= 19 else None
