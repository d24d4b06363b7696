"""Verifying the webhooks the platform sends (Standard Webhooks v1), with the reference verifier.

Verify the raw body exactly as received (before any JSON parsing), then drop an event whose id you have
already handled (``webhook-id`` is the event id, the same on every retry) and, per object, one whose
``data.<object>.sequence`` is lower than one already applied: deliveries may come twice or out of order.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping

from pydantic import ValidationError as PydanticValidationError
from standardwebhooks.webhooks import EmptyWebhookSecretError, Webhook
from standardwebhooks.webhooks import WebhookVerificationError as StandardVerificationError

from billing_client.errors import WebhookVerificationError
from billing_client.models import Event


def verify(payload: bytes | str, headers: Mapping[str, str], secret: str) -> Event:
    """The event of a webhook whose signature and timestamp (within 5 minutes) verify with ``secret``.

    ``headers`` is any mapping of the request's headers (names in any case). Raises
    ``WebhookVerificationError`` for a missing or wrong signature, a stale timestamp, a malformed
    header or a body that is not an event.
    """
    plain = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        body = Webhook(secret).verify(payload, plain)
    except (StandardVerificationError, EmptyWebhookSecretError) as exc:
        raise WebhookVerificationError(f"webhook not verified: {exc}") from exc
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        # A malformed signature header or secret, or a body that is not UTF-8 JSON.
        raise WebhookVerificationError(f"webhook not verified: malformed ({exc})") from exc
    try:
        return Event.model_validate(body)
    except PydanticValidationError as exc:
        raise WebhookVerificationError("webhook verified but its body is not an event") from exc
