"""A database (or provider network) outage is a 503 with ``Retry-After``, not a 500 (API.md: 500 is a bug)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from billing_runtime.problems import ProblemError
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)


def is_unavailable(error: BaseException) -> bool:
    """True for errors that mean "a dependency is down", as opposed to a bug."""
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)
    return isinstance(error, sa_exc.TimeoutError | OSError | TimeoutError)


@web.middleware
async def unavailable_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except (sa_exc.SQLAlchemyError, OSError, TimeoutError) as error:
        if not is_unavailable(error):
            raise
        log.warning("%s %s: dependency unavailable: %s", request.method, request.path, error)
        raise ProblemError(
            503, "service_unavailable", "A dependency is unavailable; retry later", headers={"Retry-After": "5"}
        ) from error
