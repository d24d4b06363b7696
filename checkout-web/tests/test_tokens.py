from __future__ import annotations

import pytest
from checkout_web.tokens import is_valid_provider_name, is_valid_token


class TestIsValidToken:
    @pytest.mark.parametrize("token", ["a" * 16, "A-b_c" * 20, "x" * 128, "Zm9vYmFyYmF6cXV4cXV1eA"])
    def test_url_safe_base64_of_the_right_length_passes(self, token: str) -> None:
        assert is_valid_token(token)

    @pytest.mark.parametrize(
        "token",
        [
            "",
            "a" * 15,
            "a" * 129,
            "a" * 15 + "=",
            "a" * 16 + "/",
            "a" * 16 + ".",
            "../" + "a" * 16,
            "a" * 16 + "\n",
            "é" * 16,
        ],
    )
    def test_anything_else_fails(self, token: str) -> None:
        assert not is_valid_token(token)


class TestIsValidProviderName:
    @pytest.mark.parametrize(
        ("name", "valid"), [("sandbox", True), ("payme-2", True), ("", False), ("Sand box", False)]
    )
    def test_names(self, name: str, valid: bool) -> None:
        assert is_valid_provider_name(name) is valid
