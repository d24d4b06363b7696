"""The embedded mode's SSRF guard refuses loopback unless it is told otherwise: ``make run`` tells it
(a newcomer's receiver on 127.0.0.1 must work) and the banner says which; ``billing-embedded`` started
any other way (a small single-node install) keeps the services on its host out of a tenant's reach."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from billing_embedded.__main__ import _webhooks_note
from billing_embedded.database import DatabaseServer
from billing_embedded.platform import build_config

ROOT = Path(__file__).resolve().parents[2]


class TestTheSetting:
    def test_loopback_is_refused_by_default_and_the_banner_says_so(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("WEBHOOKS_ALLOW_LOOPBACK", raising=False)
        config = build_config(tmp_path, DatabaseServer(tmp_path))
        assert config.webhooks.allow_loopback is False
        assert "are refused; set WEBHOOKS_ALLOW_LOOPBACK=true" in _webhooks_note(config)

    @pytest.mark.parametrize(("value", "allowed"), [("true", True), ("TRUE", True), ("false", False), ("1", False)])
    def test_only_an_explicit_true_allows_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str, allowed: bool
    ) -> None:
        monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", value)
        config = build_config(tmp_path, DatabaseServer(tmp_path))
        assert config.webhooks.allow_loopback is allowed
        assert ("may reach receivers on this machine" in _webhooks_note(config)) is allowed


class TestMakeRun:
    """``make run`` against a stand-in ``billing-embedded`` that prints the setting it was given."""

    def _run(self, tmp_path: Path, env_value: str | None) -> str:
        venv = tmp_path / "venv"
        (venv / "bin").mkdir(parents=True)
        stand_in = venv / "bin" / "billing-embedded"
        stand_in.write_text('#!/bin/sh\necho "loopback=$WEBHOOKS_ALLOW_LOOPBACK"\n')
        stand_in.chmod(0o755)
        (venv / ".synced").touch()  # installed: `make run` goes straight to the platform
        env = {k: v for k, v in os.environ.items() if k not in ("WEBHOOKS_ALLOW_LOOPBACK", "MAKEFLAGS", "MFLAGS")}
        if env_value is not None:
            env["WEBHOOKS_ALLOW_LOOPBACK"] = env_value
        make = shutil.which("make")
        assert make is not None, "make is needed to run the platform"
        done = subprocess.run(
            [make, "--no-print-directory", "run", f"VENV={venv}"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def test_make_run_allows_loopback(self, tmp_path: Path) -> None:
        assert "loopback=true" in self._run(tmp_path, None)

    def test_an_operators_false_wins(self, tmp_path: Path) -> None:
        assert "loopback=false" in self._run(tmp_path, "false")
