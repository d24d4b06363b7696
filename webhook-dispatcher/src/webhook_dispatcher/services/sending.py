"""Sending: one signed HTTP attempt of a leased delivery (Standard Webhooks v1, WHK-5), through the
guarded client (WHK-7), redirects never followed (WHK-9). However it ends, it ends as an
``AttemptResult``, never an exception: what the receiver did is the attempt's record."""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp
from billing_contracts.envelope import utcnow
from billing_contracts.signing import signature_header

from webhook_dispatcher.services.attempts import AttemptResult, Claimed
from webhook_dispatcher.services.transport import AddressRefused

USER_AGENT = "billing-webhooks/1.0"


class Sender:
    def __init__(
        self, client: Callable[[], aiohttp.ClientSession], *, request_timeout: float, excerpt_bytes: int
    ) -> None:
        # A factory, not a session: the app opens the session only once it runs (``create_app``).
        self.client = client
        self.request_timeout = request_timeout
        self.excerpt_bytes = excerpt_bytes

    async def send(self, item: Claimed) -> AttemptResult:
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": item.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature_header(item.secrets, item.event_id, timestamp, item.body),
        }
        started_at = utcnow()
        started = time.perf_counter()
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        try:
            async with self.client().post(
                item.url, data=item.body, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                excerpt = await _read_up_to(response, self.excerpt_bytes)
                error = None
                if 300 <= response.status < 400:
                    # The receiver controls this header: make it storable text (no NUL, no lone surrogates).
                    location = _clean(response.headers.get("Location", "")[:200])
                    error = f"redirect not followed (Location: {location})"
                return AttemptResult(
                    started_at=started_at,
                    latency=time.perf_counter() - started,
                    status=response.status,
                    error=error,
                    response_body=_text(excerpt),
                    retry_after=response.headers.get("Retry-After"),
                )
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, AddressRefused)
            reason = str(exc.os_error) if refused else f"connection failed: {exc.os_error.strerror or exc.os_error}"
            return AttemptResult(started_at, time.perf_counter() - started, error=reason, refused=refused)
        except TimeoutError:
            return AttemptResult(
                started_at, time.perf_counter() - started, error=f"timed out after {self.request_timeout:g}s"
            )
        except (aiohttp.ClientError, ValueError) as exc:
            # ValueError: aiohttp refuses some URLs (e.g. non-canonical IPv4 literals) before connecting.
            return AttemptResult(started_at, time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}")


async def _read_up_to(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The first ``limit`` bytes of the body (one ``read`` may return less); the rest is never read."""
    data = b""
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _clean(text: str) -> str:
    """Any receiver-controlled string as text PostgreSQL can store."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "\ufffd")


def _text(raw: bytes) -> str:
    # PostgreSQL text cannot hold NUL; anything undecodable is shown, not dropped.
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
