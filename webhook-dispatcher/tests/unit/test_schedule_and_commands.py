"""Pure rules: the retry schedule, the verdict on a response, URL checks, the secret box."""

from __future__ import annotations

import random
from datetime import timedelta
from email.utils import format_datetime

import pytest
from billing_contracts.envelope import utcnow
from webhook_dispatcher.crypto import SecretBox, generate_key
from webhook_dispatcher.domain.addresses import AddressPolicy
from webhook_dispatcher.domain.commands import url_problem
from webhook_dispatcher.domain.event_types import PUBLIC_EVENT_TYPES, binding_keys, is_forwarded, matches
from webhook_dispatcher.domain.schedule import judge, next_delay, parse_retry_after
from webhook_dispatcher.settings import DEFAULT_RETRY_SCHEDULE, Settings

SCHEDULE = [0, 5, 300, 1800, 7200, 18000, 36000, 36000]


class TestSchedule:
    def test_default_schedule_is_svix_like(self) -> None:
        assert Settings(encryption_key=generate_key(), internal_secret="i" * 32).schedule == SCHEDULE
        assert DEFAULT_RETRY_SCHEDULE.count(",") == 7

    def test_delays_follow_the_schedule_then_give_up(self) -> None:
        delays = [next_delay(SCHEDULE, n, jitter=0, max_retry_after=3600) for n in range(1, 9)]
        assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]

    def test_jitter_only_stretches(self) -> None:
        rng = random.Random(1)
        for _ in range(100):
            delay = next_delay(SCHEDULE, 2, jitter=0.2, max_retry_after=0, rng=rng)
            assert delay is not None
            assert 300 <= delay <= 360

    def test_retry_after_wins_when_longer_and_is_capped(self) -> None:
        assert next_delay(SCHEDULE, 1, jitter=0, retry_after=60, max_retry_after=3600) == 60
        assert next_delay(SCHEDULE, 1, jitter=0, retry_after=1, max_retry_after=3600) == 5
        assert next_delay(SCHEDULE, 1, jitter=0, retry_after=10**9, max_retry_after=3600) == 3600
        assert next_delay(SCHEDULE, 8, jitter=0, retry_after=1, max_retry_after=3600) is None

    def test_invalid_schedules_are_rejected(self) -> None:
        for bad in ("", "1,-1", "a,b"):
            with pytest.raises(ValueError, match=r"retry_schedule|could not convert"):
                Settings(encryption_key=generate_key(), retry_schedule=bad)

    def test_lease_must_outlive_the_request(self) -> None:
        with pytest.raises(ValueError, match="lease_seconds"):
            Settings(encryption_key=generate_key(), internal_secret="i" * 32, request_timeout=30, lease_seconds=10)


class TestVerdict:
    @pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
    def test_2xx_succeeds(self, status: int) -> None:
        assert judge(status).succeeded

    @pytest.mark.parametrize("status", [None, 100, 301, 302, 400, 404, 500, 503])
    def test_others_fail(self, status: int | None) -> None:
        assert not judge(status).succeeded

    def test_410_is_gone(self) -> None:
        assert judge(410).gone

    def test_retry_after_only_on_429_and_503(self) -> None:
        assert judge(429, "7").retry_after == 7
        assert judge(503, "7").retry_after == 7
        assert judge(500, "7").retry_after is None

    def test_retry_after_http_date(self) -> None:
        value = format_datetime(utcnow() + timedelta(seconds=120), usegmt=True)
        parsed = parse_retry_after(value)
        assert parsed is not None
        assert 100 < parsed <= 120
        assert parse_retry_after("soon") is None


class TestUrls:
    @pytest.mark.parametrize(
        ("url", "problem"),
        [
            ("https://example.com/hook", None),
            ("https://example.com:8443/hook?x=1", None),
            ("http://example.com/hook", "must use https"),
            ("ftp://example.com", "must be an http or https URL"),
            ("https://", "must have a host"),
            ("https://a:b@example.com", "must not contain credentials"),
            ("https://example.com/#frag", "must not contain a fragment"),
            ("https://example.com:99999/", "is not a valid URL"),
            ("https://exa mple.com/", "must not contain whitespace or control characters"),
            ("https://127.0.0.1/", "points to a loopback address"),
            ("https://[::ffff:10.0.0.1]/", "points to a IPv4-mapped private address"),
            ("https://localhost/", None),  # names are judged at connect time
        ],
    )
    def test_guarded(self, url: str, problem: str | None) -> None:
        assert url_problem(url, allow_http=False, policy=AddressPolicy()) == problem

    def test_allow_list_and_loopback(self) -> None:
        allowed = AddressPolicy(allowed_hosts=frozenset({"127.0.0.1"}))
        assert url_problem("https://127.0.0.1/", allow_http=False, policy=allowed) is None
        loopback = AddressPolicy(allow_loopback=True)
        assert url_problem("http://[::1]:9000/", allow_http=True, policy=loopback) is None
        assert url_problem("http://10.0.0.1/", allow_http=True, policy=loopback) == "points to a private address"

    @pytest.mark.parametrize(
        "url",
        ["http://127.0.0.1:8000/", "http://127.0.0.2:8000/x", "http://[::1]:8000/", "http://[::ffff:127.0.0.1]:8000/"],
    )
    def test_platform_ports_are_refused_whatever_is_allowed(self, url: str) -> None:
        policy = AddressPolicy(
            allow_loopback=True,
            allowed_hosts=frozenset({"127.0.0.1", "::1", "127.0.0.2", "::ffff:127.0.0.1"}),
            platform=frozenset({("127.0.0.1", 8000)}),
        )
        assert url_problem(url, allow_http=True, policy=policy) == "points to a port of the platform itself"
        assert url_problem(url.replace(":8000", ":8009"), allow_http=True, policy=policy) is None


class TestFilters:
    def test_star_takes_everything_but_test_events(self) -> None:
        assert matches(["*"], "payment.created")
        assert matches(["*"], "endpoint.disabled")
        assert not matches(["*"], "webhook.test")
        assert matches(["payment.created"], "payment.created")
        assert not matches(["payment.created"], "payment.failed")

    def test_a_failed_attempt_is_a_public_event_forwarded_from_payments(self) -> None:
        assert "payment.attempt_failed" in PUBLIC_EVENT_TYPES
        assert is_forwarded("payment.attempt_failed", "payments")
        assert "payments.payment.attempt_failed.*" in binding_keys()
        assert matches(["*"], "payment.attempt_failed")
        assert matches(["payment.attempt_failed"], "payment.attempt_failed")
        assert not matches(["payment.failed"], "payment.attempt_failed")

    def test_payment_authorized_is_a_public_type_forwarded_from_payments(self) -> None:
        assert "payment.authorized" in PUBLIC_EVENT_TYPES
        assert "payments.payment.authorized.*" in binding_keys()
        assert matches(["payment.authorized"], "payment.authorized")


class TestSecretBox:
    def test_round_trip_and_wrong_key(self) -> None:
        box = SecretBox(generate_key())
        token = box.encrypt("whsec_abc")
        assert "whsec_abc" not in token
        assert box.decrypt(token) == "whsec_abc"
        with pytest.raises(RuntimeError):
            SecretBox(generate_key()).decrypt(token)

    def test_bad_key_does_not_echo_it(self) -> None:
        with pytest.raises(ValueError, match="WEBHOOKS_ENCRYPTION_KEY") as info:
            SecretBox("short-secret-key")
        assert "short-secret-key" not in str(info.value)
