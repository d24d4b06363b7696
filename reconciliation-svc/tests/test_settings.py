from __future__ import annotations

import os
from datetime import timedelta

import pydantic
import pytest
from billing_runtime.secret_policy import PUBLISHED_SECRETS
from reconciliation_svc.settings import Settings

REQUIRED = {
    "RECONCILIATION_INTERNAL_SECRET": "i" * 32,
    "RECONCILIATION_PROVIDERS_INTERNAL_SECRET": "v" * 32,
    "RECONCILIATION_PAYMENTS_INTERNAL_SECRET": "p" * 32,
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RECONCILIATION_"):
            monkeypatch.delenv(name)
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)


class TestSettings:
    def test_defaults(self) -> None:
        settings = Settings()
        assert settings.port == 8004
        assert settings.database_url.endswith("/reconciliation")
        assert settings.providers_url == "http://127.0.0.1:8002"
        assert settings.payments_url == "http://127.0.0.1:8001"
        schedule = settings.janitor_schedule
        assert schedule.ages == (timedelta(minutes=5), timedelta(hours=1))
        assert schedule.repeat == timedelta(days=1)

    @pytest.mark.parametrize("name", sorted(REQUIRED))
    def test_missing_secret_is_refused_by_name(self, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv(name)
        with pytest.raises(pydantic.ValidationError, match=f"{name} is required"):
            Settings()

    @pytest.mark.parametrize("name", sorted(REQUIRED))
    def test_short_or_published_secret_is_refused_without_echoing_it(
        self, name: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(name, "short-secret")
        with pytest.raises(pydantic.ValidationError, match="at least 32 bytes") as short:
            Settings()
        assert "short-secret" not in str(short.value)
        published = sorted(PUBLISHED_SECRETS)[0]
        monkeypatch.setenv(name, published)
        with pytest.raises(pydantic.ValidationError, match="published") as known:
            Settings()
        assert published not in str(known.value)

    @pytest.mark.parametrize("ages", ["", "0,300", "3600,300", "five"])
    def test_bad_janitor_ages_are_refused(self, ages: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECONCILIATION_JANITOR_AGES", ages)
        with pytest.raises(pydantic.ValidationError, match="janitor_ages"):
            Settings()

    def test_not_a_postgres_url_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RECONCILIATION_DATABASE_URL", "mysql://x/y")
        with pytest.raises(pydantic.ValidationError, match="RECONCILIATION_DATABASE_URL"):
            Settings()
