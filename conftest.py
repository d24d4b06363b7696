"""Run-wide test setup: every test run gets a RabbitMQ virtual host of its own, and a test that hangs
shows where its asyncio tasks wait.

Queue names are fixed per service, so two runs on one broker (a developer's and CI's, or two worktrees)
would otherwise consume, purge and delete each other's queues. ``require_rabbitmq()`` returns this
run's vhost; child processes inherit it through the environment.

pytest-timeout (120 s, or a test's own mark) shows only the main thread, which an asyncio test leaves in
the selector: a rare hang in a teardown could not be told apart. 20 s before the timeout, every live
task's stack is printed (to the test's captured stderr, shown with its failure).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import secrets
import sys
import threading
from collections.abc import Iterator

import pytest
from billing_runtime.testing import RABBIT_URL_ENV, scratch_vhost

_VHOST_KEY = pytest.StashKey[contextlib.ExitStack]()
# Seconds before a test's timeout (pytest-timeout: 120 s in pyproject.toml, or the test's own
# ``timeout`` mark) at which its asyncio tasks are printed: long after its normal length, and before
# the timeout ends it.
HANG_DUMP_BEFORE_TIMEOUT = 20.0


def pytest_configure(config: pytest.Config) -> None:
    if RABBIT_URL_ENV in os.environ:
        return  # told which broker and vhost to use
    stack = contextlib.ExitStack()
    url = stack.enter_context(scratch_vhost(f"billing-test-{os.getpid()}-{secrets.token_hex(3)}"))
    os.environ[RABBIT_URL_ENV] = url
    config.stash[_VHOST_KEY] = stack


def pytest_unconfigure(config: pytest.Config) -> None:
    stack = config.stash.get(_VHOST_KEY, None)
    if stack is not None:
        os.environ.pop(RABBIT_URL_ENV, None)
        stack.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    marker = item.get_closest_marker("timeout")
    timeout = float(marker.args[0]) if marker is not None and marker.args else float(item.config.getini("timeout"))
    after = max(timeout - HANG_DUMP_BEFORE_TIMEOUT, timeout / 2)
    timer = threading.Timer(after, _print_asyncio_tasks, args=(item.nodeid, after))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _print_asyncio_tasks(nodeid: str, after: float) -> None:
    # From the timer's thread, while the loop is stuck in another: a best-effort read, for diagnosis only.
    out = sys.stderr
    print(f"\n+++ {nodeid} still running after {after:.0f} s; its asyncio tasks: +++", file=out)
    loops = [o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and not o.is_closed()]
    for loop in loops:
        with contextlib.suppress(Exception):
            for task in asyncio.all_tasks(loop):
                print(f"--- {task!r}", file=out)
                task.print_stack(file=out)
    out.flush()
