"""Typed request keys shared by the middlewares of every service."""

from __future__ import annotations

from aiohttp import web

request_id_key = web.RequestKey("request_id", str)
