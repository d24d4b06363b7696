"""The event loop's lag and the garbage collector's pauses (``billing_runtime.loop_watch``): a loop held
by a callback shows as lag on ``/metrics`` and in the log, a full collection as a pause of generation 2,
and nothing of the watch outlives its application."""

from __future__ import annotations

import asyncio
import gc
import logging
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from billing_runtime.app import service_app
from billing_runtime.loop_watch import GcPauses, watch_lag
from billing_runtime.metrics import Metrics
from prometheus_client.parser import text_string_to_metric_families


def _sample(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _late(metrics: Metrics) -> float:
    """Samples at least 0.1 s late."""
    return _sample(metrics, "event_loop_lag_seconds_count") - _sample(
        metrics, "event_loop_lag_seconds_bucket", le="0.1"
    )


async def test_a_blocked_loop_is_observed_as_lag_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics("test")
    watch = asyncio.create_task(watch_lag(metrics, GcPauses(), interval=0.02, warning=0.1))
    try:
        async with asyncio.timeout(5):
            while _sample(metrics, "event_loop_lag_seconds_count") < 2:  # a few samples of a free loop
                await asyncio.sleep(0.01)
        late_before = _late(metrics)
        with caplog.at_level(logging.WARNING, logger="billing_runtime.loop_watch"):
            time.sleep(0.25)  # noqa: ASYNC251 (the point: the loop held, the timer due meanwhile fires late)
            await asyncio.sleep(0.05)
    finally:
        watch.cancel()
        await asyncio.wait([watch])
    assert _late(metrics) >= late_before + 1
    assert any("the event loop ran" in r.getMessage() and "ms late" in r.getMessage() for r in caplog.records)


async def test_every_collection_is_timed_by_its_generation() -> None:
    metrics = Metrics("test")
    pauses = GcPauses()
    gc.callbacks.append(pauses)
    watch = asyncio.create_task(watch_lag(metrics, pauses, interval=0.02))
    try:
        gc.collect()
        gc.collect(0)
        noted = list(pauses._pauses)  # noted by the callback, not observed yet
        await asyncio.sleep(0.1)
    finally:
        watch.cancel()
        await asyncio.wait([watch])
        gc.callbacks.remove(pauses)
    assert {2, 0} <= {generation for generation, _ in noted}
    assert _sample(metrics, "gc_pause_seconds_count", generation="2") >= 1
    assert _sample(metrics, "gc_pause_seconds_count", generation="0") >= 1
    assert _sample(metrics, "gc_pause_seconds_sum", generation="2") > 0


async def test_every_service_app_exports_both_and_leaves_nothing_behind() -> None:
    metrics = Metrics("test")
    app = service_app(metrics, checks={}, internal_secret=None, internal_audience="test")
    callbacks_before = list(gc.callbacks)
    async with TestClient(TestServer(app)) as client:
        assert len(gc.callbacks) == len(callbacks_before) + 1
        watch = [t for t in asyncio.all_tasks() if t.get_name() == "loop-watch"]
        assert len(watch) == 1
        gc.collect()
        async with client.get("/metrics") as r:
            exposition = await r.text()
    names = {family.name for family in text_string_to_metric_families(exposition)}
    assert {"event_loop_lag_seconds", "gc_pause_seconds"} <= names
    assert gc.callbacks == callbacks_before
    assert watch[0].done()
