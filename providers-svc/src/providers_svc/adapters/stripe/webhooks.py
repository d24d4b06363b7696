"""``Stripe-Signature`` (PROTOCOLS.md §4.3), checked by the official library: HMAC-SHA256 of
``"{t}.{raw body}"`` under the endpoint's secret, any ``v1`` matching in constant time (several during a
secret's rotation), ``t`` no older than the tolerance. stripe-python is imported on the first check
(``client.py`` says why).

Not ``stripe.Webhook.construct_event``: that is this very ``verify_header`` followed by building a
``stripe.Event`` from the body. The endpoint finds the account by trying each account's secret, so the
check runs once per secret and the body is parsed once, by us, after one secret verified it (a
``stripe.Event`` is also slower to build than the plain dict the projections read)."""

from __future__ import annotations

# Stripe's own default (stripe-python ``Webhook.DEFAULT_TOLERANCE``).
TOLERANCE_SECONDS = 300


def signed_at(header: str, now: float, *, tolerance: int = TOLERANCE_SECONDS) -> int | None:
    """The signature's ``t`` if ``header`` could be Stripe's at all (ASCII, one recent ``t`` and at least
    one ``v1``), else None. Checked once per request, before the HMAC of the body under each account's
    secret (``signed_by``), so junk costs no hashing however many accounts there are. The ``t`` names
    one delivery attempt: Stripe signs every attempt afresh."""
    if not header.isascii():
        return None
    pairs = [item.split("=", 1) for item in header.split(",") if "=" in item]
    stamps = [value for key, value in pairs if key.strip() == "t"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not any(key.strip() == "v1" for key, _ in pairs):
        return None
    # As the library reads it (``int``): "t=0017…" signs the same payload as "t=17…".
    stamp = int(stamps[0])
    return stamp if stamp >= now - tolerance else None


def plausible(header: str, now: float, *, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` could be Stripe's at all (``signed_at``)."""
    return signed_at(header, now, tolerance=tolerance) is not None


def signed_by(body: str, header: str, secret: str, *, tolerance: int = TOLERANCE_SECONDS) -> bool:
    """Whether ``header`` signs ``body`` (the raw body, decoded as UTF-8) with ``secret``, recently."""
    if not header.isascii():
        # Stripe's headers are ASCII; the library's constant-time compare raises TypeError on anything else.
        return False
    import stripe

    try:
        stripe.WebhookSignature.verify_header(body, header, secret, tolerance)
    except stripe.SignatureVerificationError:
        return False
    return True


def signature_header(body: str, secret: str, timestamp: int | None = None) -> str:
    """A header as Stripe would send it (tests, and the fake Stripe's deliveries we build ourselves)."""
    import stripe

    return str(stripe.WebhookSignature.generate_signature_header(body, secret, timestamp))
