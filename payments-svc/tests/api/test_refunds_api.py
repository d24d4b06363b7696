"""``POST /v1/payments/{id}/refunds``, ``GET /v1/refunds/{id}``, ``GET /v1/payments/{id}/refunds``: a refund
is accepted PENDING with its amount reserved on the payment by the database, or refused cleanly with
nothing written."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from billing_contracts import parse_event
from billing_contracts.envelope import utcnow
from billing_runtime.bus import Message
from billing_runtime.errors import ProblemError
from payments_svc.db.models import IdempotencyKey, Payment
from sqlalchemy import select, update


async def _payment_row(engine, payment_id: str) -> Payment:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        row = (await conn.execute(select(Payment.__table__).where(Payment.id == payment_id))).mappings().one()
    return Payment(**{("metadata_" if k == "metadata" else k): v for k, v in row.items()})


async def _log(client, auth, prefix: str = "refund.") -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    body = await (await client.get("/v1/events?limit=100", headers=auth())).json()
    return [e for e in body["data"] if e["type"].startswith(prefix)]


class TestCreateRefund:
    async def test_a_refund_of_everything_left_by_default_matches_the_public_contract(
        self, client, auth, paid_payment, refund, providers, clean_db
    ) -> None:
        payment = await paid_payment()
        response = await refund(payment, {"reason": "requested_by_customer"})
        assert response.status == 201, await response.text()
        body = await response.json()
        assert body["id"].startswith("rfnd_")
        assert {k: body[k] for k in ("object", "payment_id", "amount", "currency", "status", "reason")} == {
            "object": "refund",
            "payment_id": payment["id"],
            "amount": 5000,
            "currency": "USD",
            "status": "PENDING",
            "reason": "requested_by_customer",
        }
        assert (body["provider"], body["provider_refund_id"], body["sequence"], body["livemode"]) == (
            "sandbox",
            None,
            1,
            False,
        )
        assert body["created_at"].endswith("Z") and body["updated_at"] == body["created_at"]
        assert "Idempotent-Replayed" not in response.headers
        # Only the provider's verdict moves money: the payment is as it was, its amount reserved.
        after = await (await client.get(f"/v1/payments/{payment['id']}", headers=auth())).json()
        assert (after["status"], after["amount_refunded"], after["sequence"]) == ("SUCCEEDED", 0, payment["sequence"])
        assert (await _payment_row(clean_db, payment["id"])).refund_reserved == 5000
        [check] = providers.refund_checks
        assert (check.payment_id, check.provider, check.amount, check.payment_amount) == (
            payment["id"],
            "sandbox",
            5000,
            5000,
        )
        assert (check.currency, check.amount_refunded) == ("USD", 0)
        assert check.paid_at.tzinfo is not None
        assert providers.modes[-1] is False

    async def test_refund_created_goes_to_the_log_and_the_bus_with_refund_and_payment(
        self, client, auth, paid_payment, refund, bus
    ) -> None:
        seen: list[Any] = []

        async def collect(message: Message) -> None:
            seen.append(parse_event(message.body))

        await bus.subscribe("test.refunds", ["payments.refund.*.v1"], collect)
        payment = await paid_payment()
        created = await (await refund(payment, {"amount": 1200})).json()
        [logged] = await _log(client, auth)
        assert logged["type"] == "refund.created"
        assert logged["data"]["refund"] == created
        assert logged["data"]["payment"]["id"] == payment["id"]
        assert logged["data"]["payment"]["sequence"] == payment["sequence"]
        for _ in range(250):
            if seen:
                break
            await asyncio.sleep(0.02)
        [event] = seen
        assert (event.event_type, event.event_id, event.correlation_id) == (
            "refund.created",
            logged["id"],
            payment["id"],
        )
        assert event.data.refund.amount == 1200

    async def test_partial_refunds_until_nothing_is_left_then_409(self, paid_payment, refund, count) -> None:
        payment = await paid_payment()
        assert (await refund(payment, {"amount": 2000})).status == 201
        assert (await refund(payment, {"amount": 3000})).status == 201
        for body in ({}, {"amount": 1}):
            response = await refund(payment, body)
            assert response.status == 409
            assert (await response.json())["code"] == "invalid_state"
        assert await count("refunds") == 2

    async def test_more_than_is_left_is_422_with_what_is_left_and_writes_nothing(
        self, paid_payment, refund, count
    ) -> None:
        payment = await paid_payment()
        assert (await refund(payment, {"amount": 2000})).status == 201
        response = await refund(payment, {"amount": 3001})
        assert response.status == 422
        problem = await response.json()
        assert problem["code"] == "amount_exceeds_refundable"
        assert problem["amount_refundable"] == 3000
        assert problem["errors"] == [{"field": "amount", "message": "must be at most 3000"}]
        assert await count("refunds") == 1
        assert await count("idempotency_keys") == 2  # the payment's and the accepted refund's only

    @pytest.mark.parametrize("status", ["CREATED", "PROVIDER_PENDING"])
    async def test_a_payment_never_captured_is_409(self, client, auth, new_payment, refund, count, status) -> None:
        payment = await new_payment()
        if status == "PROVIDER_PENDING":
            paying = await client.post(
                f"/v1/checkout/{payment['checkout_token']}/pay", json={"provider": "sandbox"}, headers=auth(None, None)
            )
            assert paying.status == 200
        response = await refund(payment)
        assert response.status == 409
        assert (await response.json())["code"] == "invalid_state"
        assert await count("refunds") == 0

    async def test_another_tenants_payment_is_404_and_untouched(
        self, client, auth, paid_payment, refund, count, providers
    ) -> None:
        theirs = await paid_payment("ten_b")
        response = await refund(theirs, {"amount": 100}, tenant="ten_a")
        assert response.status == 404
        assert (await response.json())["code"] == "not_found"
        assert await count("refunds") == 0
        assert providers.refund_checks == []
        mine = await (await refund(theirs, {"amount": 100}, tenant="ten_b")).json()
        assert (await client.get(f"/v1/refunds/{mine['id']}", headers=auth("ten_a"))).status == 404
        assert (await client.get(f"/v1/payments/{theirs['id']}/refunds", headers=auth("ten_a"))).status == 404

    @pytest.mark.parametrize(
        "body",
        [
            {"amount": 0},
            {"amount": -5},
            {"amount": "100"},
            {"amount": 10.5},
            {"amount": True},
            {"amount": 10**20},
            {"reason": ""},
            {"reason": 5},
            {"reason": "x\u0000y"},
            {"currency": "USD"},
        ],
    )
    async def test_invalid_body_is_422_and_not_stored(self, paid_payment, refund, count, body) -> None:
        payment = await paid_payment()
        keys = await count("idempotency_keys")
        response = await refund(payment, body)
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"
        assert await count("refunds") == 0
        assert await count("idempotency_keys") == keys

    async def test_missing_idempotency_key_is_400(self, client, auth, paid_payment, count) -> None:
        payment = await paid_payment()
        response = await client.post(f"/v1/payments/{payment['id']}/refunds", json={}, headers=auth())
        assert response.status == 400
        assert (await response.json())["code"] == "idempotency_key_missing"
        assert await count("refunds") == 0

    @pytest.mark.parametrize(
        "problem",
        [
            ProblemError(409, "refund_not_supported", "Payme refunds are made in Payme's cabinet."),
            ProblemError(
                422,
                "partial_refund_not_supported",
                "Click reverses whole payments only.",
                extensions={"provider": "click"},
            ),
        ],
    )
    async def test_the_providers_refusal_reaches_the_tenant_unchanged_and_nothing_is_written(
        self, paid_payment, refund, providers, count, problem
    ) -> None:
        payment = await paid_payment()
        providers.refund_refusal = problem
        response = await refund(payment, {"amount": 100}, key="k")
        assert response.status == problem.status
        body = await response.json()
        assert (body["code"], body["detail"]) == (problem.code, problem.detail)
        assert {k: body[k] for k in problem.extensions} == problem.extensions
        assert await count("refunds") == 0
        # The refusal is not stored: the same key works once the provider agrees.
        providers.refund_refusal = None
        assert (await refund(payment, {"amount": 100}, key="k")).status == 201

    async def test_providers_svc_down_is_503_and_nothing_is_written(
        self, paid_payment, refund, providers, count, clean_db
    ) -> None:
        payment = await paid_payment()
        providers.unavailable = True
        response = await refund(payment)
        assert response.status == 503
        assert response.headers["Retry-After"]
        assert (await response.json())["code"] == "provider_unavailable"
        assert await count("refunds") == 0
        assert (await _payment_row(clean_db, payment["id"])).refund_reserved == 0


class TestRefundIdempotency:
    async def test_a_retry_replays_the_first_answer_without_asking_again(
        self, paid_payment, refund, providers, count
    ) -> None:
        payment = await paid_payment()
        first = await refund(payment, {"amount": 700}, key="same")
        second = await refund(payment, {"amount": 700}, key="same")
        assert (first.status, second.status) == (201, 201)
        assert await first.json() == await second.json()
        assert second.headers["Idempotent-Replayed"] == "true"
        assert await count("refunds") == 1
        assert len(providers.refund_checks) == 1

    async def test_the_same_key_with_another_body_is_422(self, paid_payment, refund, count) -> None:
        payment = await paid_payment()
        assert (await refund(payment, {"amount": 700}, key="same")).status == 201
        response = await refund(payment, {"amount": 800}, key="same")
        assert response.status == 422
        assert (await response.json())["code"] == "idempotency_key_reused"
        assert await count("refunds") == 1

    async def test_concurrent_requests_with_one_key_make_one_refund(self, paid_payment, refund, count) -> None:
        payment = await paid_payment()
        responses = await asyncio.gather(*(refund(payment, {"amount": 100}, key="race") for _ in range(10)))
        assert {r.status for r in responses} <= {201, 409}
        ids = {(await r.json())["id"] for r in responses if r.status == 201}
        assert len(ids) == 1
        for r in responses:
            if r.status == 409:
                assert (await r.json())["code"] == "idempotency_key_in_use"
        assert await count("refunds") == 1

    async def test_a_request_that_outlived_its_claim_rolls_back_and_the_retry_is_the_one_refund(
        self, paid_payment, refund, providers, count, clean_db, monkeypatch
    ) -> None:
        payment = await paid_payment()
        ask = providers.check_refund
        retried: list[Any] = []
        calls: list[int] = []

        async def slow_check(*args: Any, **kwargs: Any) -> None:
            calls.append(1)
            if len(calls) == 1:
                # The first request is still waiting on providers-svc when its claim expires (60 s of
                # up to three 10 s calls), and the tenant's retry takes the key over and completes.
                async with clean_db.begin() as conn:
                    await conn.execute(
                        update(IdempotencyKey.__table__).values(locked_until=utcnow() - timedelta(seconds=1))
                    )
                retried.append(await refund(payment, {"amount": 700}, key="slow"))
            await ask(*args, **kwargs)

        monkeypatch.setattr(providers, "check_refund", slow_check)
        first = await refund(payment, {"amount": 700}, key="slow")
        [second] = retried
        assert second.status == 201, await second.text()
        assert first.status == 409, await first.text()
        assert (await first.json())["code"] == "idempotency_key_in_use"
        assert await count("refunds") == 1
        replay = await refund(payment, {"amount": 700}, key="slow")
        assert (replay.status, replay.headers["Idempotent-Replayed"]) == (201, "true")
        assert (await replay.json())["id"] == (await second.json())["id"]
        row = await _payment_row(clean_db, payment["id"])
        assert row.refund_reserved == 700  # one refund's reservation, not two


class TestTheDatabaseBound:
    async def test_twenty_concurrent_partial_refunds_never_exceed_the_payment(
        self, paid_payment, refund, count, clean_db
    ) -> None:
        # 20 refunds of 700 on 5000, each its own key: at most 7 fit (4900); the rest are refused cleanly.
        payment = await paid_payment()
        responses = await asyncio.gather(*(refund(payment, {"amount": 700}) for _ in range(20)))
        bodies = [await r.json() for r in responses]
        accepted = [b for r, b in zip(responses, bodies, strict=True) if r.status == 201]
        refused = [(r.status, b["code"]) for r, b in zip(responses, bodies, strict=True) if r.status != 201]
        assert sum(b["amount"] for b in accepted) <= payment["amount"]
        assert len(accepted) == 7
        assert set(refused) <= {(422, "amount_exceeds_refundable"), (409, "invalid_state")}
        assert len(refused) == 13
        row = await _payment_row(clean_db, payment["id"])
        assert row.refund_reserved == 4900
        assert await count("refunds") == 7

    async def test_concurrent_full_refunds_accept_exactly_one(self, paid_payment, refund, count) -> None:
        payment = await paid_payment()
        responses = await asyncio.gather(*(refund(payment) for _ in range(8)))
        statuses = sorted(r.status for r in responses)
        assert statuses == [201] + [409] * 7
        assert await count("refunds") == 1


class TestReadRefunds:
    async def test_get_returns_the_refund_and_unknown_or_malformed_ids_are_404(
        self, client, auth, paid_payment, refund
    ) -> None:
        payment = await paid_payment()
        created = await (await refund(payment, {"amount": 100})).json()
        got = await client.get(f"/v1/refunds/{created['id']}", headers=auth())
        assert (got.status, await got.json()) == (200, created)
        for bad in ("rfnd_0000000000000000000000000", "nope", "RFND_X"):
            response = await client.get(f"/v1/refunds/{bad}", headers=auth())
            assert response.status == 404
            assert (await response.json())["code"] == "not_found"

    async def test_a_payments_refunds_are_listed_newest_first_and_page_by_cursor(
        self, client, auth, paid_payment, refund
    ) -> None:
        payment = await paid_payment()
        ids = [(await (await refund(payment, {"amount": 100 + i})).json())["id"] for i in range(3)]
        other = await paid_payment()
        await refund(other, {"amount": 100})
        url = f"/v1/payments/{payment['id']}/refunds"
        page = await (await client.get(url, headers=auth())).json()
        assert [r["id"] for r in page["data"]] == ids[::-1]
        assert (page["object"], page["has_more"], page["limit"], page["offset"]) == ("list", False, 20, 0)
        first = await (await client.get(f"{url}?limit=2", headers=auth())).json()
        assert ([r["id"] for r in first["data"]], first["has_more"]) == (ids[:0:-1], True)
        rest = await (await client.get(f"{url}?limit=2&starting_after={ids[1]}", headers=auth())).json()
        assert ([r["id"] for r in rest["data"]], rest["has_more"]) == ([ids[0]], False)
        back = await (await client.get(f"{url}?limit=1&ending_before={ids[0]}", headers=auth())).json()
        assert ([r["id"] for r in back["data"]], back["has_more"]) == ([ids[1]], True)

    @pytest.mark.parametrize(
        "query", ["limit=0", "limit=101", "offset=-1", "starting_after=nope", "starting_after=rfnd_unknown1"]
    )
    async def test_bad_list_queries_are_422(self, client, auth, paid_payment, query) -> None:
        payment = await paid_payment()
        response = await client.get(f"/v1/payments/{payment['id']}/refunds?{query}", headers=auth())
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"
