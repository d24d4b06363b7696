from __future__ import annotations

import pydantic
import pytest
from checkout_web.settings import Settings


class TestSettings:
    def test_defaults(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("CHECKOUT_PORT", raising=False)
        monkeypatch.delenv("CHECKOUT_GATEWAY_URL", raising=False)
        settings = Settings()
        assert settings.port == 8080
        assert settings.gateway_url == "http://127.0.0.1:8000"

    def test_read_from_checkout_prefixed_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("CHECKOUT_GATEWAY_URL", "http://127.0.0.1:9000")
        monkeypatch.setenv("CHECKOUT_REQUEST_TIMEOUT", "4.5")
        settings = Settings()
        assert settings.gateway_url == "http://127.0.0.1:9000"
        assert settings.request_timeout == 4.5

    @pytest.mark.parametrize("url", ["ftp://127.0.0.1", "/relative", "http://"])
    def test_gateway_url_must_be_absolute_http(self, url: str) -> None:
        with pytest.raises(pydantic.ValidationError):
            Settings(gateway_url=url)

    def test_frame_ancestors_is_no_longer_a_setting(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Who may frame a payment's pages is its tenant's allowed_origins (test_embedding.py).
        monkeypatch.setenv("CHECKOUT_FRAME_ANCESTORS", "*")
        assert not hasattr(Settings(), "frame_ancestors")
