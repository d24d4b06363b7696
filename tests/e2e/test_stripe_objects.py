"""The Stripe projections read through the gateway (distributed mode, real processes): tenant A never
sees tenant B's objects, in a list or by id, and the operator sees both. The objects are projected by
the follower itself on providers-svc's database, as the Stripe webhook's unit of work runs it (the
webhook lands with the Stripe adapter)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from billing_runtime.db import create_engine, make_sessionmaker
from billing_runtime.testing import PG_DSN
from providers_svc.db.models import outbox
from providers_svc.domain.stripe_events import VerifiedStripeEvent
from providers_svc.services.stripe_projections import project_event
from providers_svc.services.uow import ProvidersUnitOfWork

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _tenant_of(token: str) -> str:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


def _charge_event(charge_id: str, account_id: str, tenant_id: str) -> VerifiedStripeEvent:
    obj = {
        "id": charge_id,
        "object": "charge",
        "amount": 5000,
        "amount_captured": 5000,
        "amount_refunded": 0,
        "currency": "usd",
        "customer": "cus_QxE2e",
        "created": 1_764_936_000,
        "metadata": {"tenant_id": tenant_id},
        "status": "succeeded",
    }
    event_id = f"evt_{charge_id}"
    return VerifiedStripeEvent(
        event_id=event_id,
        type="charge.succeeded",
        created=datetime.fromtimestamp(1_764_936_000, UTC),
        livemode=False,
        account_id=account_id,
        stripe_account=None,
        tenant_ids=(tenant_id,),
        object=obj,
        previous_attributes=None,
        raw={"id": event_id, "object": "event", "type": "charge.succeeded", "data": {"object": obj}},
    )


@pytest.mark.parametrize("platform", ["distributed"], indirect=True)
async def test_a_tenant_reads_only_its_own_stripe_objects(
    platform: Any, new_tenant: Any, http: aiohttp.ClientSession
) -> None:
    a, b = await new_tenant(), await new_tenant()
    tenant_a, tenant_b = _tenant_of(a.token), _tenant_of(b.token)
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    engine = create_engine(f"{base}/{platform.databases['providers']}", pool_size=2)
    try:
        sessionmaker = make_sessionmaker(engine)
        for charge_id, account_id, tenant_id in (
            ("ch_e2eA", "pac_e2e_a", tenant_a),
            ("ch_e2eB", "pac_e2e_b", tenant_b),
        ):
            async with ProvidersUnitOfWork(sessionmaker, outbox) as uow:
                await project_event(uow, _charge_event(charge_id, account_id, tenant_id))
                await uow.commit()
    finally:
        await engine.dispose()

    async def get(path: str, headers: dict[str, str]) -> tuple[int, Any]:
        async with http.get(platform.gateway_url + path, headers=headers) as r:
            return r.status, await r.json(content_type=None)

    status, body = await get("/v1/stripe/charges", a.auth)
    assert (status, [c["id"] for c in body["data"]]) == (200, ["ch_e2eA"])
    status, body = await get("/v1/stripe/charges/ch_e2eA", a.auth)
    assert (status, body["account"], body["currency"]) == (200, "pac_e2e_a", "USD")
    status, body = await get("/v1/stripe/charges/ch_e2eB", a.auth)
    assert (status, body["code"]) == (404, "not_found")
    status, body = await get("/v1/stripe/charges?starting_after=ch_e2eB", a.auth)
    assert (status, body["code"]) == (422, "validation_error")
    status, body = await get("/v1/stripe/charges", b.auth)
    assert [c["id"] for c in body["data"]] == ["ch_e2eB"]

    admin = {"Authorization": f"Bearer {platform.admin_token}"}
    status, body = await get("/admin/stripe/charges?account=pac_e2e_b", admin)
    assert (status, [(c["id"], c["tenant_id"]) for c in body["data"]]) == (200, [("ch_e2eB", tenant_b)])
    status, body = await get("/admin/stripe/charges", a.auth)
    assert status == 403
