"""The embedded mode keeps its data across a restart and stops cleanly on Ctrl-C (SIGINT)."""

import json
import secrets
from pathlib import Path

import aiohttp
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_ctrl_c_exits_cleanly_and_data_survives_a_restart(tmp_path: Path, embedded_starter) -> None:
    start_embedded, embedded_ports = embedded_starter
    ports = embedded_ports()
    gateway = f"http://127.0.0.1:{ports['GATEWAY']}"
    first = start_embedded(tmp_path, ports)
    # No BILLING_ADMIN_TOKEN given: the platform generated one and keeps it in the data directory.
    admin = json.loads((tmp_path / "secrets.json").read_text())["admin_token"]
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
            payment = await r.json()
    assert first.stop() == {"embedded": 0}

    second = start_embedded(tmp_path, ports)
    try:
        # The JWT issued before the restart still works (keys persisted), and so does the payment.
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{gateway}/v1/payments/{payment['id']}", headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            assert r.status == 200
            assert (await r.json())["id"] == payment["id"]
    finally:
        assert second.stop() == {"embedded": 0}
