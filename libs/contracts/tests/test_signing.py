"""Our Standard Webhooks signer against the reference library's verifier and fixed vectors."""

import base64
import json
import time

import pytest
from billing_contracts.signing import (
    WebhookVerificationError,
    generate_secret,
    sign,
    signature_header,
    verify,
)
from standardwebhooks.webhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError as LibError

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
BODY = b'{"id":"evt_1","type":"payment.succeeded"}'


class TestAgainstTheReferenceVerifier:
    def test_reference_library_accepts_our_signature(self) -> None:
        ts = int(time.time())
        headers = {
            "webhook-id": "evt_1",
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(SECRET, "evt_1", ts, BODY),
        }
        assert Webhook(SECRET).verify(BODY, headers) == json.loads(BODY)

    def test_reference_library_accepts_either_secret_during_rotation(self) -> None:
        ts = int(time.time())
        new = generate_secret()
        header = signature_header([SECRET, new], "evt_1", ts, BODY)
        for secret in (SECRET, new):
            Webhook(secret).verify(
                BODY, {"webhook-id": "evt_1", "webhook-timestamp": str(ts), "webhook-signature": header}
            )

    @pytest.mark.parametrize("tamper", ["body", "id", "secret"])
    def test_reference_library_rejects_tampering(self, tamper: str) -> None:
        ts = int(time.time())
        sig = sign(SECRET if tamper != "secret" else generate_secret(), "evt_1", ts, BODY)
        body = BODY + b" " if tamper == "body" else BODY
        msg_id = "evt_2" if tamper == "id" else "evt_1"
        with pytest.raises(LibError):
            Webhook(SECRET).verify(body, {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig})

    def test_our_verifier_accepts_the_reference_signer(self) -> None:
        ts = int(time.time())
        from datetime import UTC, datetime

        lib_sig = Webhook(SECRET).sign("evt_1", datetime.fromtimestamp(ts, UTC), BODY.decode())
        verify(SECRET, "evt_1", str(ts), lib_sig, BODY)


class TestVerify:
    def test_fixed_vector(self) -> None:
        # Computed independently: base64(HMAC-SHA256(key, "evt_1.1700000000.<body>")).
        import hashlib
        import hmac

        key = base64.b64decode(SECRET.removeprefix("whsec_"))
        expected = base64.b64encode(hmac.new(key, b"evt_1.1700000000." + BODY, hashlib.sha256).digest()).decode()
        assert sign(SECRET, "evt_1", 1700000000, BODY) == "v1," + expected

    def test_stale_timestamp_rejected(self) -> None:
        ts = int(time.time()) - 3600
        with pytest.raises(WebhookVerificationError):
            verify(SECRET, "evt_1", str(ts), sign(SECRET, "evt_1", ts, BODY), BODY)

    def test_garbage_timestamp_rejected(self) -> None:
        with pytest.raises(WebhookVerificationError):
            verify(SECRET, "evt_1", "soon", "v1,xxx", BODY)

    def test_generated_secret_has_24_random_bytes(self) -> None:
        secret = generate_secret()
        assert secret.startswith("whsec_")
        assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
        assert generate_secret() != secret
