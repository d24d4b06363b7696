"""Octo (octo.uz), as PROTOCOLS.md §3 gives it: the pure protocol core, no I/O.

We call Octo (``requests``: prepare_payment, the status call, set_accept, refund) and Octo calls us back
(``callbacks``: the notify_url POST and our answer to it). ``amounts`` is the one place where our
integer minor units meet Octo's decimal sums in major units; ``responses`` reads Octo's answers, nested
under ``data`` or flat as older documents show them.

Next (issue 11): the adapter that sends these requests with the account's ``settings.api_base``, a fake
Octo server for the tests, and ``POST /billing/octo`` that verifies a callback, re-checks the status
through the status call before moving money, and answers ``waiting_for_capture`` with the decision.
"""
