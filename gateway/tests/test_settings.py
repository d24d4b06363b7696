from __future__ import annotations

import os
from datetime import timedelta

import pydantic
import pytest
from billing_runtime.secret_policy import PUBLISHED_SECRETS
from gateway.settings import Settings

KEY_A = "a" * 32
KEY_B = "b" * 40
ADMIN = "admin-token-0123456789abcdef0123456789"
REQUIRED = {
    "GATEWAY_JWT_KEYS": f"k1:{KEY_A}",
    "GATEWAY_PAYMENTS_INTERNAL_SECRET": "p" * 32,
    "GATEWAY_WEBHOOKS_INTERNAL_SECRET": "w" * 32,
    "GATEWAY_PROVIDERS_INTERNAL_SECRET": "v" * 32,
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("GATEWAY_") or name == "BILLING_ADMIN_TOKEN":
            monkeypatch.delenv(name)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)


def _refused(match: str) -> pytest.RaisesContext[pydantic.ValidationError]:
    return pytest.raises(pydantic.ValidationError, match=match)


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
        assert settings.ops_port is None
        assert settings.ops_host == "127.0.0.1"
        assert settings.trusted_proxies == []

    def test_admin_token_from_billing_admin_token(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", ADMIN)
        assert Settings().admin_token is not None
        assert Settings().admin_token.get_secret_value() == ADMIN  # type: ignore[union-attr]

    def test_gateway_admin_token_wins(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", ADMIN)
        monkeypatch.setenv("GATEWAY_ADMIN_TOKEN", ADMIN + "-gw")
        assert Settings().admin_token.get_secret_value() == ADMIN + "-gw"  # type: ignore[union-attr]

    def test_empty_admin_token_disables(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", "")
        assert Settings().admin_token is None

    def test_unprefixed_admin_token_is_ignored(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ADMIN_TOKEN", ADMIN)
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
        monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
        monkeypatch.setenv("GATEWAY_OPS_PORT", "8090")
        settings = Settings()
        assert settings.secret_grace_period == timedelta(seconds=60)
        assert (settings.rate_limit_per_second, settings.rate_limit_burst) == (5, 10)
        assert settings.payments_url == "http://127.0.0.1:9001"
        assert settings.payments_internal_secret.get_secret_value() == "p" * 32
        assert settings.trusted_proxies == ["10.0.0.0/8", "127.0.0.1"]
        assert settings.ops_port == 8090

    def test_trusted_proxies_must_be_addresses(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GATEWAY_TRUSTED_PROXIES", "proxy.internal")
        with _refused("not an IP address"):
            Settings()


class TestNoDefaultSecrets:
    """Issue 9 item 3: a missing, short or published secret stops the gateway, naming the variable."""

    @pytest.mark.parametrize(
        "variable",
        [
            "GATEWAY_JWT_KEYS",
            "GATEWAY_PAYMENTS_INTERNAL_SECRET",
            "GATEWAY_WEBHOOKS_INTERNAL_SECRET",
            "GATEWAY_PROVIDERS_INTERNAL_SECRET",
        ],
    )
    def test_missing_secret_is_refused_by_name(self, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
        monkeypatch.delenv(variable)
        with _refused(f"{variable} is required"):
            Settings()

    @pytest.mark.parametrize(
        "variable",
        ["GATEWAY_PAYMENTS_INTERNAL_SECRET", "GATEWAY_WEBHOOKS_INTERNAL_SECRET", "GATEWAY_PROVIDERS_INTERNAL_SECRET"],
    )
    def test_short_internal_secret_is_refused(self, monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
        monkeypatch.setenv(variable, "x" * 31)
        with _refused(f"{variable} must be at least 32 bytes"):
            Settings()

    @pytest.mark.parametrize("published", sorted(PUBLISHED_SECRETS))
    def test_every_published_value_is_refused_everywhere(self, monkeypatch: pytest.MonkeyPatch, published: str) -> None:
        for variable, value in [
            ("GATEWAY_PAYMENTS_INTERNAL_SECRET", published),
            ("GATEWAY_JWT_KEYS", f"dev:{published}"),
            ("GATEWAY_ADMIN_TOKEN", published),
        ]:
            monkeypatch.setenv(variable, value)
            with pytest.raises(pydantic.ValidationError) as caught:
                Settings()
            assert published not in str(caught.value), "a refused secret was echoed"
            monkeypatch.setenv(variable, REQUIRED.get(variable, ADMIN))

    def test_the_old_jwt_default_is_refused(self) -> None:
        with _refused("published in the repository"):
            Settings(jwt_keys="dev:dev-gateway-jwt-key-change-me-0123456789")

    def test_short_admin_token_is_refused_by_both_names(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("BILLING_ADMIN_TOKEN", "admin")
        with _refused(r"GATEWAY_ADMIN_TOKEN \(or BILLING_ADMIN_TOKEN\) must be at least 32 bytes"):
            Settings()
