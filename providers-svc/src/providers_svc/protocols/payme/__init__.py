"""Payme's Merchant API (PROTOCOLS.md §2), the merchant side, as a pure protocol core.

Payme calls us: JSON-RPC 2.0 over POST with Basic auth, and we answer in Payme's protocol, never problem+json.
Nothing here does I/O or imports aiohttp or SQLAlchemy; the stdlib only. Times are Payme's integer milliseconds
since the epoch, passed in as ``now_ms``; amounts are tiyin.

Modules:
- ``errors``: every error code of §2.4 with its ru/uz/en message, and ``PaymeError`` (code, message, data).
- ``jsonrpc``: a raw body to an ``RpcRequest`` (or -32700/-32600), and answers as byte-stable bytes.
- ``auth``: the ``Authorization: Basic`` header to the one account whose key it carries (or -32504).
- ``params``: the method name and params of an ``RpcRequest`` to typed params (or -32601, -32600, -31001, -31050).
- ``states``: transaction states, cancel reasons, the 12-hour timeout.
- ``transactions``: the rules of §2.3/§2.5 per method, over a frozen ``PaymeTransaction`` and ``PaymeOrder``,
  returning a ``Decision`` (record to store, ``OrderEffect``, result or error).
- ``amounts``: the one conversion between our minor units and tiyin (UZS only).
- ``checkout``: the checkout URL of §2.6 that sends the payer to Payme.

What the wiring step adds (``api/callbacks/payme.py`` on ``POST /billing/payme``, a repository, the simulator):
1. Answer every request with HTTP 200 and ``jsonrpc.CONTENT_TYPE``, a non-POST with -32300 and a failure of
   ours (database down) with -32400; ``jsonrpc.error_response`` builds each.
2. In order: ``parse_request(body)``, then ``authenticate(header, candidates)`` over the Payme accounts'
   ``(id, key)``, then ``parse_params(request, account_field=<that account's settings.account_field>)``, then
   the method's function in ``transactions``, all with the request's id in the answer.
3. Read the transaction by Payme's id (and the order, ``PaymeOrder``, by the account value) in the same database
   transaction that stores ``Decision.record`` and applies ``Decision.effect`` to the payment, under a row lock
   or a conditional update on the stored state, so two deliveries of one call (Payme sends them) cannot both
   act. Store ``create_time``/``perform_time``/``cancel_time`` exactly as decided: repeats are answered from
   them and must be byte-identical. Store a ``Decision.record`` even when the decision is an error (an expired
   transaction is cancelled with reason 4 *and* answered -31008).
4. Give each new transaction our own id (``transaction_id``), unique per Payme transaction; Payme's id must be
   unique too. Keep Payme keys unique among the accounts that share the endpoint (``auth.authenticate``
   refuses an ambiguous key). ChangePassword stores the new key of the authenticated account and answers
   ``{"success": true}``.
5. The simulator plays Payme against that endpoint from these same rules: Check, Create twice, Perform twice,
   Cancel twice, CheckTransaction, GetStatement, and the 12-hour timeout with a moved clock.
"""
