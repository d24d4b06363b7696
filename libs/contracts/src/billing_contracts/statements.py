"""One line of a provider statement, as reconciliation-svc compares it with its own records.

providers-svc produces them from the provider's own reports (``GET /internal/statements``: Stripe's
balance transactions and charges, Click's and Octo's status by our id, what we answered Payme's
``GetStatement``), and reconciliation-svc parses a settlement CSV into the same shape. Amounts are
minor units + ISO 4217, whatever the provider's own units.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from billing_contracts.config import CONTRACT

# ``dispute``: money a payer's dispute (chargeback) moved, one line per movement (added within v1:
# a reader of an older version never receives one, only settlement files of its own parsing hold them).
StatementKind = Literal["payment", "refund", "dispute"]
# The provider's status, normalised: a payment ``succeeded`` (money taken), ``failed``/``cancelled`` (no
# money), ``pending``; ``refunded`` for a payment the provider reports as reversed in full. A dispute
# line is ``withdrawn`` (the disputed amount taken back from the merchant: money out) or
# ``reinstated`` (given back, a won dispute: money in).
StatementStatus = Literal["succeeded", "failed", "cancelled", "pending", "refunded", "withdrawn", "reinstated"]


class StatementRecord(BaseModel):
    """A provider's record of one payment or refund."""

    model_config = CONTRACT

    provider: str
    account_id: str
    kind: StatementKind = "payment"
    # The provider's id: Stripe ``pi_...``/``re_...``, Click ``click_trans_id``, Payme transaction id,
    # Octo payment UUID / refund id.
    provider_reference: str
    # A dispute line's payment as the provider names it (Stripe ``pi_...``, else ``ch_...``), by which
    # it is matched when the dispute itself (``provider_reference``, Stripe ``dp_...``) is not known.
    # Optional within v1.
    payment_reference: str | None = None
    # Our ids where the provider carries them (Click ``merchant_trans_id``, Payme ``account``, Stripe
    # metadata, Octo ``shop_transaction_id``/``shop_refund_id``); None when it does not.
    payment_id: str | None = None
    refund_id: str | None = None
    amount: int
    currency: str
    status: StatementStatus
    occurred_at: datetime
    # Where the line came from: ``api`` (providers-svc asked the provider), ``our_answers`` (Payme: what
    # we answered GetStatement), ``csv`` (an imported settlement file, with ``line``).
    origin: Literal["api", "our_answers", "csv"] = "api"
    line: int | None = None
