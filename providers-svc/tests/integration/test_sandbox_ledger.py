"""The sandbox bank's read of a transaction with its charge (``SandboxChargeRepository.with_transaction``):
what the payer page shows and decides on, in one round trip."""

from __future__ import annotations

from typing import Any

from providers_svc.domain.transactions import TransactionStatus
from providers_svc.keys import uow_factory_key


async def _read(client: Any, txn_id: str) -> tuple[Any, Any]:
    async with client.app[uow_factory_key]() as uow:
        return await uow.sandbox_charges.with_transaction(txn_id)  # type: ignore[no-any-return]


class TestTransactionWithCharge:
    async def test_an_unknown_transaction_is_neither(self, make_client: Any) -> None:
        client = await make_client()
        assert await _read(client, "ptx_unknown") == (None, None)

    async def test_a_transaction_nobody_decided_on_has_no_charge(self, make_client: Any, start_payment: Any) -> None:
        client = await make_client()
        started = await start_payment(client, amount=4321)
        txn, charge = await _read(client, started["provider_transaction_id"])
        assert charge is None
        assert (txn.id, txn.payment_id, txn.amount, txn.status) == (
            started["provider_transaction_id"],
            started["payment_id"],
            4321,
            TransactionStatus.PENDING,
        )

    async def test_a_decided_transaction_comes_with_its_charge(
        self, make_client: Any, start_payment: Any, db_read: Any
    ) -> None:
        client = await make_client()
        started = await start_payment(client)
        ptx = started["provider_transaction_id"]
        response = await client.post(f"/sandbox/pay/{ptx}", data={"outcome": "decline"}, allow_redirects=False)
        assert response.status == 303
        txn, charge = await _read(client, ptx)
        [stored] = await db_read("charges")
        assert txn.id == ptx
        assert (charge.transaction_id, charge.outcome, charge.event_id, charge.callback_body) == (
            ptx,
            stored["outcome"],
            stored["event_id"],
            stored["callback_body"],
        )
        assert charge.outcome == "decline"
