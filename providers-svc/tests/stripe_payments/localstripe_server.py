"""localstripe (PROTOCOLS.md §5a) as the tests' fake Stripe: ``python localstripe_server.py PORT``.

On 127.0.0.1 only (its own CLI binds '::'), with its store kept in memory (its default writes
/tmp/localstripe.pickle on every change, which parallel instances would share), and with a record of
every request it was sent (method, path, ``Idempotency-Key``, ``Stripe-Account``, form body), read at
``GET /_config/requests``: localstripe ignores idempotency keys and the Stripe-Account header, so the
tests check what our adapter sent instead."""

from __future__ import annotations

import sys
from typing import Any

from aiohttp import web
from localstripe import server
from localstripe.resources import store


def main() -> None:
    port = int(sys.argv[1])
    store.dump_to_disk = lambda: None
    seen: list[dict[str, Any]] = []

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith("/_config/"):
            body = (await request.read()).decode() if request.can_read_body else ""
            seen.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "idempotency_key": request.headers.get("Idempotency-Key"),
                    "stripe_account": request.headers.get("Stripe-Account"),
                    "body": body,
                }
            )
        return await handler(request)

    async def requests(_request: web.Request) -> web.Response:
        return web.json_response(seen)

    server.app.middlewares.insert(0, record)
    server.app.router.add_get("/_config/requests", requests)
    web.run_app(server.app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main()
