"""``Sandbox-Signature``: ``t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``, 300 s tolerance."""

from __future__ import annotations

import pytest
from providers_svc.adapters.sandbox import InvalidSignatureError, compute_signature, sign, verify

SECRET = "sandbox-test-secret"
BODY = b'{"id":"sbevt_1"}'
NOW = 1_700_000_000


class TestSign:
    def test_fixed_vector(self) -> None:
        # Computed independently (python -c "hmac.new(secret, b'1700000000.' + body, sha256)").
        expected = "a16ca5ebefa909fe0a0d33e3cab7f4525eed0f22b1fa67fb5cff14c39eb55f7b"
        assert compute_signature(SECRET, NOW, BODY) == expected
        assert sign(SECRET, BODY, NOW) == f"t={NOW},v1={expected}"


class TestVerify:
    def test_valid_signature_passes(self) -> None:
        verify(SECRET, sign(SECRET, BODY, NOW), BODY, now=NOW)

    def test_valid_within_tolerance_both_ways(self) -> None:
        verify(SECRET, sign(SECRET, BODY, NOW - 299), BODY, now=NOW)
        verify(SECRET, sign(SECRET, BODY, NOW + 299), BODY, now=NOW)

    def test_tampered_body_fails(self) -> None:
        header = sign(SECRET, BODY, NOW)
        with pytest.raises(InvalidSignatureError):
            verify(SECRET, header, b'{"id":"sbevt_2"}', now=NOW)

    def test_wrong_secret_fails(self) -> None:
        with pytest.raises(InvalidSignatureError):
            verify(SECRET, sign("another-secret", BODY, NOW), BODY, now=NOW)

    @pytest.mark.parametrize("skew", [301, -301, 86_400])
    def test_stale_or_future_timestamp_fails(self, skew: int) -> None:
        with pytest.raises(InvalidSignatureError, match="tolerance"):
            verify(SECRET, sign(SECRET, BODY, NOW - skew), BODY, now=NOW)

    def test_signature_of_another_timestamp_fails(self) -> None:
        valid = compute_signature(SECRET, NOW, BODY)
        with pytest.raises(InvalidSignatureError):
            verify(SECRET, f"t={NOW + 1},v1={valid}", BODY, now=NOW)

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "garbage",
            "t=1700000000",
            "v1=" + "0" * 64,
            "t=abc,v1=" + "0" * 64,
            "t=-5,v1=" + "0" * 64,
            "t=1700000000,t=1700000000,v1=" + "0" * 64,
            "t=1700000000;v1=" + "0" * 64,
            "t=1700000000,v1=" + "é" * 64,
            "t=" + "9" * 5000 + ",v1=" + "0" * 64,
        ],
    )
    def test_malformed_header_fails(self, header: str | None) -> None:
        with pytest.raises(InvalidSignatureError):
            verify(SECRET, header, BODY, now=NOW)

    def test_uppercase_hex_is_rejected(self) -> None:
        with pytest.raises(InvalidSignatureError):
            verify(SECRET, f"t={NOW},v1={compute_signature(SECRET, NOW, BODY).upper()}", BODY, now=NOW)

    def test_one_matching_v1_among_several_passes(self) -> None:
        # A secret rotation: the sender signs with the old and the new secret.
        header = f"t={NOW},v1={compute_signature('old-secret', NOW, BODY)},v1={compute_signature(SECRET, NOW, BODY)}"
        verify(SECRET, header, BODY, now=NOW)

    def test_unknown_schemes_are_ignored(self) -> None:
        header = f"t={NOW},v0=whatever,v1={compute_signature(SECRET, NOW, BODY)}"
        verify(SECRET, header, BODY, now=NOW)
