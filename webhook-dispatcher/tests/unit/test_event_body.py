"""The stored webhook body of an event: the ingest serializes ``data`` straight from the model
(``event_body_of``); every other writer (``webhook.test``, ``endpoint.disabled``) from a dict
(``event_body``). Both must give the same bytes for every event the contracts know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from billing_contracts.events import parse_event
from webhook_dispatcher.services.fanout import event_body, event_body_of

GOLDEN = Path(__file__).parents[3] / "libs" / "contracts" / "tests" / "golden"
SAMPLES = sorted(GOLDEN.glob("*.json"))


def _from_dict(raw: str) -> str:
    event = parse_event(raw)
    data = event.model_dump(mode="json")["data"]
    return event_body(event.event_id, event.event_type, event.occurred_at, data, livemode=event.livemode)


def test_the_golden_samples_are_found() -> None:
    assert len(SAMPLES) > 30


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_event_gives_the_same_bytes_either_way(path: Path) -> None:
    raw = path.read_text()
    assert event_body_of(parse_event(raw)) == _from_dict(raw)


def test_text_outside_ascii_and_control_characters_give_the_same_bytes() -> None:
    sample = json.loads((GOLDEN / "payment.created.v1.json").read_text())
    sample["data"]["payment"]["metadata"] = {"имя": 'Ҳасан "q" \\ \n\t\x01\x7f 😀 \u2028 </script>'}
    sample["data"]["payment"]["description"] = "O\u02bbzbekiston"  # the turned comma of Uzbek Latin
    raw = json.dumps(sample)
    body = event_body_of(parse_event(raw))
    assert body == _from_dict(raw)
    assert json.loads(body)["data"]["payment"]["metadata"] == sample["data"]["payment"]["metadata"]
    assert "Ҳасан" in body  # UTF-8, not \u escapes (ensure_ascii=False)
