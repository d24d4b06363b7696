"""``billing-embedded dead-letters`` as an operator runs it: it lists what the embedded outboxes keep
marked (event id, queue, routing key, when, why) and replays one by id, once, leaving it for the relay
to publish to the queue that gave up on it only."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest
from billing_embedded.database import running_server

BIN = Path(sys.executable).parent


def _sql(data_dir: Path, sql: str) -> list[tuple[object, ...]]:
    """``sql`` on the providers database of the embedded server (started for it: no platform runs)."""

    async def run(dsn: str) -> list[tuple[object, ...]]:
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    with running_server(data_dir) as server:
        return asyncio.run(run(server.dsn("providers")))


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BILLING_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [str(BIN / "billing-embedded"), "dead-letters", *args], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_lists_and_replays_the_dead_letters_the_outboxes_keep(tmp_path: Path) -> None:
    empty = _cli(tmp_path, "list")  # migrates the data dir as a start would
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.strip() == "no dead letters"

    _sql(
        tmp_path,
        "INSERT INTO outbox (event_id, routing_key, body, created_at, dead_at, dead_queues, dead_reason)"
        " VALUES ('evt_dead', 'providers.provider.payment.succeeded.v1', '{}', '2026-12-01 10:00:00+00',"
        " '2026-12-01 10:00:05+00', 'payments.provider-events',"
        " 'payments.provider-events: RuntimeError: cannot apply')",
    )

    listed = _cli(tmp_path, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [letter] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (letter["event_id"], letter["queue"], letter["routing_key"], letter["reason"]) == (
        "evt_dead",
        "payments.provider-events",
        "providers.provider.payment.succeeded.v1",
        "RuntimeError: cannot apply",
    )
    assert letter["dead_at"].startswith("2026-12-01T10:00:05")

    replayed = _cli(tmp_path, "replay", "--id", "evt_dead")
    assert replayed.returncode == 0, replayed.stderr
    assert "replayed evt_dead to payments.provider-events" in replayed.stdout
    rows = _sql(tmp_path, "SELECT dead_at, dead_queues FROM outbox WHERE event_id = 'evt_dead'")
    assert rows == [(None, "payments.provider-events")]  # due again, for that queue only
    again = _cli(tmp_path, "replay", "--id", "evt_dead")
    assert again.returncode == 1 and "no dead letter evt_dead" in again.stdout
