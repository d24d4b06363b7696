"""What a consumer notes about an event before handling it: the payment it is about."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from billing_contracts.events import parse_event
from billing_runtime.consuming import payment_id_of
from billing_runtime.testing import fresh_python

GOLDEN = Path(__file__).parents[2] / "contracts" / "tests" / "golden"
SAMPLES = sorted(GOLDEN.glob("*.json"))


def _named_payment(raw: dict[str, object]) -> object:
    """The payment id the sample's data names, read from its JSON: ``payment_id``, or ``payment.id``."""
    data = raw["data"]
    assert isinstance(data, dict)
    payment = data.get("payment")
    return data.get("payment_id") or (payment.get("id") if isinstance(payment, dict) else None)


def test_the_golden_samples_are_found() -> None:
    assert len(SAMPLES) > 30


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_event_names_the_payment_its_data_names(path: Path) -> None:
    raw = json.loads(path.read_text())
    assert payment_id_of(parse_event(path.read_text())) == _named_payment(raw)


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("payment.created.v1.json", "pay_01jd0000000000000000000000"),
        ("provider.payment.succeeded.v1.json", "pay_01jd0000000000000000000000"),
        ("refund.created.v1.json", "pay_01jd0000000000000000000000"),
        ("endpoint.disabled.v1.json", None),
    ],
)
def test_payment_id_payment_and_none(sample: str, expected: str | None) -> None:
    assert payment_id_of(parse_event((GOLDEN / sample).read_text())) == expected


def test_prepare_parser_builds_the_union_a_fresh_process_has_not_built() -> None:
    # The contracts are built on first use; a consuming process builds the union at start.
    code = (
        "from billing_contracts.events import ANY_EVENT\n"
        "from billing_runtime.consuming import prepare_parser\n"
        "before = ANY_EVENT.pydantic_complete\n"
        "prepare_parser()\n"
        "print(before, ANY_EVENT.pydantic_complete)\n"
    )
    assert fresh_python(code).split() == ["False", "True"]
