"""The states of a Payme transaction and the reasons Payme gives for cancelling one (PROTOCOLS.md §2.3)."""

from __future__ import annotations

from enum import IntEnum

# A created transaction lives 12 hours from Payme's own ``time`` (CreateTransaction's param), not from ours.
TIMEOUT_MS = 43_200_000


class TransactionState(IntEnum):
    CREATED = 1
    PERFORMED = 2
    CANCELLED = -1
    CANCELLED_AFTER_PERFORM = -2

    @property
    def is_cancelled(self) -> bool:
        return self.value < 0


class CancelReason(IntEnum):
    """Exactly the official template's list (``Transaction.php``). paytechuz's 1-9 with 6 = unknown is wrong."""

    RECEIVER_NOT_FOUND = 1
    DEBIT_ERROR = 2
    EXECUTION_ERROR = 3
    TIMEOUT = 4
    REFUND = 5
    UNKNOWN = 10
