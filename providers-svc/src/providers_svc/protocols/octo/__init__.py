"""Octo (octo.uz), as PROTOCOLS.md §3 gives it: the pure protocol core, no I/O.

We call Octo (``requests``: prepare_payment, the status call, set_accept, refund) and Octo calls us back
(``callbacks``: the notify_url POST and our answer to it). ``amounts`` is the one place where our
integer minor units meet Octo's decimal sums in major units; ``responses`` reads Octo's answers, nested
under ``data`` or flat as older documents show them.

Used by ``adapters/octo.py`` (the adapter on provider accounts), ``services/octo.py`` (``POST
/billing/octo``: verify, re-check through the status call, answer ``waiting_for_capture`` with the
decision) and ``simulators/`` (the fake Octo server). README.md "Octo" describes the whole.
"""
