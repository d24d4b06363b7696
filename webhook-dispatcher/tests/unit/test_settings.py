"""The dispatcher's database: PostgreSQL in every mode, refused at start-up otherwise."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from webhook_dispatcher.crypto import generate_key
from webhook_dispatcher.settings import Settings


def _settings(**values: str) -> Settings:
    return Settings(encryption_key=generate_key(), internal_secret="i" * 32, **values)  # type: ignore[arg-type]


class TestDatabaseUrl:
    def test_the_default_is_a_local_postgresql_without_a_password(self) -> None:
        assert _settings().database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/webhooks"

    @pytest.mark.parametrize(
        "url", ["mysql+aiomysql://app:hunter2@db/webhooks", "postgresql+psycopg://app:hunter2@db/webhooks", "hunter2"]
    )
    def test_anything_but_postgresql_with_asyncpg_is_refused_by_name_never_echoed(self, url: str) -> None:
        with pytest.raises(ValidationError, match="WEBHOOKS_DATABASE_URL") as info:
            _settings(database_url=url)
        assert "hunter2" not in str(info.value)

    def test_a_postgresql_url_is_taken_as_given(self) -> None:
        url = "postgresql+asyncpg://app:pw@db.internal:5432/webhooks"
        assert _settings(database_url=url).database_url == url
