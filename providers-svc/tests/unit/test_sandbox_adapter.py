"""The sandbox adapter against a fake bank, the registry, the domain rules and the settings parsing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from providers_svc.adapters.base import (
    PaymentProvider,
    ProviderRegistry,
    ProviderRejectedError,
    StatusResult,
)
from providers_svc.adapters.sandbox import SandboxProvider
from providers_svc.app import build_registry, create_app
from providers_svc.domain.transactions import (
    CallbackResult,
    Transaction,
    TransactionStatus,
    Verdict,
    late_verdict_result,
)
from providers_svc.sandbox.bank import CallbackSender
from providers_svc.sandbox.pages import format_amount
from providers_svc.settings import Settings

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)

SECRETS = {
    "internal_secret": "test-internal-secret-0123456789abcdef",
    "sandbox_secret": "s" * 32,
    "credentials_keys": "dGVzdC1jcmVkZW50aWFscy1rZXktMDEyMzQ1Njc4OWE=",
}


def make_txn(**fields: object) -> Transaction:
    values: dict[str, object] = {
        "id": "ptx_0000000000abcdefghjkmnpqrs",
        "tenant_id": "ten_a",
        "payment_id": "pay_1",
        "provider": "sandbox",
        "amount": 5000,
        "currency": "USD",
        "status": TransactionStatus.PENDING,
        "order_id": None,
        "description": None,
        "return_url": None,
        "redirect_url": None,
        "provider_reference": None,
        "failure_code": None,
        "failure_message": None,
        "expires_at": NOW + timedelta(minutes=30),
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Transaction(**values)  # type: ignore[arg-type]


class FakeBank:
    def __init__(self, cancellable: bool = True) -> None:
        self.cancellable = cancellable
        self.cancelled: list[str] = []

    async def cancel(self, txn_id: str) -> bool:
        self.cancelled.append(txn_id)
        return self.cancellable

    async def status(self, txn_id: str) -> StatusResult:
        return StatusResult(TransactionStatus.SUCCEEDED, provider_reference=f"bank-{txn_id}")


def make_provider(bank: FakeBank | None = None) -> SandboxProvider:
    return SandboxProvider(
        page_base="http://127.0.0.1:8000/sandbox/pay/", currencies=frozenset({"USD", "UZS"}), bank=bank or FakeBank()
    )


class TestSandboxProvider:
    def test_satisfies_the_protocol(self) -> None:
        provider: PaymentProvider = make_provider()
        assert provider.name == "sandbox"
        assert provider.display_name == "Sandbox (test)"
        assert provider.currencies == {"USD", "UZS"}

    async def test_start_points_at_the_payer_page(self) -> None:
        result = await make_provider().start(make_txn())
        assert result.redirect_url == "http://127.0.0.1:8000/sandbox/pay/ptx_0000000000abcdefghjkmnpqrs"
        assert result.provider_reference is None

    async def test_start_is_deterministic(self) -> None:
        provider = make_provider()
        assert await provider.start(make_txn()) == await provider.start(make_txn())

    @pytest.mark.parametrize("cancellable", [True, False])
    async def test_cancel_asks_the_bank(self, cancellable: bool) -> None:
        bank = FakeBank(cancellable)
        assert await make_provider(bank).cancel(make_txn()) is cancellable
        assert bank.cancelled == ["ptx_0000000000abcdefghjkmnpqrs"]

    async def test_fetch_status_asks_the_bank(self) -> None:
        status = await make_provider().fetch_status(make_txn())
        assert status.status is TransactionStatus.SUCCEEDED

    async def test_a_refund_of_an_unpaid_transaction_is_refused(self) -> None:
        # The sandbox bank refunds since issue 13, but only money it took.
        with pytest.raises(ProviderRejectedError) as refused:
            await make_provider().refund(make_txn(), refund_id="rfnd_1", amount=100, reason=None)
        assert refused.value.code == "sandbox_not_paid"


class TestProviderRegistry:
    def test_filters_by_currency(self) -> None:
        registry = ProviderRegistry([make_provider()])
        assert [p.name for p in registry.for_currency("USD")] == ["sandbox"]
        assert registry.for_currency("EUR") == []
        assert [p.name for p in registry.for_currency(None)] == ["sandbox"]
        assert registry.get("click") is None

    def test_duplicate_name_is_refused(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            ProviderRegistry([make_provider(), make_provider()])

    def test_unknown_enabled_provider_stops_start_up(self) -> None:
        settings = Settings(**SECRETS, enabled_providers=["sandbox", "paypal"])
        with pytest.raises(ValueError, match="paypal"):
            build_registry(settings, bank=None)  # type: ignore[arg-type]

    def test_disabled_sandbox_is_absent(self) -> None:
        assert build_registry(Settings(**SECRETS, enabled_providers=[]), bank=None).names() == []  # type: ignore[arg-type]


class TestLateVerdict:
    @pytest.mark.parametrize(
        ("current", "verdict", "expected"),
        [
            (TransactionStatus.SUCCEEDED, Verdict.SUCCEEDED, CallbackResult.SAME_OUTCOME),
            (TransactionStatus.FAILED, Verdict.FAILED, CallbackResult.SAME_OUTCOME),
            (TransactionStatus.CANCELLED, Verdict.FAILED, CallbackResult.ALREADY_FINAL),
            (TransactionStatus.SUCCEEDED, Verdict.FAILED, CallbackResult.CONFLICT),
            (TransactionStatus.FAILED, Verdict.SUCCEEDED, CallbackResult.CONFLICT),
            (TransactionStatus.CANCELLED, Verdict.SUCCEEDED, CallbackResult.CONFLICT),
        ],
    )
    def test_classification(self, current: TransactionStatus, verdict: Verdict, expected: CallbackResult) -> None:
        assert late_verdict_result(current, verdict) is expected

    def test_expiry(self) -> None:
        txn = make_txn(expires_at=NOW)
        assert txn.is_expired(NOW)
        assert not txn.is_expired(NOW - timedelta(seconds=1))


class TestSettings:
    def test_defaults(self) -> None:
        settings = Settings(**SECRETS)
        assert settings.port == 8002
        assert settings.public_gateway_url == "http://127.0.0.1:8000"
        assert settings.sandbox_pending_delay == 3
        assert settings.enabled_providers == ["sandbox", "payme", "click", "octo", "stripe"]
        assert settings.stripe_page_base == "http://127.0.0.1:8000/pay/stripe"
        assert settings.payer_page_base == "http://127.0.0.1:8000/sandbox/pay/"
        assert settings.sandbox_callback_url == "http://127.0.0.1:8000/billing/sandbox"
        assert "dev-sandbox" not in repr(settings)

    def test_environment_lists_are_comma_separated(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("PROVIDERS_ENABLED_PROVIDERS", "sandbox")
        monkeypatch.setenv("PROVIDERS_SANDBOX_CURRENCIES", "usd, uzs")
        monkeypatch.setenv("PROVIDERS_SANDBOX_CALLBACK_RETRY_SCHEDULE", "0.5,2,10")
        monkeypatch.setenv("PROVIDERS_SANDBOX_SECRET", "from-env-0123456789abcdef0123456789")
        monkeypatch.setenv("PROVIDERS_INTERNAL_SECRET", "internal-from-env-0123456789abcdef0123")
        monkeypatch.setenv("PROVIDERS_CREDENTIALS_KEYS", "dGVzdC1jcmVkZW50aWFscy1rZXktMDEyMzQ1Njc4OWE=")
        monkeypatch.setenv("PROVIDERS_PUBLIC_GATEWAY_URL", "http://127.0.0.1:18000/")
        settings = Settings()
        assert settings.sandbox_currencies == ["USD", "UZS"]
        assert settings.sandbox_callback_retry_schedule == [0.5, 2.0, 10.0]
        assert settings.sandbox_secret.get_secret_value() == "from-env-0123456789abcdef0123456789"
        assert settings.sandbox_callback_url == "http://127.0.0.1:18000/billing/sandbox"

    @pytest.mark.parametrize("field", ["internal_secret", "sandbox_secret"])
    @pytest.mark.parametrize(
        ("value", "problem"),
        [(None, "is required"), ("short", "at least 32 bytes"), ("dev-sandbox-secret-change-me", "published")],
    )
    def test_weak_or_missing_secrets_are_refused_by_variable(
        self, monkeypatch: pytest.MonkeyPatch, field: str, value: str | None, problem: str
    ) -> None:
        monkeypatch.delenv(f"PROVIDERS_{field.upper()}", raising=False)
        values: dict[str, object] = {**SECRETS}
        values.pop(field)
        if value is not None:
            values[field] = value
        with pytest.raises(ValueError, match=f"PROVIDERS_{field.upper()} .*{problem}"):
            Settings(**values)

    def test_empty_retry_schedule_is_refused(self) -> None:
        with pytest.raises(ValueError, match="delay"):
            Settings(**SECRETS, sandbox_callback_retry_schedule=[])


class TestCreateApp:
    @pytest.mark.parametrize("roles", [(), ("relay",), ("api", "consumer")])
    def test_unknown_roles_are_refused(self, roles: tuple[str, ...]) -> None:
        with pytest.raises(ValueError, match="roles"):
            create_app(Settings(**SECRETS), roles=roles)

    def test_worker_role_has_no_public_routes(self) -> None:
        app = create_app(Settings(**SECRETS), roles=("worker",))
        paths = {route.resource.canonical for route in app.router.routes() if route.resource is not None}
        assert paths == {"/healthz", "/readyz", "/metrics"}


class TestCallbackBackoff:
    def test_schedule_then_last_delay_repeats(self) -> None:
        sender = CallbackSender(
            None,  # type: ignore[arg-type]
            None,  # type: ignore[arg-type]
            url="http://127.0.0.1:9/billing/sandbox",
            secret="s",
            retry_schedule=[1, 5, 30],
            max_attempts=10,
            timeout=1,
            poll_interval=1,
            metrics=None,  # type: ignore[arg-type]
        )
        assert [sender.backoff(n) for n in range(1, 6)] == [1, 5, 30, 30, 30]


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (5000, "USD", "50.00"),
        (5, "USD", "0.05"),
        (123456789, "UZS", "1,234,567.89"),
        (500, "JPY", "500"),
        (1234, "KWD", "1.234"),
    ],
)
def test_format_amount(amount: int, currency: str, shown: str) -> None:
    assert format_amount(amount, currency) == shown
