"""Every service's database: PostgreSQL in every mode, refused at start-up otherwise, by the name of
the variable and never by its value (a URL may hold a password)."""

from __future__ import annotations

import pytest
from gateway.settings import Settings as GatewaySettings
from payments_svc.settings import Settings as PaymentsSettings
from providers_svc.settings import Settings as ProvidersSettings
from pydantic import ValidationError
from webhook_dispatcher.crypto import generate_key
from webhook_dispatcher.settings import Settings as WebhooksSettings

SECRET = "i" * 32


def _webhooks(**values: str) -> WebhooksSettings:
    return WebhooksSettings(encryption_key=generate_key(), internal_secret=SECRET, **values)  # type: ignore[arg-type]


SERVICES = {
    "GATEWAY_DATABASE_URL": lambda **v: GatewaySettings(
        payments_internal_secret=SECRET,
        webhooks_internal_secret=SECRET,
        providers_internal_secret=SECRET,
        jwt_keys="k:" + SECRET,
        **v,
    ),
    "PAYMENTS_DATABASE_URL": lambda **v: PaymentsSettings(
        internal_secret=SECRET, providers_internal_secret=SECRET, **v
    ),
    "PROVIDERS_DATABASE_URL": lambda **v: ProvidersSettings(
        internal_secret=SECRET, sandbox_secret=SECRET, credentials_keys=generate_key(), **v
    ),
    "WEBHOOKS_DATABASE_URL": _webhooks,
}


class TestDatabaseUrl:
    def test_the_default_is_a_local_postgresql_without_a_password(self) -> None:
        assert _webhooks().database_url == "postgresql+asyncpg://postgres@127.0.0.1:5432/webhooks"

    @pytest.mark.parametrize("variable", SERVICES)
    @pytest.mark.parametrize(
        "url",
        [
            "mysql+aiomysql://app:hunter2@db/svc",
            "postgresql+psycopg://app:hunter2@db/svc",
            "postgresql://app:hunter2@db/svc",  # no driver: psycopg2's, which the services do not use
            "hunter2",
        ],
    )
    def test_anything_but_postgresql_with_asyncpg_is_refused_by_name_never_echoed(
        self, variable: str, url: str
    ) -> None:
        with pytest.raises(ValidationError, match=variable) as info:
            SERVICES[variable](database_url=url)
        assert "hunter2" not in str(info.value)

    @pytest.mark.parametrize("variable", SERVICES)
    def test_a_postgresql_url_is_taken_as_given(self, variable: str) -> None:
        for url in (
            "postgresql+asyncpg://app:pw@db.internal:5432/svc",
            "postgresql+asyncpg://postgres@/svc?host=/srv/billing/.data/socket",  # the embedded server
        ):
            assert SERVICES[variable](database_url=url).database_url == url
