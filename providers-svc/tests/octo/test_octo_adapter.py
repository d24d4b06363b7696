"""The Octo adapter bound to an account, against the fake Octo on loopback: start, cancel (a hold is
cancelled, money taken is not cancellable), the status call in our terms, refunds deduped by our id;
the simulator account is sent to our own fake, never to its stored api_base."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from providers_svc.adapters.base import ProviderRejectedError
from providers_svc.adapters.octo import OctoAdapter, OctoProvider
from providers_svc.domain.accounts import BoundAccount, Environment, settings_with_defaults
from providers_svc.domain.transactions import Transaction, TransactionStatus

from .conftest import SECRET, SHOP_ID, FakeOcto


def _account(octo: FakeOcto, *, simulator: bool = False, **settings: str) -> BoundAccount:
    return BoundAccount(
        id="pac_simulator_octo" if simulator else "pac_octo_1",
        provider="octo",
        environment=Environment.TEST,
        currencies=frozenset({"UZS", "USD"}),
        settings=settings_with_defaults("octo", {"api_base": octo.url, **settings}),
        credentials={"shop_id": str(SHOP_ID), "secret": SECRET},
        simulator=simulator,
    )


def _txn(
    txn_id: str = "ptx_adapter1", *, reference: str | None = None, return_url: str | None = "http://127.0.0.1:9/return"
) -> Transaction:
    now = datetime.now(UTC)
    return Transaction(
        id=txn_id,
        tenant_id="ten_a",
        payment_id="pay_1",
        provider="octo",
        amount=250000,
        currency="USD",
        status=TransactionStatus.PENDING,
        order_id="o-1",
        description="A lamp",
        return_url=return_url,
        redirect_url=None,
        provider_reference=reference,
        failure_code=None,
        failure_message=None,
        expires_at=now + timedelta(minutes=30),
        created_at=now,
        updated_at=now,
        account_id="pac_octo_1",
    )


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as s:
        yield s


def _provider(
    session: aiohttp.ClientSession, simulator_base: str = "http://127.0.0.1:9/simulators/octo"
) -> OctoProvider:
    return OctoProvider(
        lambda: session, "http://127.0.0.1:9/billing/octo", simulator_base, "http://127.0.0.1:9/pay/octo"
    )


async def _started(adapter: Any, txn_id: str = "ptx_adapter1") -> Transaction:
    result = await adapter.start(_txn(txn_id))
    return _txn(txn_id, reference=result.provider_reference)


class TestStart:
    async def test_prepares_once_per_transaction(self, octo: FakeOcto, session: aiohttp.ClientSession) -> None:
        adapter = _provider(session).bind(_account(octo, auto_capture="false"))
        assert adapter.test_only and adapter.currencies == frozenset({"UZS", "USD"})
        first = await adapter.start(_txn())
        again = await adapter.start(_txn())  # a retried start: Octo dedupes shop_transaction_id
        assert first == again
        assert first.redirect_url == f"{octo.url}/pay/{first.provider_reference}"
        [payment] = octo.book.payments.values()
        assert (str(payment.total_sum), payment.currency, payment.auto_capture) == ("2500", "USD", False)
        assert payment.notify_url == "http://127.0.0.1:9/billing/octo"

    async def test_the_payments_return_url_or_our_return_page(
        self, octo: FakeOcto, session: aiohttp.ClientSession
    ) -> None:
        adapter = _provider(session).bind(_account(octo))
        await adapter.start(_txn("ptx_given"))
        # Octo requires a return_url (§3.2): without the payment's own, our page, never the notify URL.
        await adapter.start(_txn("ptx_none", return_url=None))
        returns = {p.shop_transaction_id: p.return_url for p in octo.book.payments.values()}
        assert returns == {"ptx_given": "http://127.0.0.1:9/return", "ptx_none": "http://127.0.0.1:9/pay/octo/ptx_none"}

    async def test_the_simulator_account_calls_our_fake_not_its_api_base(
        self, octo: FakeOcto, session: aiohttp.ClientSession
    ) -> None:
        # Its stored api_base is the fake here; the simulator base (computed from settings) wins.
        adapter = _provider(session, simulator_base=octo.url + "/nowhere").bind(_account(octo, simulator=True))
        assert isinstance(adapter, OctoAdapter) and adapter.client.api_base == octo.url + "/nowhere"
        real = _provider(session).bind(_account(octo))
        assert isinstance(real, OctoAdapter) and real.client.api_base == octo.url

    async def test_wrong_credentials_are_a_rejection_without_the_secret(
        self, octo: FakeOcto, session: aiohttp.ClientSession
    ) -> None:
        account = _account(octo)
        wrong = BoundAccount(**{**account.__dict__, "credentials": {"shop_id": "1", "secret": "nope-secret"}})
        with pytest.raises(ProviderRejectedError) as info:
            await _provider(session).bind(wrong).start(_txn())
        assert info.value.code == "octo_2" and "nope-secret" not in str(info.value)


class TestCancel:
    async def test_a_hold_is_cancelled(self, octo: FakeOcto, session: aiohttp.ClientSession) -> None:
        adapter = _provider(session).bind(_account(octo, auto_capture="false"))
        txn = await _started(adapter)
        octo.book.pay(str(txn.provider_reference))
        assert await adapter.cancel(txn) is True
        assert octo.book.payments[(SHOP_ID, txn.id)].status == "canceled"
        assert (await adapter.fetch_status(txn)).status is TransactionStatus.FAILED

    async def test_money_taken_is_not_cancellable(self, octo: FakeOcto, session: aiohttp.ClientSession) -> None:
        adapter = _provider(session).bind(_account(octo))
        txn = await _started(adapter)
        octo.book.pay(str(txn.provider_reference))
        assert await adapter.cancel(txn) is False
        assert octo.book.payments[(SHOP_ID, txn.id)].status == "succeeded"

    async def test_an_unpaid_payment_is_closed_at_octo(self, octo: FakeOcto, session: aiohttp.ClientSession) -> None:
        adapter = _provider(session).bind(_account(octo))
        txn = await _started(adapter)
        assert await adapter.cancel(txn) is True
        assert octo.book.payments[(SHOP_ID, txn.id)].status == "canceled"
        assert await adapter.cancel(_txn("ptx_never_started")) is True  # nothing at Octo to cancel


class TestStatusAndRefund:
    async def test_status_in_our_terms(self, octo: FakeOcto, session: aiohttp.ClientSession) -> None:
        adapter = _provider(session).bind(_account(octo))
        txn = await _started(adapter)
        assert (await adapter.fetch_status(txn)).status is TransactionStatus.PENDING
        octo.book.pay(str(txn.provider_reference))
        status = await adapter.fetch_status(txn)
        assert (status.status, status.provider_reference) == (TransactionStatus.SUCCEEDED, txn.provider_reference)

    async def test_refunds_are_deduped_by_our_refund_id(self, octo: FakeOcto, session: aiohttp.ClientSession) -> None:
        adapter = _provider(session).bind(_account(octo))
        txn = await _started(adapter)
        with pytest.raises(ProviderRejectedError):
            await adapter.refund(txn, refund_id="rf_1", amount=1000, reason=None)  # not paid yet
        octo.book.pay(str(txn.provider_reference))
        first = await adapter.refund(txn, refund_id="rf_1", amount=100000, reason=None)
        again = await adapter.refund(txn, refund_id="rf_1", amount=100000, reason=None)
        assert first == again and (first.status, first.provider_refund_id) == ("succeeded", "rf_1")
        assert str(sum(octo.book.payments[(SHOP_ID, txn.id)].refunds.values())) == "1000"
        with pytest.raises(ProviderRejectedError):
            await adapter.refund(txn, refund_id="rf_2", amount=200000, reason=None)  # beyond what remains
