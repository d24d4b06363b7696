"""``POST /v1/auth/token``: a tenant exchanges its app name and secret for an access token."""

from __future__ import annotations

from aiohttp import web
from billing_contracts.envelope import utcnow
from billing_runtime.problems import ProblemError, read_json_object

from gateway.db.uow import UnitOfWork
from gateway.keys import secret_hasher_key, sessionmaker_key, token_codec_key, token_throttle_key
from gateway.responses import AccessToken
from gateway.schemas import TokenRequest, parse
from gateway.tenant_access import tenant_disabled
from gateway.tenants import authenticate_app


async def issue_token(request: web.Request) -> web.Response:
    throttle = request.app[token_throttle_key]
    throttle.check_client(request)
    body = parse(TokenRequest, await read_json_object(request))
    throttle.check_app(body.app_name)
    hasher = request.app[secret_hasher_key]
    with hasher.admission():
        authenticated = await authenticate_app(
            UnitOfWork(request.app[sessionmaker_key]), hasher, body.app_name, body.secret, utcnow()
        )
    if authenticated is None:
        # One answer for an unknown app and a wrong secret: the caller learns nothing about which.
        raise ProblemError(401, "invalid_credentials", "Unknown app_name or wrong secret")
    if authenticated.tenant.disabled:
        raise tenant_disabled()
    codec = request.app[token_codec_key]
    token = codec.issue(authenticated.tenant.id, authenticated.generation)
    return web.json_response(
        AccessToken(access_token=token, expires_in=codec.ttl).model_dump(mode="json"),
        headers={"Cache-Control": "no-store"},
    )


def add_token_routes(app: web.Application) -> None:
    app.router.add_post("/v1/auth/token", issue_token)
