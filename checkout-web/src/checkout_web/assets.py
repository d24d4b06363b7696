"""checkout.js and the stylesheet, read from the package once per app and served with cache headers."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib.resources import files

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:12]


def load_asset(name: str, content_type: str) -> Asset:
    body = (files("checkout_web") / "static" / name).read_bytes()
    return Asset(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def asset_handler(asset: Asset, max_age: int) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        headers = {
            "Cache-Control": f"public, max-age={max_age}",
            "ETag": asset.etag,
            # Tenants load checkout.js from their own origin; say so for sites that require CORP.
            "Cross-Origin-Resource-Policy": "cross-origin",
        }
        if _etag_matches(request.headers.get("If-None-Match", ""), asset.etag):
            return web.Response(status=304, headers=headers)
        return web.Response(body=asset.body, content_type=asset.content_type, charset="utf-8", headers=headers)

    return handler


def _etag_matches(header: str, etag: str) -> bool:
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag in candidates or "*" in candidates
