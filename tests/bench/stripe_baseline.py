"""The baseline of the Stripe webhook bench: a bare aiohttp + asyncpg endpoint doing what ingesting one
signed Stripe event minimally costs, with no ORM, no unit of work, no gateway hop and no outbox. Per
event, as the platform does it: check ``Stripe-Signature`` (HMAC-SHA256 of ``"{t}.{body}"``, any ``v1``,
300 s tolerance), parse the event, and in one database transaction record its id once (the inbox) and
upsert its object on (account, Stripe id) unless the stored state is newer (the projection).

``python stripe_baseline.py <dsn> <port> <webhook secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import uvloop
from aiohttp import web

TOLERANCE = 300
ACCOUNT = "pac_bench_baseline"

SCHEMA = """
CREATE TABLE IF NOT EXISTS stripe_events (
  id text PRIMARY KEY, type text NOT NULL, account_id text NOT NULL, payload jsonb NOT NULL,
  received_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS stripe_objects (
  account_id text NOT NULL, stripe_id text NOT NULL, object text NOT NULL, customer text, status text,
  created timestamptz NOT NULL, event_created timestamptz NOT NULL, data jsonb NOT NULL,
  deleted boolean NOT NULL DEFAULT false, PRIMARY KEY (account_id, stripe_id));
"""

UPSERT = """
INSERT INTO stripe_objects AS o (account_id, stripe_id, object, customer, status, created, event_created, data,
  deleted)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (account_id, stripe_id) DO UPDATE SET
  customer = excluded.customer, status = excluded.status, event_created = excluded.event_created,
  data = excluded.data, deleted = excluded.deleted
WHERE o.event_created < excluded.event_created
"""


def verified(header: str, body: bytes, secret: bytes) -> bool:
    parts = [p.split("=", 1) for p in header.split(",") if "=" in p]
    stamps = [v for k, v in parts if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or int(stamps[0]) < time.time() - TOLERANCE:
        return False
    expected = hmac.new(secret, stamps[0].encode() + b"." + body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in parts if k == "v1")


def _at(unix: object) -> datetime:
    return datetime.fromtimestamp(int(unix), tz=UTC)  # type: ignore[call-overload]


def make_app(dsn: str, secret: str) -> web.Application:
    app = web.Application(client_max_size=256 * 1024)
    pool_key = web.AppKey("pool", asyncpg.Pool)
    key = secret.encode()

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app[pool_key] = pool
        yield
        await pool.close()

    async def stripe(request: web.Request) -> web.Response:
        body = await request.read()
        if not verified(request.headers.get("Stripe-Signature", ""), body, key):
            return web.json_response({"error": "bad signature"}, status=400)
        event = json.loads(body)
        obj = event["data"]["object"]
        now = datetime.now(UTC)
        async with request.app[pool_key].acquire() as conn, conn.transaction():
            fresh = await conn.execute(
                "INSERT INTO stripe_events VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                event["id"],
                event["type"],
                ACCOUNT,
                body.decode(),
                now,
            )
            if fresh.endswith(" 1"):
                await conn.execute(
                    UPSERT,
                    ACCOUNT,
                    obj["id"],
                    obj["object"],
                    obj.get("customer") if isinstance(obj.get("customer"), str) else None,
                    obj.get("status"),
                    _at(obj.get("created", event["created"])),
                    _at(event["created"]),
                    json.dumps(obj),
                    event["type"].endswith(".deleted"),
                )
        return web.json_response({"received": True})

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/billing/stripe", stripe)
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    return app


if __name__ == "__main__":
    uvloop.install()
    web.run_app(
        make_app(sys.argv[1], sys.argv[3]), host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None
    )
