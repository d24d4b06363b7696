"""The demo shop of the embedded mode: a tenant's site on an origin of its own (``BILLING_DEMO_PORT``),
so the SDK's modal is really cross-origin. ``GET /demo`` shows a product and a Pay button that opens
the checkout with checkout.js; ``POST /demo/payments`` is the shop's backend: it creates the payment
through the gateway's public API with the demo tenant's credentials, which never reach the browser,
and answers the checkout token alone."""

from __future__ import annotations

import html
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib.resources import files
from string import Template
from typing import Any

import aiohttp
from aiohttp import web
from billing_runtime.problems import ProblemError, problem_middleware
from yarl import URL

from billing_embedded.demo_tenant import DemoTenant

log = logging.getLogger(__name__)

# One product, in UZS: a test tenant's UZS payment is offered the sandbox and the Payme, Click and
# Octo simulators.
PRODUCT_NAME = "Paper notebook, A5"
PRODUCT_AMOUNT = 25_000_00
PRODUCT_CURRENCY = "UZS"
PRODUCT_PRICE = "25 000.00 UZS"
# A token this close to its expiry is replaced before a call rather than refused during one.
_TOKEN_MARGIN_SECONDS = 60


@dataclass(frozen=True)
class DemoSettings:
    host: str
    port: int
    gateway_url: str
    # Where checkout.js and the hosted page are (payments-svc's checkout base URL).
    checkout_url: str

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.origin}/demo"


class DemoShop:
    """The shop's state: its tenant once set up (the platform sets it up after every service
    listens), the gateway client, and the access token it holds for the tenant."""

    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.tenant: DemoTenant | None = None
        self.session: aiohttp.ClientSession | None = None
        self._token: tuple[str, float] | None = None
        self._template = Template((files("billing_embedded") / "demo_shop.html").read_text())
        self.app = self._build_app()

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self._home)
        app.router.add_get("/demo", self._page)
        app.router.add_post("/demo/payments", self._create_payment)
        app.middlewares.append(problem_middleware)
        app.cleanup_ctx.append(self._session_ctx)
        return app

    async def _session_ctx(self, _app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
            self.session = session
            yield
            self.session = None

    async def _home(self, _request: web.Request) -> web.Response:
        raise web.HTTPFound("/demo")

    async def _page(self, _request: web.Request) -> web.Response:
        nonce = secrets.token_urlsafe(18)
        checkout = str(URL(self.settings.checkout_url).origin())
        body = self._template.substitute(
            nonce=nonce,
            sdk_url=html.escape(self.settings.checkout_url.rstrip("/") + "/checkout.js"),
            product=html.escape(PRODUCT_NAME),
            price=html.escape(PRODUCT_PRICE),
        )
        policy = "; ".join(
            [
                "default-src 'none'",
                f"script-src 'nonce-{nonce}' {checkout}",
                f"style-src 'nonce-{nonce}'",
                f"frame-src {checkout}",
                "connect-src 'self'",
                "img-src 'self' data:",
                "base-uri 'none'",
                "form-action 'none'",
                "frame-ancestors 'none'",
            ]
        )
        headers = {"Content-Security-Policy": policy, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
        return web.Response(text=body, content_type="text/html", headers=headers)

    async def _create_payment(self, request: web.Request) -> web.Response:
        # Only the demo page itself may ask: a form on any other site could otherwise create payments.
        if request.headers.get("Origin") != self.settings.origin:
            raise ProblemError(403, "forbidden_origin", "Only the demo page may create its payments")
        if self.tenant is None or self.session is None:
            raise ProblemError(503, "demo_not_ready", "The demo tenant is not set up yet", headers={"Retry-After": "1"})
        body = {
            "amount": PRODUCT_AMOUNT,
            "currency": PRODUCT_CURRENCY,
            "order_id": f"demo-{uuid.uuid4().hex[:12]}",
            "description": PRODUCT_NAME,
        }
        payment = await self._post_payment(body, retry=True)
        return web.json_response({"token": payment["checkout_token"], "payment_id": payment["id"]}, status=201)

    async def _post_payment(self, body: dict[str, Any], *, retry: bool) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {await self._access_token()}", "Idempotency-Key": str(uuid.uuid4())}
        status, answer = await self._call("POST", "/v1/payments", body, headers)
        if status == 401 and retry:  # the token was revoked or expired meanwhile: one fresh try
            self._token = None
            return await self._post_payment(body, retry=False)
        if status != 201 or not isinstance(answer, dict):
            raise _upstream("creating the payment", status, answer)
        return answer

    async def _access_token(self) -> str:
        if self._token is not None and self._token[1] > time.monotonic():
            return self._token[0]
        assert self.tenant is not None
        credentials = {"app_name": self.tenant.app_name, "secret": self.tenant.secret}
        status, answer = await self._call("POST", "/v1/auth/token", credentials, {})
        if status != 200 or not isinstance(answer, dict):
            raise _upstream("signing in as the demo tenant", status, answer)
        expires_at = time.monotonic() + int(answer["expires_in"]) - _TOKEN_MARGIN_SECONDS
        self._token = (str(answer["access_token"]), expires_at)
        return self._token[0]

    async def _call(self, method: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, object]:
        assert self.session is not None
        try:
            async with self.session.request(
                method, self.settings.gateway_url + path, json=body, headers=headers
            ) as response:
                return response.status, await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("demo shop: gateway %s %s failed: %r", method, path, exc)
            raise ProblemError(
                503, "gateway_unavailable", "The gateway is unavailable", headers={"Retry-After": "2"}
            ) from exc


def _upstream(what: str, status: int, answer: object) -> ProblemError:
    code = answer.get("code") if isinstance(answer, dict) else None
    log.warning("demo shop: %s: gateway answered %s %s", what, status, code)
    if status in (429, 503):
        return ProblemError(503, "gateway_unavailable", f"{what}: the gateway is busy", headers={"Retry-After": "2"})
    return ProblemError(502, "gateway_refused", f"{what}: the gateway answered {status} {code or ''}".strip())
