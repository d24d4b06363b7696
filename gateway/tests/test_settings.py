from __future__ import annotations

import os
from datetime import timedelta

import pydantic
import pytest
from gateway.settings import Settings

KEY_A = "a" * 32
KEY_B = "b" * 40


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_") or name == "BILLING_ADMIN_TOKEN":
            monkeypatch.delenv(name)


class TestSettings:
    def test_defaults(self) -> None:
        settings = Settings()
        assert settings.port == 8000
        assert settings.admin_token is None
        assert settings.token_ttl == 86400
        assert settings.secret_grace_period == timedelta(hours=24)
        assert settings.body_limit == 64 * 1024
        assert settings.payments_url == "http://127.0.0.1:8001"
        assert settings.providers_url == "http://127.0.0.1:8002"
        assert len(settings.jwt_keys) == 1

    def test_admin_token_from_billing_admin_token(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", "from-billing")
        assert Settings().admin_token is not None
        assert Settings().admin_token.get_secret_value() == "from-billing"  # type: ignore[union-attr]

    def test_gateway_admin_token_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", "from-billing")
        monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", "from-gateway")
        assert Settings().admin_token.get_secret_value() == "from-gateway"  # type: ignore[union-attr]

    def test_empty_admin_token_disables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", "")
        assert Settings().admin_token is None

    def test_unprefixed_admin_token_is_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ADMIN_TOKEN", "nope")
        assert Settings().admin_token is None

    def test_jwt_keys_from_pairs_keep_their_order(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GATEWAY_JWT_KEYS", f"new:{KEY_B}, old:{KEY_A}")
        keys = Settings().jwt_keys
        assert list(keys) == ["new", "old"]
        assert keys["new"].get_secret_value() == KEY_B

    def test_jwt_keys_from_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GATEWAY_JWT_KEYS", f'{{"k1": "{KEY_A}"}}')
        assert Settings().jwt_keys["k1"].get_secret_value() == KEY_A

    def test_secret_may_contain_colons(self) -> None:
        assert Settings(jwt_keys=f"k:{KEY_A}:x").jwt_keys["k"].get_secret_value() == f"{KEY_A}:x"

    @pytest.mark.parametrize("value", ["", "k1", f":{KEY_A}", "k1:short", "{}"])
    def test_bad_jwt_keys_are_refused(self, value: str) -> None:
        with pytest.raises(pydantic.ValidationError):
            Settings(jwt_keys=value)

    def test_other_fields_from_env(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GATEWAY_SECRET_GRACE_PERIOD", "60")
        monkeypatch.setenv("GATEWAY_RATE_LIMIT_PER_SECOND", "5")
        monkeypatch.setenv("GATEWAY_RATE_LIMIT_BURST", "10")
        monkeypatch.setenv("GATEWAY_PAYMENTS_URL", "http://127.0.0.1:9001")
        monkeypatch.setenv("GATEWAY_INTERNAL_SECRET", "s" * 32)
        settings = Settings()
        assert settings.secret_grace_period == timedelta(seconds=60)
        assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (5, 10)
        assert settings.payments_url == "http://127.0.0.1:9001"
        assert settings.internal_secret.get_secret_value() == "s" * 32
