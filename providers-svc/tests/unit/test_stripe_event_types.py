"""The Stripe event types the setup docs tell an operator to enable are the ones the code acts on
(``services.stripe_webhooks.HANDLED_EVENT_TYPES``): the list in the providers-svc README, "Setting up a
Stripe account", read as written, so neither can change without the other."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from providers_svc.domain.stripe_objects import EVENT_TYPES, KINDS
from providers_svc.services.stripe_webhooks import HANDLED_EVENT_TYPES

SERVICE_ROOT = Path(__file__).resolve().parents[2]
README = SERVICE_ROOT / "README.md"
ROOT_README = SERVICE_ROOT.parent / "README.md"
BEGIN = "<!-- stripe-webhook-events: begin"
END = "<!-- stripe-webhook-events: end -->"
# An event type in backticks: dot-separated lower-case words (``charge.dispute.funds_withdrawn``).
_TYPE = re.compile(r"`([a-z_]+(?:\.[a-z_]+)+)`")


def documented_types() -> list[str]:
    """Every event type named between the list's markers, in order, repeats included."""
    text = README.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1, "the README holds the list once"
    section = text[text.index("### Setting up a Stripe account") :]
    listed = section[section.index(BEGIN) + len(BEGIN) : section.index(END)]
    return _TYPE.findall(listed)


def test_the_readme_lists_exactly_the_handled_event_types() -> None:
    listed = documented_types()
    assert [t for t, n in Counter(listed).items() if n > 1] == [], "each type is listed once"
    assert sorted(set(listed) - HANDLED_EVENT_TYPES) == [], "documented but not handled"
    assert sorted(HANDLED_EVENT_TYPES - set(listed)) == [], "handled but not documented"


def test_the_root_readme_points_to_that_list_instead_of_keeping_its_own() -> None:
    text = ROOT_README.read_text(encoding="utf-8")
    assert "providers-svc/README.md#setting-up-a-stripe-account" in text
    assert "payment_intent.amount_capturable_updated" not in text


def test_every_projected_kind_has_the_events_that_carry_it() -> None:
    assert EVENT_TYPES.keys() == KINDS.keys()
    assert all(EVENT_TYPES.values())
