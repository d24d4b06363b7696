"""Secrets never reach a log line: by their shape, and as the value of a field named for a secret."""

import pytest
from billing_runtime.redaction import MASK, redact

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJ0ZW5fMSJ9.c2lnbmF0dXJlLXBhcnQtb2YtdGhlLWp3dA"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("endpoint secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw created", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        ("stripe said: invalid key sk_live_51HxyzABCdef012345 given", "51HxyzABCdef012345"),
        ("restricted rk_test_abcDEF0123456789", "abcDEF0123456789"),
        (f"calling with {JWT}", JWT),
        ("Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345", "abcdefghijklmnopqrstuvwxyz012345"),
        ("payme header Basic UGF5Y29tOnNlY3JldC1rZXktMTIz", "UGF5Y29tOnNlY3JldC1rZXktMTIz"),
        ("connecting to amqp://billing:hunter2-pass@10.0.0.5:5672/", "hunter2-pass"),
        ('{"app_name": "shop", "secret": "ts_0123456789abcdef"}', "ts_0123456789abcdef"),
        ("{'password': 'p@ss w0rd'}", "p@ss w0rd"),
        ("client_secret=abc123def456 rest", "abc123def456"),
        ("X-Internal-Auth: opaque-internal-value", "opaque-internal-value"),
        ("credentials={merchant_id: 1, key: TESTKEY123}", "TESTKEY123"),
        ("webhook_secret: plainvalue99", "plainvalue99"),
        ('"access_token": "tok_abcdef"', "tok_abcdef"),
        ("PROVIDERS_CREDENTIALS_KEYS=c2VjcmV0LWtleS1tYXRlcmlhbA==", "c2VjcmV0LWtleS1tYXRlcmlhbA=="),
        ("billing.test: token=abc123", "abc123"),
        (
            '"checkout_url":"http://127.0.0.1:8080/c/THyn8sTPbreicm2CyQGjSS9R6aqgHAVT"',
            "THyn8sTPbreicm2CyQGjSS9R6aqgHAVT",
        ),
        ("redirect to /pay/stripe/ptx_123/Zm9vYmFyYmF6cXV4cXV1eA", "Zm9vYmFyYmF6cXV4cXV1eA"),
    ],
)
def test_a_secret_is_masked(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert MASK in masked


@pytest.mark.parametrize(
    "text",
    [
        "dead-lettering event evt_abc123 (routing key payments.payment.created.v1) of webhooks.events",
        "routing_key=payments.payment.succeeded.v1 idempotency_key=order-1-try-1",
        "payment pay_0123456789abcdef moved to SUCCEEDED for ten_42",
        "POST /v1/payments/{payment_id}/refunds answered 201 in 3.2 ms",
    ],
)
def test_what_is_not_a_secret_is_kept(text: str) -> None:
    assert redact(text) == text


def test_the_field_name_and_quoting_stay_readable() -> None:
    assert redact('{"secret": "abc"}') == '{"secret": "[REDACTED]"}'
    assert redact("password=abc") == "password=[REDACTED]"
