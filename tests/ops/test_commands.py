"""The services' command lines as a person meets them: `<service> --help` lists every command the
service takes, `dead-letters` included (it is dispatched before the argument parser, which would not
know of it otherwise), and `<service> dead-letters --help` answers without any setting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .support import BIN, Service

# The services with queues, whose dead letters the broker keeps (k8s/README.md "Dead-letter queues").
WITH_DEAD_LETTERS = {"payments-svc", "providers-svc", "webhook-dispatcher", "reconciliation-svc"}


def command(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The console script, with no service setting in its environment (only PATH) and no `.env` around."""
    return subprocess.run(
        [str(BIN / script), *args],
        env={"PATH": os.environ.get("PATH", "")},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_usage_line_lists_dead_letters(services: dict[str, Service], tmp_path: Path) -> None:
    assert set(services) >= WITH_DEAD_LETTERS
    for directory, service in services.items():
        # service.roles: the choices in the usage line of `<service> --help`.
        assert ("dead-letters" in service.roles) is (directory in WITH_DEAD_LETTERS), (directory, service.roles)
        answer = command(directory, "dead-letters", "--help", cwd=tmp_path)
        if directory in WITH_DEAD_LETTERS:
            assert answer.returncode == 0, answer.stderr
            assert answer.stdout.startswith(f"usage: {directory} dead-letters"), answer.stdout
            assert "{list,replay}" in answer.stdout
        else:
            assert answer.returncode == 2 and "invalid choice: 'dead-letters'" in answer.stderr, answer.stderr
