"""The baseline of the Payme and Click bench: a bare aiohttp + asyncpg endpoint doing the reads and writes
those callbacks minimally cost, with no ORM, no unit of work, no gateway hop and no protocol core. It
checks the same credentials (Payme's Basic key, Click's MD5 signature) and answers in the same shape,
so the ratio measures what our stack adds on top of the database work, not a different job.

Per call, as the platform does it:
- Payme CheckPerformTransaction: read the order's provider transaction.
- Payme CreateTransaction: read the Payme transaction by Payme's id, read the order, insert the record
  (one active transaction per order, a partial unique index as ours).
- Payme PerformTransaction: in one transaction, lock the record and the order, mark both, write the
  provider event, the outbox row, and NOTIFY the relay.
- Click Prepare: read the order, insert the reservation.
- Click Complete: as Perform, on the reservation.

``python regional_baseline.py <dsn> <port>``; the bench seeds ``orders`` itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import uvloop
from aiohttp import web

PAYME_KEY = "bench-baseline-payme-key"
CLICK_SECRET = "bench-baseline-click-secret"
CLICK_SERVICE = "4242"

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
  id text PRIMARY KEY, payment_id text NOT NULL, provider text NOT NULL, amount bigint NOT NULL,
  status text NOT NULL, account_id text NOT NULL, livemode boolean NOT NULL DEFAULT false,
  expires_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, UNIQUE (payment_id, provider));
CREATE TABLE IF NOT EXISTS payme_transactions (
  payme_id text PRIMARY KEY, transaction_id text UNIQUE NOT NULL, order_id text NOT NULL,
  payment_id text NOT NULL, amount bigint NOT NULL, time bigint NOT NULL, create_time bigint NOT NULL,
  perform_time bigint NOT NULL DEFAULT 0, cancel_time bigint NOT NULL DEFAULT 0, state int NOT NULL,
  reason int);
CREATE UNIQUE INDEX IF NOT EXISTS payme_one_active ON payme_transactions (payment_id) WHERE state = 1;
CREATE TABLE IF NOT EXISTS click_reservations (
  id bigserial PRIMARY KEY, click_trans_id bigint UNIQUE NOT NULL, order_id text NOT NULL,
  amount text NOT NULL, state text NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS provider_events (
  id text PRIMARY KEY, provider text NOT NULL, external_id text NOT NULL, payload text NOT NULL,
  received_at timestamptz NOT NULL, UNIQUE (provider, external_id));
CREATE TABLE IF NOT EXISTS outbox (
  id bigserial PRIMARY KEY, event_id text UNIQUE NOT NULL, routing_key text NOT NULL,
  body text NOT NULL, created_at timestamptz NOT NULL);
"""


def _payme_answer(request_id: object, result: dict[str, object] | None, error: int | None = None) -> web.Response:
    body: dict[str, object] = {"jsonrpc": "2.0", "id": request_id}
    if error is None:
        body["result"] = result
    else:
        body["error"] = {"code": error, "message": {"ru": "", "uz": "", "en": ""}}
    return web.json_response(body)


async def _settle(conn: asyncpg.Connection, order_id: str, provider: str, external_id: str, payload: str) -> None:
    now = datetime.now(UTC)
    await conn.execute("UPDATE orders SET status = 'succeeded', updated_at = $2 WHERE id = $1", order_id, now)
    await conn.execute(
        "INSERT INTO provider_events VALUES ($1, $2, $3, $4, $5)",
        "pev_" + secrets.token_hex(12),
        provider,
        external_id,
        payload,
        now,
    )
    await conn.execute(
        "INSERT INTO outbox (event_id, routing_key, body, created_at) VALUES ($1, $2, $3, $4)",
        "evt_" + secrets.token_hex(12),
        "providers.provider.payment.succeeded.v1",
        payload,
        now,
    )
    await conn.execute("NOTIFY outbox_bench")


def make_app(dsn: str) -> web.Application:
    app = web.Application()
    pool_key = web.AppKey("pool", asyncpg.Pool)
    expected_auth = "Basic " + base64.b64encode(f"Paycom:{PAYME_KEY}".encode()).decode()

    async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=20)
        async with pool.acquire() as conn:
            await conn.execute(SCHEMA)
        app[pool_key] = pool
        yield
        await pool.close()

    async def payme(request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw)
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected_auth):
            return _payme_answer(body.get("id"), None, -32504)
        params, method, rid = body["params"], body["method"], body["id"]
        pool = request.app[pool_key]
        if method == "CheckPerformTransaction":
            row = await pool.fetchrow(
                "SELECT amount, status FROM orders WHERE payment_id = $1 AND provider = 'payme'",
                params["account"]["order_id"],
            )
            if row is None or row["status"] != "pending" or row["amount"] != params["amount"]:
                return _payme_answer(rid, None, -31050)
            return _payme_answer(rid, {"allow": True})
        if method == "CreateTransaction":
            async with pool.acquire() as conn:
                existing = await conn.fetchrow(
                    "SELECT transaction_id, create_time, state FROM payme_transactions WHERE payme_id = $1",
                    params["id"],
                )
                if existing is not None:
                    result = {"create_time": existing[1], "transaction": existing[0], "state": existing[2]}
                    return _payme_answer(rid, result)
                order = await conn.fetchrow(
                    "SELECT id, amount, status FROM orders WHERE payment_id = $1 AND provider = 'payme'",
                    params["account"]["order_id"],
                )
                if order is None or order["status"] != "pending" or order["amount"] != params["amount"]:
                    return _payme_answer(rid, None, -31050)
                now_ms = int(time.time() * 1000)
                txn = "pmt_" + secrets.token_hex(12)
                await conn.execute(
                    "INSERT INTO payme_transactions (payme_id, transaction_id, order_id, payment_id, amount, time,"
                    " create_time, state) VALUES ($1, $2, $3, $4, $5, $6, $7, 1)",
                    params["id"],
                    txn,
                    order["id"],
                    params["account"]["order_id"],
                    params["amount"],
                    params["time"],
                    now_ms,
                )
            return _payme_answer(rid, {"create_time": now_ms, "transaction": txn, "state": 1})
        if method == "PerformTransaction":
            async with pool.acquire() as conn, conn.transaction():
                record = await conn.fetchrow(
                    "SELECT transaction_id, order_id, state, perform_time FROM payme_transactions"
                    " WHERE payme_id = $1 FOR UPDATE",
                    params["id"],
                )
                if record is None:
                    return _payme_answer(rid, None, -31003)
                if record["state"] == 2:
                    result = {"transaction": record[0], "perform_time": record["perform_time"], "state": 2}
                    return _payme_answer(rid, result)
                await conn.fetchrow("SELECT status FROM orders WHERE id = $1 FOR UPDATE", record["order_id"])
                now_ms = int(time.time() * 1000)
                await conn.execute(
                    "UPDATE payme_transactions SET state = 2, perform_time = $2 WHERE payme_id = $1",
                    params["id"],
                    now_ms,
                )
                await _settle(conn, record["order_id"], "payme", params["id"], raw.decode())
            return _payme_answer(rid, {"transaction": record[0], "perform_time": now_ms, "state": 2})
        return _payme_answer(rid, None, -32601)

    def _click_signed(form: dict[str, str], *with_prepare: str) -> bool:
        parts = [form["click_trans_id"], form["service_id"], CLICK_SECRET, form["merchant_trans_id"], *with_prepare]
        parts += [form["amount"], form["action"], form["sign_time"]]
        digest = hashlib.md5("".join(parts).encode(), usedforsecurity=False).hexdigest()
        return hmac.compare_digest(digest, form["sign_string"])

    async def click(request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        pool = request.app[pool_key]
        base = {"click_trans_id": int(form["click_trans_id"]), "merchant_trans_id": form["merchant_trans_id"]}
        if form["action"] == "0":
            if not _click_signed(form):
                return web.json_response({**base, "error": -1, "error_note": "SIGN CHECK FAILED!"})
            async with pool.acquire() as conn:
                order = await conn.fetchrow(
                    "SELECT id, amount, status FROM orders WHERE payment_id = $1 AND provider = 'click'",
                    form["merchant_trans_id"],
                )
                if order is None or order["status"] != "pending":
                    return web.json_response({**base, "error": -5, "error_note": "User does not exist"})
                prepare_id = await conn.fetchval(
                    "INSERT INTO click_reservations (click_trans_id, order_id, amount, state, updated_at)"
                    " VALUES ($1, $2, $3, 'prepared', $4) RETURNING id",
                    int(form["click_trans_id"]),
                    order["id"],
                    form["amount"],
                    datetime.now(UTC),
                )
            return web.json_response({**base, "merchant_prepare_id": prepare_id, "error": 0, "error_note": "Success"})
        if not _click_signed(form, form["merchant_prepare_id"]):
            return web.json_response({**base, "error": -1, "error_note": "SIGN CHECK FAILED!"})
        async with pool.acquire() as conn, conn.transaction():
            reservation = await conn.fetchrow(
                "SELECT id, order_id, state FROM click_reservations WHERE id = $1 FOR UPDATE",
                int(form["merchant_prepare_id"]),
            )
            if reservation is None:
                return web.json_response({**base, "error": -6, "error_note": "Transaction does not exist"})
            if reservation["state"] == "confirmed":
                return web.json_response({**base, "error": -4, "error_note": "Already paid"})
            await conn.fetchrow("SELECT status FROM orders WHERE id = $1 FOR UPDATE", reservation["order_id"])
            await conn.execute(
                "UPDATE click_reservations SET state = 'confirmed', updated_at = $2 WHERE id = $1",
                reservation["id"],
                datetime.now(UTC),
            )
            await _settle(conn, reservation["order_id"], "click", form["click_trans_id"], json.dumps(form))
        answer = {**base, "merchant_confirm_id": reservation["id"], "error": 0, "error_note": "Success"}
        return web.json_response(answer)

    app.cleanup_ctx.append(pool_ctx)
    app.router.add_post("/billing/payme", payme)
    app.router.add_post("/billing/click/prepare", click)
    app.router.add_post("/billing/click/complete", click)
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))  # type: ignore[arg-type,return-value]
    return app


if __name__ == "__main__":
    uvloop.install()
    web.run_app(make_app(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]), access_log=None, print=None)
