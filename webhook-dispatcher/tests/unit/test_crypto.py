"""Endpoint signing secrets at rest: encrypted under the first key of WEBHOOKS_ENCRYPTION_KEY, readable
under any key listed, so a key can be rotated without losing an endpoint's secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from webhook_dispatcher.crypto import SecretBox, generate_key
from webhook_dispatcher.settings import Settings


class TestRotation:
    def test_a_secret_sealed_with_the_old_key_opens_once_a_new_one_is_in_front(self) -> None:
        old, new = generate_key(), generate_key()
        sealed = SecretBox(old).encrypt("whsec_endpoint")
        rotated = SecretBox(f"{new},{old}")
        assert rotated.decrypt(sealed) == "whsec_endpoint"
        resealed = rotated.encrypt("whsec_endpoint")
        assert SecretBox(new).decrypt(resealed) == "whsec_endpoint"  # new writes need only the new key

    def test_without_its_key_a_secret_does_not_open(self) -> None:
        sealed = SecretBox(generate_key()).encrypt("whsec_endpoint")
        with pytest.raises(RuntimeError, match="does not decrypt with the configured keys"):
            SecretBox(generate_key()).decrypt(sealed)


class TestSetting:
    @pytest.mark.parametrize(
        ("value", "problem"),
        [("", "is required"), ("nope", "key 1 must be url-safe base64"), ("{k},nope", "key 2 must be url-safe base64")],
    )
    def test_a_bad_key_list_is_refused_by_name_never_echoed(self, value: str, problem: str) -> None:
        key = generate_key()
        with pytest.raises(ValidationError) as info:
            Settings(internal_secret="i" * 32, encryption_key=value.format(k=key))  # type: ignore[arg-type]
        assert "WEBHOOKS_ENCRYPTION_KEY" in str(info.value) and problem in str(info.value)
        assert key not in str(info.value)

    def test_two_keys_are_taken(self) -> None:
        keys = f"{generate_key()},{generate_key()}"
        assert Settings(internal_secret="i" * 32, encryption_key=keys).encryption_key.get_secret_value() == keys  # type: ignore[arg-type]
