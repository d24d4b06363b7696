"""Runtime plumbing fixtures: a scratch PostgreSQL database with a tiny schema (outbox, inbox and an
``applied`` table standing in for a service's state), and the real RabbitMQ broker."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest
from billing_runtime.db import create_engine, new_metadata
from billing_runtime.heartbeats import heartbeat_table
from billing_runtime.inbox import inbox_table
from billing_runtime.outbox import outbox_table
from billing_runtime.testing import PG_DSN, require_port, require_rabbitmq, truncate_all
from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.ext.asyncio import AsyncEngine


class Schema:
    def __init__(self) -> None:
        self.metadata: MetaData = new_metadata()
        self.outbox = outbox_table(self.metadata)
        self.inbox = inbox_table(self.metadata)
        self.heartbeats = heartbeat_table(self.metadata)
        self.applied = Table("applied", self.metadata, Column("event_id", String(64), primary_key=True))


@pytest.fixture(scope="session")
def schema() -> Schema:
    return Schema()


@pytest.fixture(scope="session")
async def pg_engine(schema: Schema) -> AsyncIterator[AsyncEngine]:
    require_port("127.0.0.1", 5432, "PostgreSQL")
    name = f"runtime_test_{os.getpid()}"
    conn = await asyncpg.connect(PG_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1) + "/" + name
    engine = create_engine(url)
    # The library has no migrations of its own; its test schema is created directly.
    async with engine.begin() as c:
        await c.run_sync(schema.metadata.create_all)
    yield engine
    await engine.dispose()
    conn = await asyncpg.connect(PG_DSN)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


@pytest.fixture
async def engine(pg_engine: AsyncEngine, schema: Schema) -> AsyncEngine:
    await truncate_all(pg_engine, schema.metadata)
    return pg_engine


@pytest.fixture
async def one_connection(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The test database through a pool of a single connection: the next caller gets the same one."""
    single = create_engine(engine.url.render_as_string(hide_password=False), pool_size=1)
    yield single
    await single.dispose()


@pytest.fixture
def rabbit_url() -> str:
    return require_rabbitmq()


@pytest.fixture
def queue_name() -> str:
    return f"test.{secrets.token_hex(4)}"
