"""The embedded mode keeps its data across a restart and stops cleanly on Ctrl-C (SIGINT), its
PostgreSQL server with it; a platform killed with SIGKILL leaves a server the next start takes over;
two platforms never share one data directory."""

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BIN = Path(sys.executable).parent


def _server_pid(data: Path) -> int | None:
    """The embedded PostgreSQL server's pid while it runs (its postmaster.pid names it), else None."""
    try:
        pid = int((data / "postgres" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    return pid


async def _tenant_and_payment(gateway: str, admin: str) -> tuple[str, dict[str, object]]:
    app_name = f"shop-{secrets.token_hex(4)}"
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{gateway}/admin/tenants",
            json={"app_name": app_name, "display_name": "Kept"},
            headers={"Authorization": f"Bearer {admin}"},
        ) as r:
            assert r.status == 201
            secret = (await r.json())["secret"]
        async with http.post(f"{gateway}/v1/auth/token", json={"app_name": app_name, "secret": secret}) as r:
            token = (await r.json())["access_token"]
        async with http.post(
            f"{gateway}/v1/payments",
            json={"amount": 5000, "currency": "USD", "order_id": "o"},
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "k"},
        ) as r:
            assert r.status == 201
            return token, await r.json()


async def _payment_status(gateway: str, token: str, payment_id: object) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{gateway}/v1/payments/{payment_id}", headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status


async def test_ctrl_c_exits_cleanly_and_data_survives_a_restart(tmp_path: Path, embedded_starter) -> None:
    start_embedded, embedded_ports = embedded_starter
    ports = embedded_ports()
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    first = start_embedded(tmp_path, ports)
    assert _server_pid(tmp_path) is not None
    # No BILLING_ADMIN_TOKEN given: the platform generated one and keeps it in the data directory.
    admin = json.loads((tmp_path / "secrets.json").read_text())["admin_token"]
    token, payment = await _tenant_and_payment(gateway, admin)
    assert first.stop() == {"embedded": 0}
    assert _server_pid(tmp_path) is None  # Ctrl-C stopped the database server too

    second = start_embedded(tmp_path, ports)
    try:
        # The JWT issued before the restart still works (keys persisted), and so does the payment.
        assert await _payment_status(gateway, token, payment["id"]) == 200
    finally:
        assert second.stop() == {"embedded": 0}
    assert _server_pid(tmp_path) is None


async def test_a_killed_platform_leaves_a_server_the_next_start_takes_over(tmp_path: Path, embedded_starter) -> None:
    start_embedded, embedded_ports = embedded_starter
    ports = embedded_ports()
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    first = start_embedded(tmp_path, ports)
    admin = json.loads((tmp_path / "secrets.json").read_text())["admin_token"]
    token, payment = await _tenant_and_payment(gateway, admin)
    [(_, process)] = first.processes
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    first.stop()
    left = _server_pid(tmp_path)
    assert left is not None  # PostgreSQL detaches from the platform: SIGKILL leaves it running

    second = start_embedded(tmp_path, ports)
    try:
        assert _server_pid(tmp_path) not in (None, left)  # the leftover was stopped, a new one started
        assert await _payment_status(gateway, token, payment["id"]) == 200  # committed data kept
    finally:
        assert second.stop() == {"embedded": 0}
    assert _server_pid(tmp_path) is None


def test_a_second_platform_on_the_same_data_directory_is_refused(tmp_path: Path, embedded_starter) -> None:
    start_embedded, embedded_ports = embedded_starter
    first = start_embedded(tmp_path, embedded_ports())
    try:
        env = {
            **os.environ,
            "BILLING_DATA_DIR": str(tmp_path),
            **{f"{k}_PORT": str(v) for k, v in embedded_ports().items()},
        }
        second = subprocess.run(
            [str(BIN / "billing-embedded")], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert second.returncode == 1
        assert f"another billing-embedded is running on {tmp_path.resolve()}" in second.stderr
        assert _server_pid(tmp_path) is not None  # the first platform's server was left alone
    finally:
        assert first.stop() == {"embedded": 0}
