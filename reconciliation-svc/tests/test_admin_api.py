"""The admin API (behind the gateway's internal token): list with filters and cursor paging, read with
the evidence and the history, resolve and ignore with their audit rows, 409 on an invalid transition,
and a janitor pass on demand."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from billing_contracts.events import PaymentSnapshot
from billing_runtime.db import make_sessionmaker
from billing_runtime.metrics import Metrics
from reconciliation_svc.db.discrepancies import record_discrepancy
from reconciliation_svc.db.models import outbox
from reconciliation_svc.db.projection import upsert_payment
from reconciliation_svc.domain.discrepancies import NewDiscrepancy, discrepancy_key
from reconciliation_svc.metrics import ReconciliationMetrics
from reconciliation_svc.services.gauges import refresh_discrepancy_gauge
from reconciliation_svc.services.uow import ReconUnitOfWork

from .support import payment_snapshot

BASE = "/admin/reconciliation"


@pytest.fixture
def record(clean_db):  # type: ignore[no-untyped-def]
    async def add(kind: str = "amount_mismatch", provider: str = "click", payment_id: str = "pay_1", **kw: Any) -> None:
        found = NewDiscrepancy(
            kind=kind,  # type: ignore[arg-type]
            provider=provider,
            dedupe_key=discrepancy_key(kind, provider, payment_id=payment_id),
            detail=f"{kind} on {payment_id}",
            payment_id=payment_id,
            tenant_id=kw.pop("tenant_id", "ten_a"),
            ours={"amount": 5000},
            theirs={"amount": 4000},
            **kw,
        )
        async with make_sessionmaker(clean_db)() as session:
            assert await record_discrepancy(session, found)
            await session.commit()

    return add


async def listed(client: Any, admin: dict[str, str], **query: str) -> dict[str, Any]:
    response = await client.get(f"{BASE}/discrepancies", params=query, headers=admin)
    assert response.status == 200, await response.text()
    return dict(await response.json())


class TestList:
    async def test_filters(self, client, admin, record) -> None:
        await record("amount_mismatch", "click", "pay_1")
        await record("status_mismatch", "click", "pay_2", tenant_id="ten_b")
        await record("amount_mismatch", "payme", "pay_3")
        assert len((await listed(client, admin))["data"]) == 3
        by_kind = await listed(client, admin, kind="amount_mismatch")
        assert {d["payment_id"] for d in by_kind["data"]} == {"pay_1", "pay_3"}
        by_provider = await listed(client, admin, provider="payme")
        assert [d["payment_id"] for d in by_provider["data"]] == ["pay_3"]
        by_tenant = await listed(client, admin, tenant_id="ten_b")
        assert [d["payment_id"] for d in by_tenant["data"]] == ["pay_2"]
        assert (await listed(client, admin, state="resolved"))["data"] == []
        combined = await listed(client, admin, kind="amount_mismatch", provider="click", state="open")
        assert [d["payment_id"] for d in combined["data"]] == ["pay_1"]

    async def test_cursor_paging_newest_first_sees_every_row_once(self, client, admin, record) -> None:
        for n in range(5):
            await record("duplicate", "click", f"pay_{n}")
        seen: list[str] = []
        query: dict[str, str] = {"limit": "2"}
        while True:
            page = await listed(client, admin, **query)
            seen += [d["payment_id"] for d in page["data"]]
            if not page["has_more"]:
                break
            query["starting_after"] = page["data"][-1]["id"]
        assert seen == [f"pay_{n}" for n in reversed(range(5))]

    @pytest.mark.parametrize(
        "query",
        [
            {"kind": "nope"},
            {"state": "closed"},
            {"limit": "0"},
            {"limit": "101"},
            {"limit": "x"},
            {"starting_after": "pay_1"},
            {"provider": "x" * 33},
        ],
    )
    async def test_bad_queries_are_422(self, client, admin, query: dict[str, str]) -> None:
        response = await client.get(f"{BASE}/discrepancies", params=query, headers=admin)
        assert response.status == 422
        assert (await response.json())["code"] == "validation_error"


class TestReadAndChange:
    async def _only_id(self, client: Any, admin: dict[str, str]) -> str:
        return str((await listed(client, admin))["data"][0]["id"])

    async def test_read_has_the_evidence_and_an_empty_history(self, client, admin, record) -> None:
        await record()
        discrepancy_id = await self._only_id(client, admin)
        response = await client.get(f"{BASE}/discrepancies/{discrepancy_id}", headers=admin)
        body = await response.json()
        assert (body["object"], body["state"], body["ours"], body["theirs"]) == (
            "discrepancy",
            "open",
            {"amount": 5000},
            {"amount": 4000},
        )
        assert body["changes"] == []

    async def test_resolve_records_who_why_and_when_and_a_second_change_is_409(self, client, admin, record) -> None:
        await record()
        discrepancy_id = await self._only_id(client, admin)
        response = await client.post(
            f"{BASE}/discrepancies/{discrepancy_id}/resolve", json={"reason": "refunded by hand"}, headers=admin
        )
        assert response.status == 200, await response.text()
        body = await response.json()
        assert (body["state"], body["state_reason"], body["changed_by"]) == (
            "resolved",
            "refunded by hand",
            "admin@gateway",
        )
        [change] = body["changes"]
        assert (change["from_state"], change["to_state"], change["reason"]) == ("open", "resolved", "refunded by hand")
        for action, payload in (("resolve", {}), ("ignore", {"reason": "x"})):
            again = await client.post(f"{BASE}/discrepancies/{discrepancy_id}/{action}", json=payload, headers=admin)
            assert again.status == 409
            assert (await again.json())["code"] == "invalid_state"
        read = await (await client.get(f"{BASE}/discrepancies/{discrepancy_id}", headers=admin)).json()
        assert len(read["changes"]) == 1
        assert (await listed(client, admin, state="resolved"))["data"][0]["id"] == discrepancy_id

    async def test_resolve_takes_no_body(self, client, admin, record) -> None:
        await record()
        discrepancy_id = await self._only_id(client, admin)
        response = await client.post(f"{BASE}/discrepancies/{discrepancy_id}/resolve", headers=admin)
        assert response.status == 200
        assert (await response.json())["state_reason"] is None

    async def test_ignore_needs_a_reason_and_changes_nothing_without_one(self, client, admin, record) -> None:
        await record()
        discrepancy_id = await self._only_id(client, admin)
        for payload in ({}, {"reason": ""}, {"reason": 5}, {"reason": "x", "extra": 1}):
            response = await client.post(f"{BASE}/discrepancies/{discrepancy_id}/ignore", json=payload, headers=admin)
            assert response.status == 422, payload
        not_json = await client.post(
            f"{BASE}/discrepancies/{discrepancy_id}/ignore",
            data="reason",
            headers={**admin, "Content-Type": "text/plain"},
        )
        assert not_json.status == 415
        assert (await listed(client, admin))["data"][0]["state"] == "open"
        ignored = await client.post(
            f"{BASE}/discrepancies/{discrepancy_id}/ignore", json={"reason": "test tenant noise"}, headers=admin
        )
        assert ignored.status == 200
        assert (await ignored.json())["changes"][0]["to_state"] == "ignored"

    async def test_two_resolves_at_once_one_wins_one_409(self, client, admin, record) -> None:
        await record()
        discrepancy_id = await self._only_id(client, admin)
        url = f"{BASE}/discrepancies/{discrepancy_id}/resolve"
        answers = await asyncio.gather(*(client.post(url, json={}, headers=admin) for _ in range(4)))
        assert sorted(a.status for a in answers) == [200, 409, 409, 409]
        read = await (await client.get(f"{BASE}/discrepancies/{discrepancy_id}", headers=admin)).json()
        assert len(read["changes"]) == 1

    @pytest.mark.parametrize("discrepancy_id", ["dsc_00000000000000000000000000", "nope", "dsc_%00"])
    async def test_unknown_ids_are_404(self, client, admin, discrepancy_id: str) -> None:
        for method, path in (("GET", ""), ("POST", "/resolve"), ("POST", "/ignore")):
            response = await client.request(
                method, f"{BASE}/discrepancies/{discrepancy_id}{path}", json={"reason": "r"}, headers=admin
            )
            assert response.status == 404
            assert (await response.json())["code"] == "not_found"


class TestGauge:
    async def test_the_gauge_follows_the_table(self, client, admin, record, clean_db) -> None:
        await record("amount_mismatch", "click", "pay_1")
        await record("amount_mismatch", "click", "pay_2")
        metrics = ReconciliationMetrics(Metrics("test"))
        seen: set[tuple[str, str, str]] = set()
        sessions = make_sessionmaker(clean_db)
        uow = lambda: ReconUnitOfWork(sessions, outbox)  # noqa: E731
        await refresh_discrepancy_gauge(uow, metrics, seen)
        assert metrics.discrepancies.labels("amount_mismatch", "click", "open")._value.get() == 2
        first = (await listed(client, admin))["data"][0]["id"]
        await client.post(f"{BASE}/discrepancies/{first}/resolve", headers=admin)
        second = (await listed(client, admin, state="open"))["data"][0]["id"]
        await client.post(f"{BASE}/discrepancies/{second}/resolve", headers=admin)
        await refresh_discrepancy_gauge(uow, metrics, seen)
        # Gone from "open" (back to 0, not left at its last value), 2 in "resolved".
        assert metrics.discrepancies.labels("amount_mismatch", "click", "open")._value.get() == 0
        assert metrics.discrepancies.labels("amount_mismatch", "click", "resolved")._value.get() == 2


class TestJanitorRun:
    async def test_one_pass_now_returns_its_counts(self, start_app, admin, fake_providers, clean_db) -> None:
        client = await start_app(providers_url=fake_providers.url)
        since = utcnow() - timedelta(minutes=10)
        snapshot = PaymentSnapshot(**payment_snapshot(status="PROVIDER_PENDING", provider="click", updated_at=since))
        async with make_sessionmaker(clean_db)() as session:
            await session.execute(upsert_payment(snapshot, "ten_a", timedelta(minutes=5)))
            await session.commit()
        fake_providers.answers["pay_1"] = (200, {"status": "succeeded", "published": True})
        response = await client.post(f"{BASE}/janitor/run", headers=admin)
        assert response.status == 200
        assert await response.json() == {
            "object": "janitor_run",
            "checked": 1,
            "healed": 1,
            "results": {"succeeded": 1},
        }
        again = await (await client.post(f"{BASE}/janitor/run", headers=admin)).json()
        assert again["checked"] == 0
        assert fake_providers.calls == [("payments", "pay_1")]
        metrics = await (await client.get("/metrics")).text()
        assert 'reconciliation_janitor_heals_total{kind="payment",provider="click"} 1.0' in metrics
