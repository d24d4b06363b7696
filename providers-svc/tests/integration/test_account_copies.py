"""Each replica's copies of the provider accounts (services/account_copies.py): kept while the LISTEN
connection is up, dropped by every change of ``provider_accounts`` on any replica (a trigger sends the
NOTIFY), and never used when changes cannot reach the replica."""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from billing_contracts.envelope import utcnow
from providers_svc.keys import account_copies_key, key_ring_key, uow_factory_key
from providers_svc.services.accounts import (
    AccountChanges,
    NewAccount,
    create_account,
    simulator_account,
    update_account,
)

pytestmark = pytest.mark.postgres


async def _until(predicate: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await predicate():
        assert asyncio.get_running_loop().time() < deadline, "not within the time allowed"
        await asyncio.sleep(0.02)


async def _payme_account(app: Any, key: str) -> str:
    row = await create_account(
        app[uow_factory_key],
        app[key_ring_key],
        NewAccount("payme", "kassa", "test", ["UZS"], {"merchant_id": "m" * 24, "key": key}, {}),
        utcnow(),
    )
    return row.id


async def test_copies_are_kept_and_dropped_by_a_change_on_another_replica(make_client: Any) -> None:
    ours = await make_client(enabled_providers=["sandbox", "payme"], account_cache_seconds=60)
    other = await make_client(enabled_providers=["sandbox", "payme"], account_cache_seconds=60)
    copies = ours.app[account_copies_key]

    async def listening() -> bool:
        return bool(copies.listening())

    await _until(listening)
    first_key = secrets.token_urlsafe(27)
    epoch = copies.epoch
    account_id = await _payme_account(other.app, first_key)

    async def notified() -> bool:
        return copies.epoch > epoch

    await _until(notified)  # the insert's notification, sent by the trigger
    [account] = await copies.of("payme")
    reads = copies.reads
    assert (await copies.of("payme"))[0].credentials["key"] == first_key
    assert copies.reads == reads  # the copy served it
    # A change made through the other replica reaches this one by NOTIFY alone.
    new_key = secrets.token_urlsafe(27)
    changes = AccountChanges(credentials={"key": new_key})
    await update_account(other.app[uow_factory_key], other.app[key_ring_key], account_id, changes, utcnow())

    async def sees_new_key() -> bool:
        return (await copies.of("payme"))[0].credentials["key"] == new_key

    await _until(sees_new_key, within=10.0)  # by NOTIFY on a loaded machine; the copy is kept 60 s
    assert account.id == account_id


async def test_without_the_listen_connection_every_call_reads(make_client: Any) -> None:
    client = await make_client(enabled_providers=["sandbox", "payme"], account_cache_seconds=60)
    copies = client.app[account_copies_key]
    copies.listening = lambda: False
    await _payme_account(client.app, secrets.token_urlsafe(27))
    before = copies.reads
    await copies.of("payme")
    await copies.of("payme")
    assert copies.reads == before + 2


async def test_a_copy_is_never_older_than_its_max_age(make_client: Any) -> None:
    client = await make_client(enabled_providers=["sandbox", "payme"], account_cache_seconds=60)
    copies = client.app[account_copies_key]
    now = [1000.0]
    copies.clock = lambda: now[0]
    copies.listening = lambda: True
    await copies.of("payme")
    before = copies.reads
    now[0] += 59
    await copies.of("payme")
    assert copies.reads == before
    now[0] += 2
    await copies.of("payme")
    assert copies.reads == before + 1


async def test_change_password_is_seen_at_once_by_the_replica_that_made_it(make_client: Any) -> None:
    client = await make_client(enabled_providers=["sandbox", "payme"], account_cache_seconds=60)
    copies = client.app[account_copies_key]
    copies.listening = lambda: True  # as if the notification were late: only the local drop can help
    old_key, new_key = secrets.token_urlsafe(27), secrets.token_urlsafe(27)
    await _payme_account(client.app, old_key)
    copies.invalidate()
    await copies.of("payme")
    auth = {"Authorization": "Basic " + base64.b64encode(f"Paycom:{old_key}".encode()).decode()}
    body = {"jsonrpc": "2.0", "id": 1, "method": "ChangePassword", "params": {"password": new_key}}
    answer = await (await client.post("/billing/payme", json=body, headers=auth)).json()
    assert answer.get("result") == {"success": True}, answer
    assert (await copies.of("payme"))[0].credentials["key"] == new_key


async def test_by_id_finds_the_account_a_transaction_was_started_with_and_follows_its_changes(
    make_client: Any,
) -> None:
    # Every Octo callback, Stripe payer page and status, refund or cancel of a started transaction looks
    # up its account: from the copy, and a change (a rotated secret) reaches it as it reaches the list.
    ours = await make_client(enabled_providers=["sandbox", "payme"], account_cache_seconds=60)
    copies = ours.app[account_copies_key]

    async def listening() -> bool:
        return bool(copies.listening())

    await _until(listening)
    epoch = copies.epoch
    account_id = await _payme_account(ours.app, secrets.token_urlsafe(27))

    async def notified() -> bool:
        return copies.epoch > epoch

    await _until(notified)  # the insert's own notification, which drops the copies once more
    found = await copies.by_id("payme", account_id)
    assert found is not None and found.id == account_id
    reads = copies.reads
    assert await copies.by_id("payme", account_id) == found
    assert copies.reads == reads  # served by the copy
    assert await copies.by_id("payme", "pac_missing") is None
    assert await copies.by_id("click", account_id) is None  # another provider's account is not it
    new_key = secrets.token_urlsafe(27)
    changes = AccountChanges(credentials={"key": new_key})
    await update_account(ours.app[uow_factory_key], ours.app[key_ring_key], account_id, changes, utcnow())

    async def sees_new_key() -> bool:
        account = await copies.by_id("payme", account_id)
        return account is not None and account.credentials["key"] == new_key

    await _until(sees_new_key, within=10.0)  # by NOTIFY on a loaded machine; the copy is kept 60 s


async def test_the_simulators_find_their_account_in_the_copy(make_client: Any) -> None:
    # Every call a simulator answers (Octo's API and pay page, Payme's and Click's pages) asks for its
    # account: created on first use, then served by the copy.
    ours = await make_client(enabled_providers=["sandbox", "octo"], account_cache_seconds=60)
    copies = ours.app[account_copies_key]

    async def listening() -> bool:
        return bool(copies.listening())

    await _until(listening)
    first = await simulator_account(copies, "octo")
    assert first.simulator and first.provider == "octo"

    async def served_by_the_copy() -> bool:
        # (Once the creation's own notification has dropped the copy that was read before it.)
        reads = copies.reads
        return await simulator_account(copies, "octo") == first and copies.reads == reads

    await _until(served_by_the_copy)
