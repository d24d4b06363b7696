"""The start-up line and the settings loader never show a secret."""

from __future__ import annotations

import pytest
from billing_runtime.secret_policy import PUBLISHED_SECRETS, load_settings, weakness
from billing_runtime.settings import InternalServiceSettings
from billing_runtime.startup import describe_bus, describe_database, startup_line
from pydantic_settings import SettingsConfigDict


class _Settings(InternalServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STARTUPTEST_", extra="ignore")


class TestStartupLine:
    def test_names_role_listeners_database_and_broker_without_passwords(self) -> None:
        line = startup_line(
            "payments-svc",
            "worker",
            [("127.0.0.1", 8101)],
            database_url="postgresql+asyncpg://app:db-pass@db.internal:5433/payments",
            bus_url="amqp://bus:bus-pass@mq.internal:5672/billing-prod",
        )
        assert line == (
            "payments-svc worker starting; listening on 127.0.0.1:8101; "
            "database postgresql app@db.internal:5433/payments; bus rabbitmq bus@mq.internal:5672 vhost billing-prod"
        )

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("memory://", "memory (in-process)"),
            ("amqp://guest:guest@127.0.0.1:5672/", "rabbitmq guest@127.0.0.1:5672 vhost /"),
            ("amqps://u:p@mq/vh", "rabbitmq u@mq vhost vh"),
        ],
    )
    def test_bus(self, url: str, expected: str) -> None:
        assert describe_bus(url) == expected

    def test_unix_socket_and_garbage_databases(self) -> None:
        url = "postgresql+asyncpg://postgres@/payments?host=/srv/billing/.data/socket"
        assert describe_database(url) == "postgresql postgres@/srv/billing/.data/socket/payments"
        assert describe_database("::not a url::") == "unparseable database URL"


class TestLoadSettings:
    def test_exits_naming_the_variable_and_never_the_value(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.setenv("STARTUPTEST_INTERNAL_SECRET", "too-short-value")
        with pytest.raises(SystemExit) as caught:
            load_settings(_Settings, "svc")
        assert caught.value.code == 2
        err = capsys.readouterr().err
        assert "svc: refusing to start" in err
        assert "STARTUPTEST_INTERNAL_SECRET must be at least 32 bytes" in err
        assert "too-short-value" not in err

    def test_a_good_secret_loads(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("STARTUPTEST_INTERNAL_SECRET", "k" * 32)
        assert load_settings(_Settings, "svc").internal_secret.get_secret_value() == "k" * 32

    def test_every_published_value_is_weak(self) -> None:
        assert all(weakness(value) is not None for value in PUBLISHED_SECRETS)
        assert weakness("x" * 32) is None
        assert weakness(" " * 40) == "is not set"
