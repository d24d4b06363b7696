"""Provider accounts (API.md "Provider accounts"): one merchant's credentials at one provider, test or
production, and which of them a tenant's payments may be paid through.

The rules that do not depend on storage live here: which credential fields each provider needs, which
currencies it can take, which settings it knows, and which tenant may use which account (a test tenant
only ``test`` accounts, a live tenant only ``production`` ones).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Environment(StrEnum):
    TEST = "test"
    PRODUCTION = "production"


# Credential fields each provider needs (API.md, PROTOCOLS.md); all required, all strings.
CREDENTIAL_FIELDS: Mapping[str, tuple[str, ...]] = {
    "payme": ("merchant_id", "key"),
    "click": ("service_id", "merchant_id", "merchant_user_id", "secret_key"),
    "octo": ("shop_id", "secret"),
    "stripe": ("secret_key", "webhook_secret"),
}
PROVIDERS = tuple(CREDENTIAL_FIELDS)
# Credential fields a provider may be given besides those. Octo's unique_key: the static key Octo's team
# issues for callback signatures under the unique_key reading (PROTOCOLS.md §3.4: paytechuz configures it
# apart from the shop secret, as OCTO_UNIQUE_KEY); required with that reading (``check_signature_key``).
OPTIONAL_CREDENTIAL_FIELDS: Mapping[str, tuple[str, ...]] = {"octo": ("unique_key",)}

# The currencies a provider can take at all; an account's ``currencies`` narrow them. None: any ISO
# 4217 code (Stripe settles in many; the payment's own currency checks still apply).
PROVIDER_CURRENCIES: Mapping[str, frozenset[str] | None] = {
    "payme": frozenset({"UZS"}),
    "click": frozenset({"UZS"}),
    "octo": frozenset({"UZS", "USD"}),
    "stripe": None,
}

# Settings each provider knows, with their defaults (anything else is refused, so a typo is seen).
_SETTINGS_DEFAULTS: Mapping[str, Mapping[str, str]] = {
    # cancel_after_perform: what Payme's CancelTransaction of a performed transaction gets: "refund" (the
    # cancel is accepted and recorded as a reversal) or "refuse" (-31007: the goods are delivered for good).
    # language: of Payme's checkout page (§2.6: ru, uz or en).
    "payme": {"account_field": "order_id", "cancel_after_perform": "refund", "language": "ru"},
    # Click's Merchant API host (status, reversal; its path /v2/merchant is the adapter's): a test
    # account may point at a fake Click on loopback.
    "click": {"api_base": "https://api.click.uz"},
    # signature_formula: PROTOCOLS.md §3.4 has two readings; the documented one unless Octo says otherwise.
    # auto_capture: "true" one-stage, "false" two-stage (we capture or cancel each authorised payment).
    "octo": {"api_base": "https://secure.octo.uz", "signature_formula": "documented", "auto_capture": "true"},
    # capture_method: "automatic", or "manual" (we capture each authorised intent, or cancel it when the
    # payment may no longer be paid). connected_account (Connect: act for ``acct_...`` with the platform's
    # key) and publishable_key (Stripe Elements on our payer page) are optional: "" is unset.
    "stripe": {
        "flow": "checkout_session",
        "api_base": "https://api.stripe.com",
        "capture_method": "automatic",
        "connected_account": "",
        "publishable_key": "",
    },
}
# Settings that may stay unset (their default is ""): given, they must still be well formed.
_OPTIONAL_SETTINGS = frozenset({("stripe", "connected_account"), ("stripe", "publishable_key")})
_PAYME_CANCEL_AFTER_PERFORM = frozenset({"refund", "refuse"})
_STRIPE_FLOWS = frozenset({"checkout_session", "payment_intent"})
_STRIPE_CAPTURE_METHODS = frozenset({"automatic", "manual"})
# Stripe's ids: ``acct_`` + letters and digits; keys ``sk_``/``rk_`` (secret, restricted) and ``pk_``
# (publishable) of a mode; signing secrets ``whsec_``. Checked so a pasted typo is refused at once.
_STRIPE_ACCOUNT = re.compile(r"acct_[A-Za-z0-9]{1,64}")
_STRIPE_PUBLISHABLE_KEY = re.compile(r"pk_(test|live)_[A-Za-z0-9]{1,247}")
_STRIPE_CREDENTIALS: Mapping[str, re.Pattern[str]] = {
    "secret_key": re.compile(r"(sk|rk)_(test|live)_[A-Za-z0-9]{1,247}"),
    "webhook_secret": re.compile(r"whsec_[A-Za-z0-9+/=]{1,250}"),
}
_OCTO_FORMULAS = frozenset({"documented", "unique_key"})
_BOOLEANS = frozenset({"true", "false"})
_CURRENCY = re.compile(r"[A-Z]{3}")
_ACCOUNT_FIELD = re.compile(r"[a-z][a-z0-9_]{0,63}")
# A test account may point at a fake provider on loopback (localstripe, our Octo fake): http is allowed.
_API_BASE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+/?")
MAX_CREDENTIAL_LENGTH = 4096


@dataclass(frozen=True)
class BoundAccount:
    """An account as an adapter uses it: its credentials in the clear, its settings with their defaults.
    Built only inside providers-svc (``services.accounts.bound_account``) and never serialized."""

    id: str
    provider: str
    environment: Environment
    currencies: frozenset[str]
    settings: Mapping[str, str]
    credentials: Mapping[str, str]
    # The account the provider's simulator plays against (API.md: test tenants without an account).
    simulator: bool = False

    @property
    def test(self) -> bool:
        """Moves no real money: its provider's word never moves a live transaction."""
        return self.environment is Environment.TEST

    def __repr__(self) -> str:
        # Never the credentials, whatever prints this.
        return f"BoundAccount(id={self.id!r}, provider={self.provider!r}, environment={self.environment.value!r})"


def settings_with_defaults(provider: str, settings: Mapping[str, Any]) -> dict[str, str]:
    """The provider's default settings overlaid with the stored ones (a setting added later has its default)."""
    return {**_SETTINGS_DEFAULTS[provider], **{k: str(v) for k, v in settings.items()}}


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field of a request (``credentials.key``, ``currencies``...)."""

    field: str
    message: str


class AccountRuleError(Exception):
    """A request breaks one of the rules above; ``problems`` names every field concerned."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def check_credentials(
    provider: str, credentials: Mapping[str, Any], *, partial: bool = False, environment: str | None = None
) -> dict[str, str]:
    """The credentials to store, or ``AccountRuleError`` naming each missing, unknown or malformed field.
    ``partial``: an update, which replaces only the fields it gives. ``environment``: the account's, which
    a Stripe key's own mode must match (a live key on a test account would take real money for a test
    tenant). Values are never quoted back."""
    required = CREDENTIAL_FIELDS[provider]
    fields = required + OPTIONAL_CREDENTIAL_FIELDS.get(provider, ())
    problems = [
        FieldProblem(f"credentials.{name}", f"is not a credential of {provider}")
        for name in credentials
        if name not in fields
    ]
    checked: dict[str, str] = {}
    for name in fields:
        if name not in credentials:
            if not partial and name in required:
                problems.append(FieldProblem(f"credentials.{name}", "is required"))
            continue
        value = credentials[name]
        if not isinstance(value, str) or not value.strip():
            problems.append(FieldProblem(f"credentials.{name}", "must be a non-empty string"))
        elif len(value) > MAX_CREDENTIAL_LENGTH or any(ord(c) < 32 for c in value):
            problems.append(FieldProblem(f"credentials.{name}", "is not a valid credential value"))
        elif provider == "octo" and name == "shop_id" and not (value.isascii() and value.isdigit()):
            problems.append(FieldProblem("credentials.shop_id", "must be Octo's numeric shop id"))
        elif provider == "stripe" and not _STRIPE_CREDENTIALS[name].fullmatch(value):
            problems.append(FieldProblem(f"credentials.{name}", f"is not a Stripe {name.replace('_', ' ')}"))
        elif (
            provider == "stripe"
            and name == "secret_key"
            and environment is not None
            and not _key_of(value, environment)
        ):
            mode = "test" if environment == Environment.TEST else "live"
            problems.append(
                FieldProblem("credentials.secret_key", f"must be a {mode} mode key for a {environment} account")
            )
        else:
            checked[name] = value
    if problems:
        raise AccountRuleError(problems)
    return checked


def check_signature_key(provider: str, settings: Mapping[str, str], credential_names: Collection[str]) -> None:
    """An Octo account on the unique_key reading must hold the key Octo issued for it: the shop secret is
    another credential (it authenticates our calls to Octo), so it is never taken for the key silently."""
    unique_key_reading = provider == "octo" and settings.get("signature_formula") == "unique_key"
    if unique_key_reading and "unique_key" not in credential_names:
        raise AccountRuleError(
            [
                FieldProblem(
                    "credentials.unique_key",
                    "is required when settings.signature_formula is unique_key (the key Octo's team issues "
                    "for callback signatures, not the shop secret)",
                )
            ]
        )


def _key_of(key: str, environment: str) -> bool:
    """Whether a Stripe key (``sk_test_…``, ``rk_live_…``) is of the mode ``environment`` moves money in."""
    return key.split("_", 2)[1] == ("test" if environment == Environment.TEST else "live")


def check_currencies(provider: str, currencies: list[Any]) -> list[str]:
    """The account's currencies (upper-case ISO 4217, no repeats, each one its provider takes)."""
    allowed = PROVIDER_CURRENCIES[provider]
    problems: list[FieldProblem] = []
    checked: list[str] = []
    if not currencies:
        problems.append(FieldProblem("currencies", "must name at least one currency"))
    for code in currencies:
        if not isinstance(code, str) or not _CURRENCY.fullmatch(code):
            problems.append(FieldProblem("currencies", "each must be an ISO 4217 code in upper case"))
        elif allowed is not None and code not in allowed:
            problems.append(FieldProblem("currencies", f"{provider} does not take {code}"))
        elif code not in checked:
            checked.append(code)
    if problems:
        raise AccountRuleError(list(dict.fromkeys(problems)))  # each distinct problem once
    return checked


def check_settings(
    provider: str, settings: Mapping[str, Any], current: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The account's settings: the provider's defaults, then ``current``, then what is given."""
    known = _SETTINGS_DEFAULTS[provider]
    problems = [
        FieldProblem(f"settings.{name}", f"is not a setting of {provider}") for name in settings if name not in known
    ]
    merged = {**known, **(current or {})}
    for name, value in settings.items():
        if name not in known:
            continue
        if isinstance(value, str) and not value and (provider, name) in _OPTIONAL_SETTINGS:
            merged[name] = value
            continue
        if not isinstance(value, str) or not value:
            problems.append(FieldProblem(f"settings.{name}", "must be a non-empty string"))
            continue
        merged[name] = value
    if provider == "payme" and not _ACCOUNT_FIELD.fullmatch(merged["account_field"]):
        problems.append(FieldProblem("settings.account_field", "must be a lower-case identifier"))
    if provider == "payme" and merged["cancel_after_perform"] not in _PAYME_CANCEL_AFTER_PERFORM:
        problems.append(FieldProblem("settings.cancel_after_perform", "must be one of refund, refuse"))
    if provider == "payme" and merged["language"] not in ("ru", "uz", "en"):
        problems.append(FieldProblem("settings.language", "must be one of ru, uz, en"))
    base = merged.get("api_base")
    if base is not None and not _API_BASE.fullmatch(base):
        problems.append(FieldProblem("settings.api_base", "must be an http(s) URL without a path"))
    if provider == "octo" and merged["signature_formula"] not in _OCTO_FORMULAS:
        problems.append(
            FieldProblem("settings.signature_formula", f"must be one of {', '.join(sorted(_OCTO_FORMULAS))}")
        )
    if provider == "octo" and merged["auto_capture"] not in _BOOLEANS:
        problems.append(FieldProblem("settings.auto_capture", "must be true or false"))
    if provider == "stripe" and merged["flow"] not in _STRIPE_FLOWS:
        problems.append(FieldProblem("settings.flow", f"must be one of {', '.join(sorted(_STRIPE_FLOWS))}"))
    if provider == "stripe":
        problems.extend(_stripe_setting_problems(merged))
    if problems:
        raise AccountRuleError(problems)
    return merged


def _stripe_setting_problems(merged: Mapping[str, str]) -> list[FieldProblem]:
    problems = []
    if merged["capture_method"] not in _STRIPE_CAPTURE_METHODS:
        problems.append(FieldProblem("settings.capture_method", "must be one of automatic, manual"))
    connected = merged["connected_account"]
    if connected and not _STRIPE_ACCOUNT.fullmatch(connected):
        problems.append(FieldProblem("settings.connected_account", "must be a Stripe account id (acct_...)"))
    publishable = merged["publishable_key"]
    if publishable and not _STRIPE_PUBLISHABLE_KEY.fullmatch(publishable):
        problems.append(FieldProblem("settings.publishable_key", "must be a Stripe publishable key (pk_...)"))
    return problems


def check_assignment(account_provider: str, account_environment: str, provider: str, *, livemode: bool) -> None:
    """A tenant may be given an account only for that account's provider and in its own mode."""
    problems = []
    if account_provider != provider:
        problems.append(FieldProblem("provider_account_id", f"is a {account_provider} account, not {provider}"))
    wanted = Environment.PRODUCTION if livemode else Environment.TEST
    if account_environment != wanted:
        mode = "live" if livemode else "test"
        problems.append(
            FieldProblem(
                "provider_account_id", f"is a {account_environment} account; a {mode} tenant takes {wanted} ones"
            )
        )
    if problems:
        raise AccountRuleError(problems)
