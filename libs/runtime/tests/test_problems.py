"""The shared error middleware: expected errors, malformed input, outages and bugs."""

from aiohttp import web
from billing_runtime.app import service_app
from billing_runtime.errors import ProblemError
from billing_runtime.metrics import Metrics
from billing_runtime.problems import read_json_object
from sqlalchemy import exc as sa_exc


def _app() -> web.Application:
    app = service_app(Metrics("t"), checks={}, internal_secret=None, internal_audience="t")

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await read_json_object(request))

    async def conflict(_request: web.Request) -> web.Response:
        raise ProblemError(409, "invalid_state", "no")

    async def outage(_request: web.Request) -> web.Response:
        raise sa_exc.OperationalError("SELECT 1", {}, ConnectionRefusedError("db down"))

    async def extended(_request: web.Request) -> web.Response:
        # An extension member, and one that tries to replace a standard member (never allowed).
        raise ProblemError(
            422, "amount_exceeds_refundable", "too much", extensions={"amount_refundable": 3, "status": 1}
        )

    async def bug(_request: web.Request) -> web.Response:
        raise KeyError("secret-internal-detail")

    app.router.add_post("/echo", echo)
    app.router.add_get("/conflict", conflict)
    app.router.add_get("/outage", outage)
    app.router.add_get("/bug", bug)
    app.router.add_get("/extended", extended)
    return app


class TestProblemMiddleware:
    async def test_extension_members_are_rendered_beside_the_standard_ones(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.get("/extended")
        body = await r.json()
        assert (r.status, body["status"], body["code"]) == (422, 422, "amount_exceeds_refundable")
        assert body["amount_refundable"] == 3

    async def test_problem_error_renders_rfc9457(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.get("/conflict", headers={"X-Request-Id": "req-abc"})
        assert r.status == 409
        assert r.content_type == "application/problem+json"
        body = await r.json()
        assert body["code"] == "invalid_state" and body["status"] == 409 and body["request_id"] == "req-abc"
        assert r.headers["X-Request-Id"] == "req-abc"

    async def test_deeply_nested_json_is_400_not_500(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.post("/echo", data="[" * 60_000, headers={"Content-Type": "application/json"})
        assert r.status == 400
        assert (await r.json())["code"] == "invalid_json"

    async def test_wrong_content_type_is_415(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.post("/echo", data="{}", headers={"Content-Type": "text/plain"})
        assert r.status == 415

    async def test_body_over_limit_is_413_problem(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.post(
            "/echo", data=b'{"a":"' + b"x" * 70_000 + b'"}', headers={"Content-Type": "application/json"}
        )
        assert r.status == 413
        assert (await r.json())["code"] == "payload_too_large"

    async def test_database_outage_is_503_with_retry_after(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.get("/outage")
        assert r.status == 503
        assert r.headers["Retry-After"] == "5"
        assert (await r.json())["code"] == "database_unavailable"

    async def test_bug_is_500_without_details(self, aiohttp_client) -> None:
        client = await aiohttp_client(_app())
        r = await client.get("/bug")
        assert r.status == 500
        text = await r.text()
        assert "secret-internal-detail" not in text and "Traceback" not in text
        assert (await r.json())["code"] == "internal_error"
