"""``GET /internal/statements``: one provider account's records of a period, as
``billing_contracts.statements.StatementRecord`` lines, streamed page by page (never the whole period
in memory). Which records depends on what the provider can tell (docs/INTERNAL.md "Reconciliation"):

- ``sandbox``: the sandbox bank's ledger (``ledgers.sandbox_records``);
- Payme: what we answered (or would answer) its ``GetStatement`` (``ledgers.payme_records``);
- Click, Octo: the provider's status of each of the account's transactions, by our id
  (``by_status.status_records``);
- Stripe: its charges and refund balance transactions of the period (``stripe_lists.stripe_records``);
- then, for the others, a line per refund the provider can tell of (``refund_lines``)."""
