from __future__ import annotations

import pytest
from reconciliation_svc.domain.discrepancies import (
    NewDiscrepancy,
    anomaly_key,
    can_change,
    discrepancy_key,
)


class TestDedupeKeys:
    def test_the_subject_is_the_refund_then_the_payment_then_the_reference(self) -> None:
        assert discrepancy_key("amount_mismatch", "click", refund_id="rfnd_1", payment_id="pay_1") == (
            "amount_mismatch:click:rfnd_1"
        )
        assert discrepancy_key("status_mismatch", "payme", payment_id="pay_1", provider_reference="x") == (
            "status_mismatch:payme:pay_1"
        )
        assert discrepancy_key("missing_ours", "stripe", provider_reference="pi_1:a") == "missing_ours:stripe:pi_1:a"

    def test_the_values_found_are_not_part_of_the_key(self) -> None:
        # The same fact found twice with other evidence is one discrepancy.
        first = discrepancy_key("amount_mismatch", "octo", payment_id="pay_1")
        assert first == discrepancy_key("amount_mismatch", "octo", payment_id="pay_1")

    def test_a_key_needs_a_subject_and_a_known_kind(self) -> None:
        with pytest.raises(ValueError, match="needs"):
            discrepancy_key("duplicate", "click")
        with pytest.raises(ValueError, match="not a matching kind"):
            discrepancy_key("weird", "click", payment_id="pay_1")
        with pytest.raises(ValueError, match="not a matching kind"):
            discrepancy_key("anomaly", "click", payment_id="pay_1")

    def test_a_separator_in_a_leading_part_is_refused(self) -> None:
        with pytest.raises(ValueError, match="free of"):
            discrepancy_key("duplicate", "a:b", payment_id="pay_1")

    def test_anomaly_keys_are_per_source_and_anomaly(self) -> None:
        assert anomaly_key("providers", "anm_1") == "anomaly:providers:anm_1"
        assert anomaly_key("payments", "anm_1") != anomaly_key("providers", "anm_1")

    def test_unknown_kind_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown discrepancy kind"):
            NewDiscrepancy(kind="nope", provider="click", dedupe_key="k", detail="d")  # type: ignore[arg-type]


class TestTransitions:
    @pytest.mark.parametrize(
        ("from_state", "to_state", "allowed"),
        [
            ("open", "resolved", True),
            ("open", "ignored", True),
            ("open", "open", False),
            ("resolved", "ignored", False),
            ("resolved", "open", False),
            ("ignored", "resolved", False),
        ],
    )
    def test_only_an_open_discrepancy_changes(self, from_state: str, to_state: str, allowed: bool) -> None:
        assert can_change(from_state, to_state) is allowed
