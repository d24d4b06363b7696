"""A part of a page loaded from the gateway on its own: when it fails, the page still renders and says
what could not be loaded (the gateway too slow, down, or without that route), instead of failing whole."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from checkout_web.dashboard.api import ApiProblem, GatewayTimeout
from checkout_web.gateway_client import GatewayUnavailable, UnexpectedGatewayResponse


@dataclass(frozen=True)
class Section:
    # "ok" | "unavailable" (the platform has no such route) | "slow" | "down" | "broken"
    state: str
    items: list[dict[str, Any]] = field(default_factory=list)
    has_more: bool = False

    @property
    def ok(self) -> bool:
        return self.state == "ok"


async def load(call: Awaitable[Any], *, missing_is_unavailable: bool = False) -> Section:
    """A list section from a gateway call; ``SessionRejected`` still propagates (the session ended)."""
    try:
        answer = await call
    except GatewayTimeout:
        return Section("slow")
    except GatewayUnavailable:
        return Section("down")
    except ApiProblem as exc:
        if exc.status == 404 and missing_is_unavailable:
            return Section("unavailable")
        return Section("broken")
    except UnexpectedGatewayResponse:
        return Section("broken")
    data = answer.body.get("data")
    if not isinstance(data, list):
        return Section("broken")
    return Section("ok", [d for d in data if isinstance(d, dict)], bool(answer.body.get("has_more")))


async def gather_sections(*calls: Awaitable[Section]) -> list[Section]:
    return list(await asyncio.gather(*calls))
