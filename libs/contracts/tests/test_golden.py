"""Golden samples must keep parsing forever; never edit one, add a new file instead."""

import json
from pathlib import Path

import pytest
from billing_contracts import EVENT_CLASSES, parse_event
from billing_contracts.routing import routing_key

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.json"))


def test_every_event_type_has_a_golden_sample() -> None:
    covered = {f.name.rsplit(".v", 1)[0] for f in FILES}
    assert set(EVENT_CLASSES) <= covered


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_golden_sample_parses_and_round_trips(path: Path) -> None:
    raw = path.read_text()
    event = parse_event(raw)
    # ``<type>.v<version>.json``, or ``<type>.v<version>.<variant>.json`` for a later shape of one version
    # (optional fields added within it).
    assert path.name.startswith(f"{event.event_type}.v{event.schema_version}.")
    assert parse_event(event.model_dump_json()) == event
    assert routing_key(event.source, event.event_type, event.schema_version).endswith(f"{event.event_type}.v1")


def test_unknown_fields_are_ignored() -> None:
    raw = json.loads((GOLDEN / "payment.created.v1.json").read_text())
    raw["added_later"] = True
    raw["data"]["payment"]["new_field"] = 1
    assert parse_event(json.dumps(raw)).event_type == "payment.created"


def test_optional_fields_added_within_v1_default_for_old_samples() -> None:
    old = parse_event((GOLDEN / "payment.succeeded.v1.json").read_text())
    new = parse_event((GOLDEN / "payment.succeeded.v1.livemode-sequence.json").read_text())
    assert (old.livemode, old.data.payment.livemode, old.data.payment.sequence) == (False, False, 0)
    assert (new.livemode, new.data.payment.livemode, new.data.payment.sequence) == (True, True, 3)


def test_dispute_fields_added_within_v1_default_for_old_samples() -> None:
    old = parse_event((GOLDEN / "payment.succeeded.v1.livemode-sequence.json").read_text())
    closed = parse_event((GOLDEN / "dispute.closed.v1.json").read_text())
    assert (old.data.payment.amount_disputed, old.data.payment.dispute) == (0, None)
    assert closed.event_type == "dispute.closed"
    assert closed.data.dispute == closed.data.payment.dispute
    assert (closed.data.dispute.status, closed.data.payment.amount_disputed) == ("lost", 5000)


def test_observed_via_and_account_added_within_v1_default_for_old_samples() -> None:
    old = parse_event((GOLDEN / "provider.payment.succeeded.v1.json").read_text())
    new = parse_event((GOLDEN / "provider.payment.succeeded.v1.observed-account.json").read_text())
    assert (old.data.observed_via, old.data.account_id) == ("callback", None)
    assert (new.data.observed_via, new.data.account_id) == ("status_check", "pac_01jd0000000000000000000000")


def test_attempt_count_added_within_v1_defaults_for_old_samples() -> None:
    old = parse_event((GOLDEN / "payment.failed.v1.json").read_text())
    failed = parse_event((GOLDEN / "payment.attempt_failed.v1.json").read_text())
    assert old.data.payment.attempt_count == 0
    assert failed.event_type == "payment.attempt_failed"
    assert (failed.data.payment.status, failed.data.payment.attempt_count) == ("CREATED", 1)
    assert (failed.data.attempt.status, failed.data.attempt.failure_code) == ("failed", "payme_-31008")


def test_capture_fields_added_within_v1_default_for_old_samples() -> None:
    old = parse_event((GOLDEN / "payment.succeeded.v1.livemode-sequence.json").read_text())
    new = parse_event((GOLDEN / "payment.succeeded.v1.manual-capture.json").read_text())
    held = parse_event((GOLDEN / "provider.payment.authorized.v1.json").read_text())
    assert (old.data.payment.capture_method, old.data.payment.amount_captured) == ("automatic", 0)
    assert old.data.payment.authorization_expires_at is None
    assert (new.data.payment.capture_method, new.data.payment.amount_captured) == ("manual", 3000)
    assert held.event_type == "provider.payment.authorized"
    assert held.data.authorization_expires_at is not None
