"""One provider account's Stripe API, on the official library: a ``StripeClient`` per account (no global
``stripe.api_key``), at the account's ``api_base``, acting for its connected account when it has one
(the ``Stripe-Account`` header on every call, PROTOCOLS.md §4.6), over the app's aiohttp session.

Every answer comes back as plain JSON (dicts), and every failure as our adapter errors:
``ProviderUnavailableError`` when Stripe could not be reached or failed (safe to retry: every POST
carries a deterministic idempotency key), ``ProviderRejectedError("stripe_<code>")`` when it refused.
Neither ever carries the secret key (Stripe's authentication message quotes part of it).

stripe-python is imported on the first call, not with the service: it (and the HTTP libraries it looks
for) is about 11 MiB of every providers-svc process's memory, which a platform without Stripe accounts
never needs (issue 16, RSS; ``tests/contracts/test_start_up_imports.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, cast

import aiohttp

from providers_svc.adapters.base import ProviderRejectedError, ProviderUnavailableError
from providers_svc.domain.accounts import BoundAccount

if TYPE_CHECKING:
    import stripe

Json = dict[str, Any]
# Stripe's own retries of a failed connection reuse the idempotency key, so they cannot double a call;
# one is enough here because our callers retry too.
_NETWORK_RETRIES = 1
# Items per page of a list (Stripe's maximum).
_PAGE = 100


def _plain(obj: Any) -> Json:
    import stripe

    if isinstance(obj, stripe.StripeResponse):  # a raw request's answer
        return dict(cast("Mapping[str, Any]", obj.data))
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    return dict(cast("Mapping[str, Any]", obj))


class StripeApi:
    """The calls the adapter, the webhook followers and the payer page make, for one account."""

    def __init__(self, account: BoundAccount, http: Callable[[], aiohttp.ClientSession]) -> None:
        self.account = account
        self._http = http
        self._client: stripe.StripeClient | None = None

    @property
    def connected_account(self) -> str | None:
        return self.account.settings.get("connected_account") or None

    def _stripe(self) -> stripe.StripeClient:
        # Built on first use, not in ``bind`` (which must stay cheap), and with the app's session, which
        # exists only while the app runs.
        if self._client is None:
            import stripe

            session = self._http()
            self._client = stripe.StripeClient(
                self.account.credentials["secret_key"],
                stripe_account=self.connected_account,
                base_addresses={"api": self.account.settings["api_base"].rstrip("/")},
                max_network_retries=_NETWORK_RETRIES,
                # The session's own timeout (PROVIDERS_PROVIDER_TIMEOUT): the library would otherwise
                # wait 80 s a request, holding a webhook's row lock and database connection meanwhile.
                http_client=stripe.AIOHTTPClient(session=session, timeout=session.timeout),
            )
        return self._client

    async def _call(self, call: Callable[[stripe.StripeClient], Awaitable[Any]]) -> Json:
        import stripe

        try:
            return _plain(await call(self._stripe()))
        except stripe.AuthenticationError:
            raise ProviderRejectedError("stripe_authentication", "Stripe refused the account's secret key") from None
        except stripe.PermissionError:
            raise ProviderRejectedError("stripe_permission", "Stripe refused the call for this account") from None
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise ProviderUnavailableError(f"Stripe unreachable: {type(exc).__name__}") from None
        except stripe.StripeError as exc:
            status = exc.http_status or 0
            if status >= 500 or status in (0, 409):
                # 409: a concurrent request with the same idempotency key is still running at Stripe.
                raise ProviderUnavailableError(f"Stripe failed (HTTP {status})") from None
            code = getattr(exc, "code", None) or "request_refused"
            message = exc.user_message or "Stripe refused the request"
            raise ProviderRejectedError(f"stripe_{code}", str(message)[:500]) from None

    @staticmethod
    def _options(idempotency_key: str | None) -> stripe.RequestOptions:
        return {"idempotency_key": idempotency_key} if idempotency_key else {}

    async def create_payment_intent(self, params: Mapping[str, Any], *, idempotency_key: str) -> Json:
        return await self._call(
            lambda c: c.v1.payment_intents.create_async(dict(params), self._options(idempotency_key))  # type: ignore[arg-type]
        )

    async def create_checkout_session(self, params: Mapping[str, Any], *, idempotency_key: str) -> Json:
        return await self._call(
            lambda c: c.v1.checkout.sessions.create_async(dict(params), self._options(idempotency_key))  # type: ignore[arg-type]
        )

    async def payment_intent(self, intent_id: str) -> Json:
        return await self._call(lambda c: c.v1.payment_intents.retrieve_async(intent_id))

    async def checkout_session(self, session_id: str) -> Json:
        return await self._call(lambda c: c.v1.checkout.sessions.retrieve_async(session_id))

    async def charge(self, charge_id: str) -> Json:
        return await self._call(lambda c: c.v1.charges.retrieve_async(charge_id))

    async def cancel_payment_intent(self, intent_id: str, *, idempotency_key: str) -> Json:
        return await self._call(
            lambda c: c.v1.payment_intents.cancel_async(intent_id, None, self._options(idempotency_key))
        )

    async def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> Json:
        return await self._call(
            lambda c: c.v1.checkout.sessions.expire_async(session_id, None, self._options(idempotency_key))
        )

    async def capture_payment_intent(self, intent_id: str, amount: int, *, idempotency_key: str) -> Json:
        return await self._call(
            lambda c: c.v1.payment_intents.capture_async(
                intent_id, {"amount_to_capture": amount}, self._options(idempotency_key)
            )
        )

    async def create_refund(self, params: Mapping[str, Any], *, idempotency_key: str) -> Json:
        return await self._call(
            lambda c: c.v1.refunds.create_async(dict(params), self._options(idempotency_key))  # type: ignore[arg-type]
        )

    async def refund(self, refund_id: str) -> Json:
        return await self._call(lambda c: c.v1.refunds.retrieve_async(refund_id))

    async def refunds_of_intent(self, intent_id: str) -> AsyncIterator[Json]:
        """Every refund of a PaymentIntent, newest first, page by page (a payment has a handful)."""
        params: dict[str, Any] = {"payment_intent": intent_id, "limit": _PAGE}
        while True:
            current = dict(params)
            page = await self._call(lambda c: c.v1.refunds.list_async(current))  # type: ignore[arg-type]  # noqa: B023
            items = [dict(item) for item in page.get("data") or []]
            for item in items:
                yield item
            if not page.get("has_more") or not items:
                return
            params["starting_after"] = items[-1]["id"]

    # -- lists of a period (reconciliation's statements), a page at a time ------------------------------

    async def charges(self, start: int, end: int) -> AsyncIterator[Json]:
        """The charges created in ``[start, end)`` (unix seconds), newest first, every page."""
        async for item in self._pages(lambda c, p: c.v1.charges.list_async(p), start, end):  # type: ignore[arg-type]
            yield item

    async def balance_transactions(self, start: int, end: int) -> AsyncIterator[Json]:
        """The balance transactions created in ``[start, end)`` (unix seconds), newest first."""
        async for item in self._pages(lambda c, p: c.v1.balance_transactions.list_async(p), start, end):  # type: ignore[arg-type]
            yield item

    async def _pages(
        self, list_call: Callable[[stripe.StripeClient, dict[str, Any]], Awaitable[Any]], start: int, end: int
    ) -> AsyncIterator[Json]:
        # Paged by hand (not the library's auto-paging) so that every page's failure is ours.
        params: dict[str, Any] = {"created": {"gte": start, "lt": end}, "limit": _PAGE}
        while True:
            current = dict(params)
            page = await self._call(lambda c: list_call(c, current))  # noqa: B023 (awaited at once)
            items = [dict(item) for item in page.get("data") or []]
            for item in items:
                yield item
            if not page.get("has_more") or not items:
                return
            params["starting_after"] = items[-1]["id"]

    # -- a fake Stripe's test payments (the payer page of a test account at localstripe) --------------

    async def attach_payment_method(self, intent_id: str, payment_method: str) -> Json:
        return await self._call(
            lambda c: c.v1.payment_intents.update_async(intent_id, {"payment_method": payment_method})
        )

    async def create_card(self, number: str) -> Json:
        card = {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
        return await self._call(
            lambda c: c.v1.payment_methods.create_async({"type": "card", "card": card})  # type: ignore[arg-type]
        )

    async def confirm_payment_intent(self, intent_id: str) -> Json:
        return await self._call(lambda c: c.v1.payment_intents.confirm_async(intent_id))

    async def authenticate(self, intent_id: str, client_secret: str, *, success: bool) -> Json:
        """localstripe's stand-in for the payer's 3-D Secure step (no such call exists at Stripe)."""
        return await self._call(
            lambda c: c.raw_request_async(
                "post",
                f"/v1/payment_intents/{intent_id}/_authenticate",
                client_secret=client_secret,
                success="true" if success else "false",
            )
        )
