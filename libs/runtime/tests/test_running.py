"""The entry points' event loop runner."""

from __future__ import annotations

import asyncio
import gc

import pytest
from billing_runtime.running import GC_GEN0_THRESHOLD, run


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


def test_run_freezes_the_start_up_heap_and_collects_young_objects_less_often() -> None:
    thresholds = gc.get_threshold()
    try:
        gc.unfreeze()
        run(asyncio.sleep(0))
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold()[0] == GC_GEN0_THRESHOLD
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
