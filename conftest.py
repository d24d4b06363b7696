"""Run-wide test setup: every test run gets a RabbitMQ virtual host of its own.

Queue names are fixed per service, so two runs on one broker (a developer's and CI's, or two worktrees)
would otherwise consume, purge and delete each other's queues. ``require_rabbitmq()`` returns this
run's vhost; child processes inherit it through the environment.
"""

from __future__ import annotations

import contextlib
import os
import secrets

import pytest
from billing_runtime.testing import RABBIT_URL_ENV, scratch_vhost

_VHOST_KEY = pytest.StashKey[contextlib.ExitStack]()


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
