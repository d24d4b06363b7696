"""``POST /admin/reconciliation/statements``: a settlement file imported whole, or (any line malformed)
refused with every bad line and nothing applied (REC-20); the same file twice is one statement; a run
compares the imported statement with our records."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from .conftest import Seeder

STATEMENTS = "/admin/reconciliation/statements"
CLICK_HEADER = "click_trans_id,merchant_trans_id,amount,status,payment_date\n"
GOOD = CLICK_HEADER + (
    "9001,pay_ok,5000.00,success,2026-12-04 15:00:00\n"
    "9002,pay_amount,4000.00,success,2026-12-04 16:00:00\n"
    "9003,pay_unknown,100.00,success,2026-12-04 17:00:00\n"
    "9004,pay_cancelled,100.00,cancelled,2026-12-04 17:00:00\n"
)


def form(
    text: str | bytes, *, provider: str = "click", account_id: str = "pac_a", filename: str = "click.csv"
) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("provider", provider)
    data.add_field("account_id", account_id)
    data.add_field("file", text.encode() if isinstance(text, str) else text, filename=filename, content_type="text/csv")
    return data


@pytest.fixture
async def api(start_app):  # type: ignore[no-untyped-def]
    return await start_app(roles=("api",), statement_max_bytes=4096)


class TestImportStatement:
    async def test_a_good_file_is_imported_once(self, api, admin, count) -> None:  # type: ignore[no-untyped-def]
        response = await api.post(STATEMENTS, data=form(GOOD), headers=admin)
        assert response.status == 201, await response.text()
        statement = await response.json()
        assert statement["id"].startswith("stm_")
        assert (statement["provider"], statement["account_id"], statement["origin"]) == ("click", "pac_a", "csv")
        assert (statement["records"], statement["skipped"], statement["filename"]) == (4, 0, "click.csv")
        assert statement["first_at"] == "2026-12-04T10:00:00Z"
        assert statement["last_at"] == "2026-12-04T12:00:00Z"
        assert await count("statement_lines") == 4
        again = await api.post(STATEMENTS, data=form(GOOD, filename="again.csv"), headers=admin)
        assert again.status == 200
        assert (await again.json())["id"] == statement["id"]
        assert await count("statements") == 1 and await count("statement_lines") == 4
        got = await api.get(f"{STATEMENTS}/{statement['id']}", headers=admin)
        assert got.status == 200 and (await got.json())["records"] == 4

    async def test_a_malformed_file_is_refused_with_every_bad_line_and_nothing_applied(self, api, admin, count) -> None:  # type: ignore[no-untyped-def]
        text = GOOD + "9005,pay_x,12.345,success,2026-12-04 17:00:00\n9006,pay_y,1.00,paid,2026-12-04 17:00:00\n"
        response = await api.post(STATEMENTS, data=form(text), headers=admin)
        assert response.status == 422
        assert response.content_type == "application/problem+json"
        problem = await response.json()
        assert problem["code"] == "invalid_statement"
        assert problem["detail"].startswith("2 malformed lines, nothing was imported; line 6, column amount:")
        assert problem["errors"] == [
            {"field": "line 6 (amount)", "message": "'12.345' has more decimals than UZS has (2)"},
            {
                "field": "line 7 (status)",
                "message": "'paid' is not one of cancelled, error, pending, reversed, success",
            },
        ]
        assert await count("statements") == 0
        assert await count("statement_lines") == 0

    async def test_a_bad_header_is_line_1(self, api, admin, count) -> None:  # type: ignore[no-untyped-def]
        response = await api.post(STATEMENTS, data=form("id,sum\n1,2\n"), headers=admin)
        problem = await response.json()
        assert response.status == 422 and problem["errors"][0]["field"] == "line 1"
        assert await count("statements") == 0

    @pytest.mark.parametrize(
        ("fields", "field"),
        [
            ({"provider": "paypal"}, "provider"),
            ({"account_id": "pac a/../x"}, "account_id"),
        ],
    )
    async def test_bad_fields_are_422(self, api, admin, count, fields: dict[str, str], field: str) -> None:  # type: ignore[no-untyped-def]
        response = await api.post(STATEMENTS, data=form(GOOD, **fields), headers=admin)
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == field
        assert await count("statements") == 0

    async def test_no_file_an_unknown_field_or_json_are_refused(self, api, admin) -> None:  # type: ignore[no-untyped-def]
        data = aiohttp.FormData(default_to_multipart=True)
        data.add_field("provider", "click")
        data.add_field("account_id", "pac_a")
        data.add_field("nonsense", "1")
        response = await api.post(STATEMENTS, data=data, headers=admin)
        assert response.status == 422 and (await response.json())["errors"][0]["field"] == "nonsense"
        data = aiohttp.FormData(default_to_multipart=True)
        data.add_field("provider", "click")
        data.add_field("account_id", "pac_a")
        response = await api.post(STATEMENTS, data=data, headers=admin)
        assert response.status == 422 and (await response.json())["errors"][0]["field"] == "file"
        response = await api.post(STATEMENTS, json={"provider": "click"}, headers=admin)
        assert response.status == 415

    @pytest.mark.parametrize(
        ("content_type", "body"),
        [
            ("multipart/form-data", b"no boundary in the header"),
            ("multipart/form-data; boundary=abc", b"garbage without an opening boundary"),
            (
                "multipart/form-data; boundary=abc",
                b'--abc\r\nContent-Disposition: form-data; name="provider"\r\n\r\ncli',
            ),
        ],
        ids=["no-boundary", "no-opening-boundary", "part-cut-short"],
    )
    async def test_a_malformed_multipart_body_is_400_and_nothing_applied(  # type: ignore[no-untyped-def]
        self, api, admin, count, content_type: str, body: bytes
    ) -> None:
        response = await api.post(STATEMENTS, data=body, headers={**admin, "Content-Type": content_type})
        assert response.status == 400, await response.text()
        assert (await response.json())["code"] == "malformed_multipart"
        assert await count("statements") == 0

    async def test_a_file_over_the_limit_is_413_and_nothing_applied(self, api, admin, count) -> None:  # type: ignore[no-untyped-def]
        big = GOOD + "9001,pay_ok,5000.00,success,2026-12-04 15:00:00\n" * 200
        response = await api.post(STATEMENTS, data=form(big), headers=admin)
        assert response.status == 413
        assert (await response.json())["code"] == "statement_too_large"
        assert await count("statements") == 0

    async def test_a_file_of_another_providers_account_is_refused(self, api, admin, seed: Seeder, count) -> None:  # type: ignore[no-untyped-def]
        await seed.payment("pay_p", provider="payme", account="pac_payme")
        response = await api.post(STATEMENTS, data=form(GOOD, account_id="pac_payme"), headers=admin)
        assert response.status == 422
        assert (await response.json())["code"] == "provider_mismatch"
        assert await count("statements") == 0

    async def test_a_file_far_over_the_json_body_limit_is_taken(self, start_app, admin, count) -> None:  # type: ignore[no-untyped-def]
        api = await start_app(roles=("api",))
        rows = "".join(f"{10_000 + i},pay_{i:06d},5000.00,success,2026-12-04 15:00:00\n" for i in range(6000))
        assert len(rows) > 4 * 64 * 1024
        response = await api.post(STATEMENTS, data=form(CLICK_HEADER + rows), headers=admin)
        assert response.status == 201, await response.text()
        assert (await response.json())["records"] == 6000
        assert await count("statement_lines") == 6000

    async def test_unknown_statement_is_404(self, api, admin) -> None:  # type: ignore[no-untyped-def]
        response = await api.get(f"{STATEMENTS}/stm_0000000000000000000000000a", headers=admin)
        assert response.status == 404


class TestRunOnAnImportedStatement:
    async def test_the_run_compares_the_file_with_our_records(self, start_app, admin, seed: Seeder) -> None:  # type: ignore[no-untyped-def]
        api = await start_app(runs_poll_interval=0.05)
        await seed.payment("pay_ok", amount=500_000)
        await seed.payment("pay_amount", amount=500_000)
        statement = await (await api.post(STATEMENTS, data=form(GOOD), headers=admin)).json()
        response = await api.post(
            "/admin/reconciliation/runs",
            json={"account_id": "pac_a", "from": "2026-12-04", "to": "2026-12-04", "statement_id": statement["id"]},
            headers=admin,
        )
        assert response.status == 202
        run = await response.json()
        assert run["source"] == "statement" and run["statement_id"] == statement["id"]
        for _ in range(300):
            run = await (await api.get(f"/admin/reconciliation/runs/{run['id']}", headers=admin)).json()
            if run["state"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.05)
        assert run["state"] == "succeeded", run
        assert {(d.kind, d.payment_id) for d in await seed.discrepancies()} == {
            ("amount_mismatch", "pay_amount"),
            ("missing_ours", "pay_unknown"),
        }
        # An imported file's lines are kept (it may be compared again).
        assert run["progress"]["lines_read"] == 4

    async def test_a_statement_of_another_account_is_refused(self, start_app, admin) -> None:  # type: ignore[no-untyped-def]
        api = await start_app(roles=("api",))
        statement = await (await api.post(STATEMENTS, data=form(GOOD), headers=admin)).json()
        response = await api.post(
            "/admin/reconciliation/runs",
            json={"account_id": "pac_b", "from": "2026-12-04", "to": "2026-12-04", "statement_id": statement["id"]},
            headers=admin,
        )
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == "statement_id"
