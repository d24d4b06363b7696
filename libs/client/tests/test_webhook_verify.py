"""``billing_client.webhooks.verify`` on webhooks signed as the platform signs them (Standard Webhooks
v1, by the reference library): the event back when it verifies, WebhookVerificationError otherwise."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime

import pytest
from billing_client import Event, WebhookVerificationError, webhooks
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = json.dumps(
    {
        "id": "evt_1",
        "type": "payment.succeeded",
        "created_at": "2026-12-06T00:00:00Z",
        "data": {"payment": {"id": "pay_1", "status": "SUCCEEDED", "amount": 5000, "currency": "USD", "new": 1}},
        "a_field_added_later": True,
    }
).encode()


def signed(body: bytes = BODY, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    when = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return {
        "Webhook-Id": "evt_1",
        "Webhook-Timestamp": str(int(when.timestamp())),
        "Webhook-Signature": Webhook(secret).sign("evt_1", when, body.decode()),
    }


class TestVerify:
    def test_a_signed_webhook_gives_its_event(self) -> None:
        event = webhooks.verify(BODY, signed(), SECRET)
        assert isinstance(event, Event)
        assert (event.id, event.type) == ("evt_1", "payment.succeeded")
        assert event.payment is not None and event.payment.status == "SUCCEEDED"
        # Fields this client does not know are kept, not refused.
        assert event.model_extra == {"a_field_added_later": True}
        assert event.payment.model_extra == {"new": 1}

    def test_one_of_several_signatures_suffices(self) -> None:
        other = "whsec_" + base64.b64encode(b"another secret of thirty-two b!!").decode()
        headers = signed()
        headers["Webhook-Signature"] = signed(secret=other)["Webhook-Signature"] + " " + headers["Webhook-Signature"]
        assert webhooks.verify(BODY, headers, SECRET).id == "evt_1"

    @pytest.mark.parametrize(
        "tamper",
        [
            lambda h, b: (h, b.replace(b"5000", b"1")),
            lambda h, b: ({**h, "Webhook-Id": "evt_2"}, b),
            lambda h, b: ({k: v for k, v in h.items() if k != "Webhook-Signature"}, b),
            lambda h, b: ({**h, "Webhook-Signature": "v1"}, b),
            lambda h, b: ({**h, "Webhook-Signature": "v1,!!not base64!!"}, b),
            lambda h, b: ({**h, "Webhook-Timestamp": "soon"}, b),
            lambda h, b: (h, b"\xff\xfe"),
        ],
        ids=["body", "id", "no-signature", "malformed-signature", "not-base64", "bad-timestamp", "not-utf8"],
    )
    def test_anything_tampered_is_refused(self, tamper) -> None:  # type: ignore[no-untyped-def]
        headers, body = tamper(signed(), BODY)
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(body, headers, SECRET)

    def test_another_secret_is_refused(self) -> None:
        other = "whsec_" + base64.b64encode(b"another secret of thirty-two b!!").decode()
        with pytest.raises(WebhookVerificationError):
            webhooks.verify(BODY, signed(), other)

    def test_an_old_timestamp_is_refused(self) -> None:
        with pytest.raises(WebhookVerificationError, match="too old"):
            webhooks.verify(BODY, signed(at=time.time() - 600), SECRET)

    def test_a_signed_body_that_is_not_an_event_is_refused(self) -> None:
        body = b'{"hello": "world"}'
        with pytest.raises(WebhookVerificationError, match="not an event"):
            webhooks.verify(body, signed(body), SECRET)
