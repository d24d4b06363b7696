"""The settlement files reconciliation-svc imports, one format per provider (README "Settlement files")."""

from __future__ import annotations

from reconciliation_svc.domain.settlement_csv.base import LineError, ParsedLine, SettlementFormat, parse_settlement
from reconciliation_svc.domain.settlement_csv.click import ClickSettlement
from reconciliation_svc.domain.settlement_csv.octo import OctoSettlement
from reconciliation_svc.domain.settlement_csv.payme import PaymeReport
from reconciliation_svc.domain.settlement_csv.stripe import StripeBalanceReport

FORMATS: dict[str, SettlementFormat] = {
    fmt.provider: fmt for fmt in (StripeBalanceReport(), PaymeReport(), ClickSettlement(), OctoSettlement())
}

__all__ = ["FORMATS", "LineError", "ParsedLine", "SettlementFormat", "parse_settlement"]
