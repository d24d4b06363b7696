"""The entry points' event loop runner."""

from __future__ import annotations

import asyncio

import pytest
from billing_runtime.running import run


def test_run_drives_the_coroutine_on_uvloop() -> None:
    seen: list[str] = []

    async def main() -> None:
        await asyncio.sleep(0)
        seen.append(type(asyncio.get_running_loop()).__module__)

    run(main())
    assert seen == ["uvloop"]


def test_run_propagates_the_coroutines_exception() -> None:
    async def main() -> None:
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        run(main())
