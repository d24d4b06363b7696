"""Click's SHOP API (Prepare/Complete callbacks) and Merchant API: the pure protocol core.

Everything here follows shared/providers/PROTOCOLS.md §1 and does no I/O: no database, no HTTP, no clock.
It imports only the stdlib and pydantic, like ``providers_svc.domain``.

Modules:
    answers        the error codes (§1.6) with their canonical notes, and the JSON answer bodies (§1.5).
    amounts        so'm decimal strings <-> integer tiyin, exact (Decimal from strings, never float).
    credentials    ``ClickCredentials``: service_id, merchant_id, merchant_user_id, secret_key.
    signing        ``sign_string`` (§1.4) over the raw posted strings, and its constant-time check.
    requests       a posted form -> ``PrepareRequest`` / ``CompleteRequest``, or ``Rejected`` (-8, -3).
    records        frozen views of what is stored: the order (``OrderView``), our reservation (``PrepareView``).
    decisions      the check order and error table (§1.6) and the cancel rules (§1.7): request + views ->
                   the exact answer, the ``Change`` to store and any anomaly.
    urls           the pay URL (§1.9).
    merchant_api   the ``Auth`` header and the payment status and reversal requests (§1.10), unsent.

What the next step wires:
    * ``POST /billing/click/prepare`` and ``/billing/click/complete`` (``api/callbacks/click.py``): read the
      form, ``parse_request`` (a ``Rejected`` is answered as is), find the account by ``service_id``, load
      the order by ``merchant_trans_id`` and the reservation (by ``click_trans_id`` for Prepare, by
      ``merchant_prepare_id`` for Complete), lock them, ``decide_*``, store the ``Change`` and the inbox row in
      one transaction, then answer with HTTP 200 and the outcome's ``answer``. Both paths accept both actions:
      Click may use one URL for the two, so the action decides, not the path. If storing fails, answer
      ``failed_to_update`` (-7). A CONFIRM maps to the transaction's SUCCEEDED verdict, a CANCEL of a
      reservation to nothing at the payment level (the payer may try again) and an ``anomaly`` to the
      anomalies table.
    * Storage: a reservations table (id = merchant_prepare_id, unique click_trans_id, click_paydoc_id,
      merchant_trans_id, amount, state) with the conditional updates each ``Change`` describes.
    * The simulator: a Click caller that signs with ``signing.sign`` and drives the endpoints through the
      same cases the tests here check, and a pay page reached through ``urls.pay_url``.
    * The adapter (``adapters/click.py``): ``start`` returns ``urls.pay_url``; ``fetch_status`` and ``refund``
      send ``merchant_api`` requests with an HTTP client of its own.
"""
