"""Alembic glue shared by every service's ``migrations/env.py``, and a programmatic ``upgrade``.

Alembic is imported inside the functions, not here: every service's command line imports this module
for its ``migrate`` command, and alembic (with mako and pygments behind it) costs an ``api`` or
``worker`` process about 8 MiB of RSS and half a second of start-up that it would never use."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import MetaData, pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

if TYPE_CHECKING:
    from alembic.config import Config


def run_env(metadata: MetaData) -> None:
    """Body of an async ``env.py``: the URL comes from the config (set by ``upgrade``) ."""
    from alembic import context

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url must be set (billing_runtime.migrations.upgrade sets it)"

    def do_run(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=metadata, compare_type=True)
        with context.begin_transaction():
            context.run_migrations()

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())


def alembic_config(service_root: Path, url: str) -> Config:
    from alembic.config import Config

    cfg = Config(str(service_root / "alembic.ini"))
    cfg.set_main_option("script_location", str(service_root / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def upgrade(service_root: Path, url: str, revision: str = "head") -> None:
    """Run ``alembic upgrade`` for one service. Blocking: call it in a thread from async code."""
    from alembic import command

    command.upgrade(alembic_config(service_root, url), revision)


async def upgrade_async(service_root: Path, url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, service_root, url, revision)
