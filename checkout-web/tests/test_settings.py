from __future__ import annotations

import pydantic
import pytest
from checkout_web.settings import Settings

KEY = "J2mzn9FpW6-Yk6wS1kV8aH3vQ3lC9pO5vC5l0wU6mXQ="


class TestSettings:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CHECKOUT_PORT", raising=False)
        monkeypatch.delenv("CHECKOUT_GATEWAY_URL", raising=False)
        monkeypatch.setenv("CHECKOUT_SESSION_KEYS", KEY)
        settings = Settings()
        assert settings.port == 8080
        assert settings.gateway_url == "http://127.0.0.1:8000"

    def test_read_from_checkout_prefixed_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CHECKOUT_GATEWAY_URL", "http://127.0.0.1:9000")
        monkeypatch.setenv("CHECKOUT_REQUEST_TIMEOUT", "4.5")
        monkeypatch.setenv("CHECKOUT_SESSION_KEYS", KEY)
        settings = Settings()
        assert settings.gateway_url == "http://127.0.0.1:9000"
        assert settings.request_timeout == 4.5

    @pytest.mark.parametrize("url", ["ftp://127.0.0.1", "/relative", "http://"])
    def test_gateway_url_must_be_absolute_http(self, url: str) -> None:
        with pytest.raises(pydantic.ValidationError):
            Settings(gateway_url=url, session_keys=KEY)

    def test_frame_ancestors_is_no_longer_a_setting(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Who may frame a payment's pages is its tenant's allowed_origins (test_embedding.py).
        monkeypatch.setenv("CHECKOUT_FRAME_ANCESTORS", "*")
        assert not hasattr(Settings(session_keys=KEY), "frame_ancestors")

    def test_session_keys_are_required_and_named(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CHECKOUT_SESSION_KEYS", raising=False)
        with pytest.raises(pydantic.ValidationError) as info:
            Settings()
        assert "CHECKOUT_SESSION_KEYS is required" in str(info.value)

    def test_a_session_key_must_be_a_fernet_key(self) -> None:
        with pytest.raises(pydantic.ValidationError) as info:
            Settings(session_keys="not-a-key-" + "x" * 40)
        assert "CHECKOUT_SESSION_KEYS" in str(info.value)
        assert "xxxx" not in str(info.value)
