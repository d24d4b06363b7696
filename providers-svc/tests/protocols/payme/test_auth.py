"""Basic auth: login "Paycom", password = the account's key; the one matching account or -32504."""

from __future__ import annotations

import base64
import hmac

import pytest
from providers_svc.protocols.payme import auth
from providers_svc.protocols.payme.auth import authenticate, parse_basic_authorization
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode

KEY_A = "kEy-A" * 7 + "x"  # 36 characters, as a kassa KEY
KEY_B = "kEy-B" * 7 + "y"


def basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


def _denied(header: str | None, candidates: list[tuple[str, str]]) -> PaymeError:
    with pytest.raises(PaymeError) as caught:
        authenticate(header, candidates)
    assert caught.value.code is PaymeErrorCode.INSUFFICIENT_PRIVILEGE
    return caught.value


class TestParseBasicAuthorization:
    def test_documented_example(self) -> None:
        # PROTOCOLS.md §2.1: Paycom:paymekey gives Basic UGF5Y29tOnBheW1la2V5.
        credentials = parse_basic_authorization("Basic UGF5Y29tOnBheW1la2V5")
        assert (credentials.login, credentials.password) == ("Paycom", "paymekey")

    def test_scheme_is_case_insensitive_and_colons_stay_in_the_password(self) -> None:
        credentials = parse_basic_authorization("basic " + basic("Paycom:a:b")[6:])
        assert credentials.password == "a:b"

    def test_password_is_not_in_repr(self) -> None:
        assert KEY_A not in repr(parse_basic_authorization(basic(f"Paycom:{KEY_A}")))


class TestAuthenticate:
    def test_picks_the_account_whose_key_matches(self) -> None:
        candidates = [("pac_a", KEY_A), ("pac_b", KEY_B)]
        assert authenticate(basic(f"Paycom:{KEY_B}"), candidates) == "pac_b"
        assert authenticate(basic(f"Paycom:{KEY_A}"), candidates) == "pac_a"

    @pytest.mark.parametrize(
        "header",
        [
            None,
            "",
            "Basic",
            "Basic ",
            "Bearer " + basic(f"Paycom:{KEY_A}")[6:],
            basic(f"Paycom:{KEY_A}")[6:],
            "Basic " + basic(f"Paycom:{KEY_A}")[6:-2],  # padding cut
            "Basic !!!!",
            "Basic " + base64.b64encode(b"Paycom:\xff\xfe").decode(),
            basic(f"Paycom{KEY_A}"),  # no colon
            basic("Paycom:"),
            basic(":" + KEY_A),
        ],
    )
    def test_malformed_header_is_32504(self, header: str | None) -> None:
        _denied(header, [("pac_a", KEY_A)])

    def test_wrong_key_is_32504(self) -> None:
        _denied(basic(f"Paycom:{KEY_A}x"), [("pac_a", KEY_A), ("pac_b", KEY_B)])

    def test_wrong_login_is_32504(self) -> None:
        _denied(basic(f"paycom:{KEY_A}"), [("pac_a", KEY_A)])

    def test_no_candidates_is_32504(self) -> None:
        _denied(basic(f"Paycom:{KEY_A}"), [])

    def test_two_accounts_with_the_same_key_are_refused(self) -> None:
        _denied(basic(f"Paycom:{KEY_A}"), [("pac_a", KEY_A), ("pac_c", KEY_A)])

    def test_login_can_be_configured(self) -> None:
        assert authenticate(basic(f"Other:{KEY_A}"), [("pac_a", KEY_A)], login="Other") == "pac_a"

    def test_error_never_shows_a_key(self) -> None:
        error = _denied(basic(f"Paycom:{KEY_A}x"), [("pac_a", KEY_A)])
        shown = f"{error} {error!r} {error.as_json()} {error.args}"
        assert KEY_A not in shown
        assert "pac_a" not in shown

    def test_every_candidate_is_compared_in_constant_time(self, monkeypatch: pytest.MonkeyPatch) -> None:
        compared: list[tuple[bytes, bytes]] = []
        real = hmac.compare_digest

        def spy(a: bytes, b: bytes) -> bool:
            compared.append((a, b))
            return real(a, b)

        monkeypatch.setattr(auth.hmac, "compare_digest", spy)
        candidates = [("pac_a", KEY_A), ("pac_b", KEY_B), ("pac_c", "another")]
        assert authenticate(basic(f"Paycom:{KEY_A}"), candidates) == "pac_a"
        # No early exit on the first match: the login plus every key.
        assert sorted(b for _, b in compared) == sorted([b"Paycom", KEY_A.encode(), KEY_B.encode(), b"another"])
