"""``plausible``: the one check of a ``Stripe-Signature`` header made before any HMAC, so a junk or
stale header costs no hashing of the body under each account's secret."""

from __future__ import annotations

import pytest
from providers_svc.adapters.stripe.webhooks import TOLERANCE_SECONDS, plausible, signature_header, signed_by

NOW = 1_800_000_000


@pytest.mark.parametrize(
    "header",
    [
        f"t={NOW},v1=abc",
        f"t={NOW - TOLERANCE_SECONDS},v1=abc,v1=def,v0=xyz",
        f"t={NOW + 60},v1=abc",  # Stripe's own check refuses only old timestamps
    ],
)
def test_a_header_of_stripes_shape_and_recent_passes(header: str) -> None:
    assert plausible(header, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "garbage",
        f"t={NOW}",  # no v1
        "v1=abc,v0=def,t=",  # no time
        f"t={NOW},t={NOW},v1=abc",  # two times
        f"t=-{NOW},v1=abc",
        f"t={NOW - TOLERANCE_SECONDS - 1},v1=abc",  # stale
        "t=\u0661\u0662,v1=abc",  # digits, but not ASCII ones
        f"t={NOW},v1=\u00e9",
    ],
)
def test_anything_else_is_refused_before_hashing(header: str) -> None:
    assert not plausible(header, NOW)


def test_a_real_signature_is_plausible_and_verifies() -> None:
    body = '{"id":"evt_1","type":"payment_intent.succeeded"}'
    header = signature_header(body, "whsec_test", 1700000000)
    assert plausible(header, 1700000000)
    # PROTOCOLS.md §4.3's vector.
    assert "v1=001ce3ef73e456cedaab328328720d3ad59defb8bbd0f1518f46c04ad4ac0bb7" in header
    assert not signed_by(body, header, "whsec_other", tolerance=10**10)
    assert signed_by(body, header, "whsec_test", tolerance=10**10)
