"""Who may frame a payment's pages, and to whom the embedded page may talk.

Both come from the ``allowed_origins`` of the payment's tenant, as the gateway's checkout view gives
them: the browser is told ``frame-ancestors <those origins>`` (``'none'`` without any), and a page
opened by the SDK (``?embedded=true&origin=<the embedding page's origin>``) posts its messages to that
origin only when it is one of them. Either check alone would leave a hole: CSP stops other sites from
framing the page, the target origin stops a message from reaching anyone else."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web

# What the gateway stores (gateway.origins): checked again here, because the value goes into a header.
_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(:[0-9]{1,5})?$")


def frame_ancestors(allowed_origins: Sequence[str]) -> str:
    """The CSP ``frame-ancestors`` source list for a tenant's origins: ``'none'`` when it has none."""
    origins = [origin for origin in allowed_origins if _ORIGIN.fullmatch(origin)]
    return " ".join(origins) if origins else "'none'"


@dataclass(frozen=True)
class Embedding:
    """A page shown in the SDK's modal. ``parent_origin``: where its messages may go, or None when the
    origin the SDK named is not one of the tenant's (the page then posts nothing)."""

    parent_origin: str | None


def embedding(request: web.Request, allowed_origins: Sequence[str]) -> Embedding | None:
    """The embedding of this page view, or None when the page is not in the SDK's modal."""
    if request.query.get("embedded") != "true":
        return None
    origin = request.query.get("origin")
    exact = origin if origin is not None and _ORIGIN.fullmatch(origin) else None
    return Embedding(exact if exact in allowed_origins else None)
