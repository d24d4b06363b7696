"""The form a payer page's buttons post, read so that a malformed body is a client's error."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import BadHttpMessage


async def payer_form(request: web.Request) -> Mapping[str, object]:
    """The posted form, or nothing when the body is not the form it claims to be (multipart without
    a boundary, a part cut short): no choice was made, which each page answers with its own 400."""
    try:
        return await request.post()
    except (ValueError, AssertionError, ClientPayloadError, BadHttpMessage):
        # aiohttp's form and multipart readers raise these on a body that is not what it says.
        return {}
