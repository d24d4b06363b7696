"""``GET /v1/stripe/...`` (a tenant's own projected objects) and ``GET /admin/stripe/...`` (the
operator's), as the gateway calls them: lists with filters and Stripe's cursors, single objects, and
never another tenant's object."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from .conftest import OTHER_ACCOUNT, T0, Project, charge, customer, event, invoice, product, refund, subscription

pytestmark = pytest.mark.postgres

A = "ten_aaaaaaaaaaaaaaaa"
B = "ten_bbbbbbbbbbbbbbbb"
Client = TestClient[web.Request, web.Application]
Headers = Callable[..., dict[str, str]]


@pytest.fixture
async def client(make_client: Any) -> Client:
    made: Client = await make_client()
    return made


async def ok(client: Client, path: str, headers: dict[str, str]) -> dict[str, Any]:
    resp = await client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def problem(client: Client, path: str, headers: dict[str, str], status: int, code: str) -> dict[str, Any]:
    resp = await client.get(path, headers=headers)
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/problem+json"
    body: dict[str, Any] = await resp.json()
    assert body["code"] == code
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [item["id"] for item in body["data"]]


@pytest.fixture
async def two_tenants(project: Project) -> None:
    """Tenant A's charge (its sole account), tenant B's (an account it shares with A, attributed by
    metadata), one of that shared account nobody can be told (the operator's), and A's live charge."""
    await project(event(charge("ch_A1", metadata={"tenant_id": A}), "charge.succeeded"))
    await project(
        event(
            charge("ch_B1", metadata={"tenant_id": B}), "charge.succeeded", account_id=OTHER_ACCOUNT, tenant_ids=(A, B)
        )
    )
    await project(event(charge("ch_N1"), "charge.succeeded", account_id=OTHER_ACCOUNT, tenant_ids=(A, B)))
    await project(event(charge("ch_L1"), "charge.succeeded", account_id="pac_stripe_live", livemode=True))


@pytest.mark.usefixtures("two_tenants")
class TestTenantSeesItsOwn:
    async def test_lists_hold_only_the_tenants_objects_of_its_mode(
        self, client: Client, internal_headers: Headers
    ) -> None:
        assert ids(await ok(client, "/v1/stripe/charges", internal_headers(A))) == ["ch_A1"]
        assert ids(await ok(client, "/v1/stripe/charges", internal_headers(B))) == ["ch_B1"]
        assert ids(await ok(client, "/v1/stripe/charges", internal_headers(A, livemode=True))) == ["ch_L1"]

    async def test_another_tenants_object_is_not_found(self, client: Client, internal_headers: Headers) -> None:
        await problem(client, "/v1/stripe/charges/ch_B1", internal_headers(A), 404, "not_found")
        await problem(client, "/v1/stripe/charges/ch_N1", internal_headers(A), 404, "not_found")
        await problem(client, "/v1/stripe/charges/ch_A1", internal_headers(B), 404, "not_found")
        await problem(client, "/v1/stripe/charges/ch_L1", internal_headers(A), 404, "not_found")
        assert (await ok(client, "/v1/stripe/charges/ch_B1", internal_headers(B)))["id"] == "ch_B1"

    async def test_another_tenants_object_is_no_cursor(self, client: Client, internal_headers: Headers) -> None:
        body = await problem(
            client, "/v1/stripe/charges?starting_after=ch_B1", internal_headers(A), 422, "validation_error"
        )
        assert body["errors"] == [{"field": "starting_after", "message": "no such object"}]

    async def test_a_kind_is_not_another(self, client: Client, internal_headers: Headers) -> None:
        await problem(client, "/v1/stripe/refunds/ch_A1", internal_headers(A), 404, "not_found")

    async def test_a_tenant_is_required(self, client: Client, internal_headers: Headers) -> None:
        await problem(client, "/v1/stripe/charges", internal_headers(None, issuer="gateway"), 401, "unauthorized")
        assert (await client.get("/v1/stripe/charges")).status == 401


class TestObject:
    async def test_the_representation(self, client: Client, project: Project, internal_headers: Headers) -> None:
        await project(event(subscription(metadata={"plan": "pro"}), "customer.subscription.created"))
        await project(event(invoice(), "invoice.created"))
        verified = event(
            charge(invoice="in_1QxInvoice0001", amount_refunded=1000),
            "charge.refunded",
            created=T0 + 60,
            stripe_account="acct_1QxConnected",
        )
        await project(verified)
        body = await ok(client, "/v1/stripe/charges/ch_3QxCharge0001", internal_headers(A))
        assert {k: v for k, v in body.items() if k not in ("updated_at", "stripe_object")} == {
            "id": "ch_3QxCharge0001",
            "object": "charge",
            "account": "pac_stripe_a",
            "stripe_account": "acct_1QxConnected",
            "livemode": False,
            "deleted": False,
            "created": "2025-12-05T12:00:00Z",
            "customer": "cus_QxCustomer01",
            "status": "succeeded",
            "amount": 5000,
            "currency": "USD",
            "metadata": {},
            "subscription_metadata": {"plan": "pro"},
            "sequence": 1,
            "stripe_event_id": verified.event_id,
            "stripe_event_type": "charge.refunded",
        }
        assert body["stripe_object"]["amount_refunded"] == 1000
        assert "tenant_id" not in body

    @pytest.mark.parametrize(
        ("path", "obj", "type_"),
        [
            ("refunds", refund(), "refund.created"),
            ("customers", customer(), "customer.created"),
            ("subscriptions", subscription(), "customer.subscription.created"),
            ("invoices", invoice(), "invoice.finalized"),
            ("products", product(), "product.created"),
        ],
    )
    async def test_every_kind_is_listed_and_read(
        self, client: Client, project: Project, internal_headers: Headers, path: str, obj: dict[str, Any], type_: str
    ) -> None:
        await project(event(obj, type_))
        assert ids(await ok(client, f"/v1/stripe/{path}", internal_headers(A))) == [obj["id"]]
        assert (await ok(client, f"/v1/stripe/{path}/{obj['id']}", internal_headers(A)))["object"] == obj["object"]

    async def test_a_deleted_object_is_still_read_and_says_so(
        self, client: Client, project: Project, internal_headers: Headers
    ) -> None:
        await project(event(customer(), "customer.deleted"))
        assert (await ok(client, "/v1/stripe/customers/cus_QxCustomer01", internal_headers(A)))["deleted"] is True

    @pytest.mark.parametrize(
        "path",
        [
            "/v1/stripe",
            "/v1/stripe/",
            "/v1/stripe/payments",
            "/v1/stripe/payments/pay_1",
            "/v1/stripe/charges/ch%20x",
            "/v1/stripe/charges/ch_none",
            "/v1/stripe/charges/ch_1/refunds",
        ],
    )
    async def test_unknown_is_404(self, client: Client, internal_headers: Headers, path: str) -> None:
        await problem(client, path, internal_headers(A), 404, "not_found")


class TestListing:
    @pytest.fixture
    async def five(self, project: Project) -> None:
        """ch_0 .. ch_4, one a minute apart (ch_4 newest); ch_1 and ch_3 are another customer's and
        pending."""
        for n in range(5):
            other = n % 2 == 1
            obj = charge(
                f"ch_{n}",
                created=T0 + 60 * n,
                customer="cus_Other" if other else "cus_QxCustomer01",
                status="pending" if other else "succeeded",
            )
            await project(event(obj, "charge.pending" if other else "charge.succeeded", created=T0 + 60 * n))

    @pytest.mark.usefixtures("five")
    async def test_newest_first_with_cursors_both_ways(self, client: Client, internal_headers: Headers) -> None:
        first = await ok(client, "/v1/stripe/charges?limit=2", internal_headers(A))
        assert (ids(first), first["has_more"], first["limit"], first["object"]) == (["ch_4", "ch_3"], True, 2, "list")
        second = await ok(client, "/v1/stripe/charges?limit=2&starting_after=ch_3", internal_headers(A))
        assert (ids(second), second["has_more"]) == (["ch_2", "ch_1"], True)
        last = await ok(client, "/v1/stripe/charges?limit=2&starting_after=ch_1", internal_headers(A))
        assert (ids(last), last["has_more"]) == (["ch_0"], False)
        back = await ok(client, "/v1/stripe/charges?limit=2&ending_before=ch_1", internal_headers(A))
        assert (ids(back), back["has_more"]) == (["ch_3", "ch_2"], True)
        top = await ok(client, "/v1/stripe/charges?limit=2&ending_before=ch_3", internal_headers(A))
        assert (ids(top), top["has_more"]) == (["ch_4"], False)

    @pytest.mark.usefixtures("five")
    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("customer=cus_Other", ["ch_3", "ch_1"]),
            ("status=succeeded", ["ch_4", "ch_2", "ch_0"]),
            (f"created[gte]={T0 + 60}&created[lte]={T0 + 180}", ["ch_3", "ch_2", "ch_1"]),
            (f"created[gt]={T0 + 60}&created[lt]={T0 + 180}", ["ch_2"]),
            (f"created={T0 + 120}", ["ch_2"]),
            (f"customer=cus_QxCustomer01&status=succeeded&created[lt]={T0 + 240}", ["ch_2", "ch_0"]),
            ("status=refunded", []),
        ],
    )
    async def test_filters(self, client: Client, internal_headers: Headers, query: str, expected: list[str]) -> None:
        assert ids(await ok(client, f"/v1/stripe/charges?{query}", internal_headers(A))) == expected

    async def test_one_second_pages_by_id(self, client: Client, project: Project, internal_headers: Headers) -> None:
        for stripe_id in ("ch_b", "ch_a", "ch_c"):
            await project(event(charge(stripe_id), "charge.succeeded"))
        first = await ok(client, "/v1/stripe/charges?limit=2", internal_headers(A))
        rest = await ok(client, "/v1/stripe/charges?limit=2&starting_after=ch_b", internal_headers(A))
        assert (ids(first), ids(rest)) == (["ch_c", "ch_b"], ["ch_a"])

    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("customer=cus%20x", "customer"),
            ("status=SUCCEEDED", "status"),
            ("created[gte]=yesterday", "created[gte]"),
            ("created[gte]=-1", "created[gte]"),
            ("created[gte]=99999999999999", "created[gte]"),
            ("created[since]=1", "created[since]"),
            ("created=1.5", "created"),
            ("starting_after=ch%00x", "starting_after"),
            ("starting_after=ch_nothing", "starting_after"),
        ],
    )
    async def test_a_bad_filter_is_422_naming_it(
        self, client: Client, internal_headers: Headers, query: str, field: str
    ) -> None:
        body = await problem(client, f"/v1/stripe/charges?{query}", internal_headers(A), 422, "validation_error")
        assert body["errors"][0]["field"] == field

    async def test_both_cursors_are_refused(self, client: Client, internal_headers: Headers) -> None:
        path = "/v1/stripe/charges?starting_after=ch_1&ending_before=ch_2"
        await problem(client, path, internal_headers(A), 422, "validation_error")


@pytest.mark.usefixtures("two_tenants")
class TestOperator:
    @staticmethod
    def admin(headers: Headers) -> dict[str, str]:
        return headers(None, issuer="gateway")

    async def test_sees_every_account_and_tenant(self, client: Client, internal_headers: Headers) -> None:
        body = await ok(client, "/admin/stripe/charges", self.admin(internal_headers))
        assert sorted(ids(body)) == ["ch_A1", "ch_B1", "ch_L1", "ch_N1"]
        tenants = {item["id"]: item["tenant_id"] for item in body["data"]}
        assert tenants == {"ch_A1": A, "ch_B1": B, "ch_N1": None, "ch_L1": A}
        got = await ok(client, "/admin/stripe/charges/ch_N1", self.admin(internal_headers))
        assert (got["tenant_id"], got["account"]) == (None, OTHER_ACCOUNT)

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            (f"tenant={B}", ["ch_B1"]),
            (f"account={OTHER_ACCOUNT}", ["ch_B1", "ch_N1"]),
            (f"account={OTHER_ACCOUNT}&tenant={A}", []),
        ],
    )
    async def test_filters(self, client: Client, internal_headers: Headers, query: str, expected: list[str]) -> None:
        body = await ok(client, f"/admin/stripe/charges?{query}", self.admin(internal_headers))
        assert sorted(ids(body)) == expected

    @pytest.mark.parametrize("query", ["tenant=bob", "account=acct_1Qx"])
    async def test_a_bad_filter_is_422(self, client: Client, internal_headers: Headers, query: str) -> None:
        await problem(client, f"/admin/stripe/charges?{query}", self.admin(internal_headers), 422, "validation_error")

    async def test_only_the_gateway_without_a_tenant(self, client: Client, internal_headers: Headers) -> None:
        await problem(client, "/admin/stripe/charges", internal_headers(None, issuer="payments"), 403, "forbidden")
        await problem(client, "/admin/stripe/charges", internal_headers(A, issuer="gateway"), 403, "forbidden")
        await problem(client, "/admin/stripe/charges/ch_A1", internal_headers(A, issuer="gateway"), 403, "forbidden")
