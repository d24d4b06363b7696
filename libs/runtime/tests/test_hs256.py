"""PyJWT imported without cryptography (``billing_runtime.hs256``): HS256 tokens work, cryptography
stays importable for whoever needs it, and a process that loaded it first keeps it."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    # A fresh interpreter: this test process has imported cryptography already.
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], check=True, capture_output=True, text=True, timeout=60
    )
    return done.stdout.strip()


def test_hs256_tokens_are_signed_and_verified_without_cryptography() -> None:
    out = _run(
        """
        import sys
        from billing_runtime.internal_auth import sign_internal, verify_internal
        from billing_runtime.hs256 import jwt
        assert "cryptography" not in sys.modules
        token = sign_internal("k" * 32, issuer="gateway", audience="payments", tenant_id="t_1")
        caller = verify_internal("k" * 32, token, audience="payments")
        assert (caller.service, caller.tenant_id) == ("gateway", "t_1"), caller
        try:
            jwt.decode(token, "x" * 32, algorithms=["HS256"])
        except jwt.InvalidSignatureError:
            pass
        else:
            raise AssertionError("a token signed with another key verified")
        assert "cryptography" not in sys.modules
        import cryptography.fernet  # still there for a key ring loaded later
        print("ok", jwt.algorithms.has_crypto)
        """
    )
    assert out == "ok False"


def test_a_process_that_loaded_cryptography_first_keeps_it_for_pyjwt() -> None:
    out = _run(
        """
        import cryptography.fernet
        from billing_runtime.hs256 import jwt
        print(jwt.algorithms.has_crypto)
        """
    )
    assert out == "True"
