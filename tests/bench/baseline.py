"""The baseline: a bare aiohttp endpoint doing what creating a payment minimally costs in the
database, two inserts (payment row + outbox row) in one transaction with asyncpg. No auth, no
validation, no idempotency, no ORM: the floor our stack is measured against."""

from __future__ import annotations

import json
import secrets
import sys
from datetime import UTC, datetime, timedelta

import asyncpg
import uvloop
from aiohttp import web

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
  id text PRIMARY KEY, tenant_id text NOT NULL, status text NOT NULL, amount bigint NOT NULL,
  currency char(3) NOT NULL, order_id text NOT NULL, created_at timestamptz NOT NULL,
  expires_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  id bigserial PRIMARY KEY, event_id text UNIQUE NOT NULL, routing_key text NOT NULL,
  body text NOT NULL, created_at timestamptz NOT NULL);
"""


def make_app(dsn: str) -> web.Application:
    app = web.Application()
    pool_key = web.AppKey("pool", asyncpg.Pool)

    async def pool_ctx(app: web.Application):  # type: ignore[no-untyped-def]
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app[pool_key] = pool
        yield
        await pool.close()

    async def create(request: web.Request) -> web.Response:
        body = await request.json()
        now = datetime.now(UTC)
        payment_id = "pay_" + secrets.token_hex(12)
        async with request.app[pool_key].acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO payments VALUES ($1, $2, 'CREATED', $3, $4, $5, $6, $7)",
                payment_id,
                "ten_bench",
                body["amount"],
                body["currency"],
                body["order_id"],
                now,
                now + timedelta(minutes=30),
            )
            await conn.execute(
                "INSERT INTO outbox (event_id, routing_key, body, created_at) VALUES ($1, $2, $3, $4)",
                "evt_" + secrets.token_hex(12),
                "payments.payment.created.v1",
                json.dumps(body),
                now,
            )
        return web.json_response({"id": payment_id, "status": "CREATED"}, status=201)

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/v1/payments", create)
    return app


if __name__ == "__main__":
    web.run_app(
        make_app(sys.argv[1]),
        host="127.0.0.1",
        port=int(sys.argv[2]),
        access_log=None,
        print=None,
        # The same event loop as the services (billing_runtime.running.run), so the ratio compares stacks.
        loop=uvloop.new_event_loop(),
    )
