"""``/admin/reconciliation/runs``: a run queued through the API is done by the worker, which reports
its progress and summary; bad input is a 422 naming the field and queues nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from .conftest import PROVIDERS_SECRET, FakeStatements, Seeder, line

RUNS = "/admin/reconciliation/runs"


@pytest.fixture
async def api(start_app, fake_statements: tuple[FakeStatements, str]):  # type: ignore[no-untyped-def]
    _fake, url = fake_statements
    return await start_app(providers_url=url, providers_internal_secret=PROVIDERS_SECRET, runs_poll_interval=0.05)


async def _until_done(api, admin, run_id: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    deadline = datetime.now(UTC) + timedelta(seconds=15)
    while True:
        body = await (await api.get(f"{RUNS}/{run_id}", headers=admin)).json()
        if body["state"] in ("succeeded", "failed"):
            return body  # type: ignore[no-any-return]
        assert datetime.now(UTC) < deadline, body
        await asyncio.sleep(0.05)


class TestCreateRun:
    async def test_a_queued_run_is_done_by_the_worker_with_progress_and_summary(
        self, api, admin, seed: Seeder, fake_statements: tuple[FakeStatements, str]
    ) -> None:  # type: ignore[no-untyped-def]
        fake, _url = fake_statements
        await seed.payment("pay_ok", reference="1001")
        await seed.payment("pay_gone", reference="1002")
        await seed.payment("pay_amount", reference="1003")
        fake.records = [
            line("1001", payment_id="pay_ok"),
            line("1003", payment_id="pay_amount", amount=1),
            line("2001", payment_id="pay_unknown"),
        ]
        response = await api.post(
            RUNS,
            json={"account_id": "pac_a", "from": "2026-12-04", "to": "2026-12-04", "started_by": "ops@example"},
            headers=admin,
        )
        assert response.status == 202
        queued = await response.json()
        assert queued["object"] == "reconciliation_run"
        assert queued["id"].startswith("rrun_")
        assert queued["state"] in ("queued", "running", "succeeded")
        assert (queued["account_id"], queued["from"], queued["to"]) == ("pac_a", "2026-12-04", "2026-12-04")
        assert queued["trigger"] == "admin" and queued["started_by"] == "ops@example"
        assert queued["provider"] == "click"
        done = await _until_done(api, admin, queued["id"])
        assert done["state"] == "succeeded", done["error"]
        assert done["progress"] == {"lines_read": 3, "matched": 4, "discrepancies_found": 3}
        assert done["summary"] == {
            "amount_mismatch": 1,
            "currency_mismatch": 0,
            "duplicate": 0,
            "missing_at_provider": 1,
            "missing_ours": 1,
            "status_mismatch": 0,
        }
        assert done["error"] is None
        assert done["started_at"] is not None and done["finished_at"] is not None
        # The run's metrics are counted by the worker just after it committed the run's end, which the
        # API may show first: wait for them.
        for _ in range(100):
            metrics = await (await api.get("/metrics", headers=admin)).text()
            if 'reconciliation_runs_total{provider="click",state="succeeded"} 1.0' in metrics:
                break
            await asyncio.sleep(0.05)
        assert 'reconciliation_discrepancies_found_total{kind="amount_mismatch",provider="click"} 1.0' in metrics
        assert 'reconciliation_runs_total{provider="click",state="succeeded"} 1.0' in metrics
        assert 'reconciliation_lines_matched_total{provider="click"} 4.0' in metrics

    async def test_a_run_that_cannot_read_the_statement_fails_with_its_reason(
        self, api, admin, seed: Seeder, fake_statements: tuple[FakeStatements, str]
    ) -> None:  # type: ignore[no-untyped-def]
        fake, _url = fake_statements
        fake.mode = "truncated"
        fake.records = [line("1001", payment_id="pay_ok")]
        response = await api.post(
            RUNS, json={"account_id": "pac_a", "from": "2026-12-04", "to": "2026-12-04"}, headers=admin
        )
        done = await _until_done(api, admin, (await response.json())["id"])
        assert done["state"] == "failed"
        assert done["error"]["code"] == "statement_incomplete"
        assert await seed.discrepancies() == []

    async def test_asking_twice_while_queued_is_one_run(self, start_app, admin, count) -> None:  # type: ignore[no-untyped-def]
        api_only = await start_app(roles=("api",))
        body = {"account_id": "pac_a", "from": "2026-12-01", "to": "2026-12-03"}
        first = await (await api_only.post(RUNS, json=body, headers=admin)).json()
        second = await (await api_only.post(RUNS, json=body, headers=admin)).json()
        assert first["id"] == second["id"]
        assert first["state"] == "queued"
        assert await count("reconciliation_runs") == 1

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"from": "2026-12-04", "to": "2026-12-04"}, "account_id"),
            ({"account_id": "pac a", "from": "2026-12-04", "to": "2026-12-04"}, "account_id"),
            ({"account_id": "pac_a", "from": "2026-12-04T00:00:00Z", "to": "2026-12-04"}, "from"),
            ({"account_id": "pac_a", "from": "2026-13-01", "to": "2026-12-04"}, "from"),
            ({"account_id": "pac_a", "from": "2026-12-05", "to": "2026-12-04"}, "to"),
            ({"account_id": "pac_a", "from": "2026-01-01", "to": "2026-12-04"}, "to"),
            ({"account_id": "pac_a", "from": "2026-12-04", "to": "2999-01-01"}, "to"),
            (
                {"account_id": "pac_a", "from": "2026-12-04", "to": "2026-12-04", "statement_id": "stm_nope"},
                "statement_id",
            ),
            ({"account_id": "pac_a", "from": "2026-12-04", "to": "2026-12-04", "extra": 1}, "extra"),
        ],
    )
    async def test_bad_input_is_a_422_naming_the_field_and_queues_nothing(
        self,
        api,
        admin,
        count,
        body: dict,
        field: str,  # type: ignore[type-arg]
    ) -> None:  # type: ignore[no-untyped-def]
        response = await api.post(RUNS, json=body, headers=admin)
        assert response.status == 422
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert problem["code"] == "validation_error"
        assert [e["field"] for e in problem["errors"]] == [field]
        assert await count("reconciliation_runs") == 0

    async def test_not_json_is_a_400_and_no_token_a_401(self, api, admin) -> None:  # type: ignore[no-untyped-def]
        response = await api.post(RUNS, data=b"{", headers={**admin, "Content-Type": "application/json"})
        assert response.status == 400
        assert (await response.json())["code"] == "invalid_json"
        response = await api.post(RUNS, json={"account_id": "pac_a", "from": "2026-12-04", "to": "2026-12-04"})
        assert response.status == 401


class TestListRuns:
    async def test_lists_newest_first_filtered_by_state_and_account(self, start_app, admin) -> None:  # type: ignore[no-untyped-def]
        api_only = await start_app(roles=("api",))
        ids = []
        for account, day in [("pac_a", "2026-12-01"), ("pac_b", "2026-12-01"), ("pac_a", "2026-12-02")]:
            response = await api_only.post(RUNS, json={"account_id": account, "from": day, "to": day}, headers=admin)
            ids.append((await response.json())["id"])
        body = await (await api_only.get(RUNS, headers=admin)).json()
        assert [r["id"] for r in body["data"]] == ids[::-1]
        assert body["has_more"] is False
        body = await (await api_only.get(f"{RUNS}?account_id=pac_a&state=queued&limit=1", headers=admin)).json()
        assert [r["id"] for r in body["data"]] == [ids[2]]
        assert body["has_more"] is True
        body = await (await api_only.get(f"{RUNS}?state=succeeded", headers=admin)).json()
        assert body["data"] == []

    async def test_bad_filters_are_422_and_unknown_ids_404(self, start_app, admin) -> None:  # type: ignore[no-untyped-def]
        api_only = await start_app(roles=("api",))
        response = await api_only.get(f"{RUNS}?state=done", headers=admin)
        assert response.status == 422 and (await response.json())["errors"][0]["field"] == "state"
        response = await api_only.get(f"{RUNS}?limit=0", headers=admin)
        assert response.status == 422
        for run_id in ("rrun_0000000000000000000000000a", "not-an-id"):
            response = await api_only.get(f"{RUNS}/{run_id}", headers=admin)
            assert response.status == 404
            assert (await response.json())["code"] == "not_found"
