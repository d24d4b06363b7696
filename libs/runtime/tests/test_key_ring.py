"""The key ring checks its keys when it is made and loads cryptography with its first use."""

from __future__ import annotations

import pytest
from billing_runtime.key_ring import KeyRing, UndecryptableError, generate_key
from billing_runtime.testing import fresh_python


@pytest.mark.parametrize(
    "value",
    [
        "",
        " , ",
        "not-base64!",
        "c2hvcnQ=",  # base64 of 5 bytes
        generate_key() + ",YWJj",  # a good key beside a bad one
    ],
)
def test_a_wrong_key_is_refused_when_the_ring_is_made(value: str) -> None:
    with pytest.raises(ValueError, match="key") as refused:
        KeyRing(value)
    assert "YWJj" not in str(refused.value)  # never quotes a key


def test_the_first_key_encrypts_and_every_key_decrypts() -> None:
    old, new = generate_key(), generate_key()
    written_before = KeyRing(old).encrypt("s3cret")
    ring = KeyRing(f"{new},{old}")
    assert ring.decrypt(written_before) == "s3cret"
    assert KeyRing(new).decrypt(ring.encrypt("other")) == "other"
    assert KeyRing(new).decrypt(ring.rotate(written_before)) == "s3cret"
    with pytest.raises(UndecryptableError):
        KeyRing(generate_key()).decrypt(written_before)


def test_cryptography_is_loaded_by_the_first_use_not_by_the_ring() -> None:
    # About 6 MiB of RSS that most processes holding a ring seldom need (the module's docstring).
    code = (
        "import sys\n"
        "from billing_runtime.key_ring import KeyRing\n"
        "ring = KeyRing('MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=')\n"
        "before = 'cryptography' in sys.modules\n"
        "assert ring.decrypt(ring.encrypt('x')) == 'x'\n"
        "print(before, 'cryptography' in sys.modules)\n"
    )
    assert fresh_python(code).split() == ["False", "True"]
