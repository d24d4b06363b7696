"""``serve``'s stop, in a real process: SIGTERM fails readiness first, keeps serving through the pre-drain
delay, lets the request in flight finish, closes the listener and exits 0; a second signal, or a drain
that outlives the grace period, ends the process at once with status 1. Also the settings' bounds."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from billing_runtime.running import EXIT_FORCED
from billing_runtime.settings import ServiceSettings
from billing_runtime.testing import free_port
from pydantic import ValidationError

pytestmark = pytest.mark.slow  # a process per test

FIXTURE = Path(__file__).with_name("serve_fixture.py")


class Served:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]) -> None:
        self.port = port
        self.proc = proc

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _start(grace: float, delay: float, hang: bool) -> Served:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(FIXTURE), str(port), str(grace), str(delay), "1" if hang else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # "ready" once listening (or the traceback's first line)
    assert line.strip() == b"ready", line + proc.stdout.read()
    return Served(port, proc)


@pytest.fixture
def start() -> Iterator[object]:
    started: list[Served] = []

    def make(grace: float = 20, delay: float = 0, hang: bool = False) -> Served:
        served = _start(grace, delay, hang)
        started.append(served)
        return served

    yield make
    for served in started:
        if served.proc.poll() is None:
            served.proc.kill()
        served.proc.wait()
        if served.proc.stdout is not None:
            served.proc.stdout.close()


async def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        assert time.monotonic() < deadline, f"still running after {timeout}s"
        await asyncio.sleep(0.05)
    return proc.returncode


async def test_sigterm_fails_readiness_serves_through_the_delay_finishes_in_flight_and_exits_0(start) -> None:  # type: ignore[no-untyped-def]
    served = start(grace=20, delay=1.5)
    async with aiohttp.ClientSession() as http:
        assert (await http.get(served.url("/readyz"))).status == 200
        in_flight = asyncio.create_task(http.get(served.url("/slow")))
        await asyncio.sleep(0.3)
        began = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        ready = await http.get(served.url("/readyz"))
        assert ready.status == 503 and (await ready.json())["status"] == "draining"
        # The delay: out of rotation, still answering what comes.
        assert (await http.get(served.url("/healthz"))).status == 200
        answer = await in_flight
        assert answer.status == 200 and await answer.text() == "done"
        assert await _wait_exit(served.proc, 15) == 0
        assert time.monotonic() - began >= 1.5  # not before the delay
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http:
            await http.get(served.url("/healthz"))


async def test_in_flight_request_finishes_after_the_listener_closed(start) -> None:  # type: ignore[no-untyped-def]
    served = start(grace=20, delay=0)
    async with aiohttp.ClientSession() as http:
        in_flight = asyncio.create_task(http.get(served.url("/slow")))
        await asyncio.sleep(0.3)
        served.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        # Listener closed at once (no delay), the request in flight still answered.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as other:
                await other.get(served.url("/healthz"))
        answer = await in_flight
        assert answer.status == 200
    assert await _wait_exit(served.proc, 15) == 0


async def test_a_second_signal_exits_at_once(start) -> None:  # type: ignore[no-untyped-def]
    served = start(grace=60, hang=True)
    served.proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)
    assert served.proc.poll() is None  # draining (its cleanup never ends)
    served.proc.send_signal(signal.SIGINT)
    assert await _wait_exit(served.proc, 10) == EXIT_FORCED


async def test_a_drain_past_the_grace_period_is_ended_by_the_watchdog(start) -> None:  # type: ignore[no-untyped-def]
    served = start(grace=2, hang=True)
    began = time.monotonic()
    served.proc.send_signal(signal.SIGTERM)
    assert await _wait_exit(served.proc, 15) == EXIT_FORCED
    assert time.monotonic() - began >= 1.5


def test_the_delay_must_fit_in_the_grace_period(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHUTDOWN_GRACE_SECONDS", "10")
    monkeypatch.setenv("SHUTDOWN_DELAY_SECONDS", "10")
    with pytest.raises(ValidationError, match="SHUTDOWN_DELAY_SECONDS must be less than SHUTDOWN_GRACE_SECONDS"):
        ServiceSettings()
    monkeypatch.setenv("SHUTDOWN_DELAY_SECONDS", "5")
    settings = ServiceSettings()
    assert (settings.shutdown_grace_seconds, settings.shutdown_delay_seconds) == (10, 5)
