"""The fake Octo's state in PostgreSQL (``octo_simulator_payments``): the simulator mounted in
providers-svc serves one Octo whatever api process a request reaches (the distributed mode runs several).

Its only shop is the Octo simulator account (``pac_simulator_octo``, random id and secret, created on
first use): every other shop id or secret gets Octo's "Wrong secret"."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from billing_contracts.envelope import utcnow
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from providers_svc.db.octo import OctoSimulatorPaymentRow as Row
from providers_svc.services.account_copies import AccountCopies
from providers_svc.services.accounts import simulator_account
from providers_svc.services.uow import UowFactory
from providers_svc.simulators.octo import OctoPayment

T = TypeVar("T")


def _payment(row: Row) -> OctoPayment:
    return OctoPayment(
        shop_id=row.shop_id,
        shop_transaction_id=row.shop_transaction_id,
        uuid=row.uuid,
        total_sum=Decimal(row.total_sum),
        currency=row.currency,
        auto_capture=row.auto_capture,
        test=row.test,
        status=row.status,
        refunds={key: Decimal(_refund_amount(value)) for key, value in row.refunds.items()},
        refund_statuses={key: value["status"] for key, value in row.refunds.items() if isinstance(value, dict)},
        return_url=row.return_url,
        notify_url=row.notify_url,
    )


def _refund_amount(value: object) -> str:
    # A refund is stored as {"amount", "status"}; rows written before refund statuses hold the amount.
    return str(value["amount"]) if isinstance(value, dict) else str(value)


@dataclass(frozen=True)
class DatabaseOctoStore:
    uow: UowFactory
    copies: AccountCopies
    base_url: str

    async def secret_of(self, shop_id: int) -> str | None:
        account = await simulator_account(self.copies, "octo")
        return account.credentials["secret"] if account.credentials["shop_id"] == str(shop_id) else None

    async def find(self, shop_id: int, shop_transaction_id: str) -> OctoPayment | None:
        stmt = select(Row).where(Row.shop_id == shop_id, Row.shop_transaction_id == shop_transaction_id)
        async with self.uow() as unit:
            row = (await unit.session.execute(stmt)).scalar_one_or_none()
            return _payment(row) if row is not None else None

    async def by_uuid(self, payment_uuid: str) -> OctoPayment | None:
        async with self.uow() as unit:
            row = await unit.session.get(Row, payment_uuid[:36])
            return _payment(row) if row is not None else None

    async def add(self, payment: OctoPayment) -> OctoPayment:
        now = utcnow()
        values = {
            "uuid": payment.uuid,
            "shop_id": payment.shop_id,
            "shop_transaction_id": payment.shop_transaction_id,
            "total_sum": payment.total_sum,
            "currency": payment.currency,
            "auto_capture": payment.auto_capture,
            "test": payment.test,
            "status": payment.status,
            "refunds": {},
            "return_url": payment.return_url,
            "notify_url": payment.notify_url,
            "created_at": now,
            "updated_at": now,
        }
        async with self.uow() as unit:
            # Two prepares of one shop_transaction_id racing: the first stored is the payment.
            await unit.session.execute(pg_insert(Row).values(**values).on_conflict_do_nothing())
            await unit.commit()
        stored = await self.find(payment.shop_id, payment.shop_transaction_id)
        assert stored is not None, "just stored, never deleted"
        return stored

    async def change(self, payment_uuid: str, apply: Callable[[OctoPayment], T]) -> T | None:
        async with self.uow() as unit:
            stmt = select(Row).where(Row.uuid == payment_uuid[:36]).with_for_update()
            row = (await unit.session.execute(stmt)).scalar_one_or_none()
            if row is None:
                return None
            payment = _payment(row)
            result = apply(payment)
            row.status = payment.status
            row.total_sum = payment.total_sum  # a partial capture's final_amount
            row.refunds = {
                key: {"amount": str(value), "status": payment.refund_statuses.get(key, "succeeded")}
                for key, value in payment.refunds.items()
            }
            row.updated_at = utcnow()
            await unit.commit()
            return result
