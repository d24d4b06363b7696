"""What the ops tests share: the repository's services as its code declares them, docker-compose.yml as
written and as compose would run it (``${VAR}`` substituted from a `.env` that ops/gen_env.py generates).

Nothing here needs docker: the files are read, the services' own Settings classes judge each
container's environment, and the processes' command lines are asked for their roles.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
GEN_ENV = ROOT / "ops" / "gen_env.py"
BIN = Path(sys.executable).parent
# The all-in-one development mode runs every service in one process; it is not containerised.
NOT_CONTAINERISED = {"embedded"}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error} (compose's interpolation).
# The .env variables and container settings that hold a secret, by name.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASS|TOKEN|_KEY|_KEYS)$")
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


@dataclass(frozen=True)
class Service:
    """A service of the repository: its directory (= package = command), Settings class and roles."""

    directory: str
    settings: type[BaseSettings]
    main: Callable[[list[str]], None]
    roles: frozenset[str]  # the command's choices: migrate, api, worker, all, serve, ...

    @property
    def prefix(self) -> str:
        return str(self.settings.model_config.get("env_prefix") or "")

    @property
    def has_migrations(self) -> bool:
        return (ROOT / self.directory / "migrations").is_dir()


def _roles(main: Callable[[list[str]], None]) -> frozenset[str]:
    """The choices of the command's first argument, from its own ``--help`` (argparse's usage line)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    usage = out.getvalue().split("\n\n", 1)[0]
    choices = re.search(r"\{([a-z,-]+)\}", usage)
    assert choices, f"no roles in the usage line {usage!r}"
    return frozenset(choices.group(1).split(","))


def repository_services() -> list[Service]:
    """Every top-level directory with a pyproject that declares a command: the deployable services."""
    found = []
    for pyproject in sorted(ROOT.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        directory = pyproject.parent.name
        if not project.get("scripts") or directory in NOT_CONTAINERISED:
            continue
        (package,) = [p.name for p in (pyproject.parent / "src").iterdir() if (p / "__init__.py").exists()]
        settings = importlib.import_module(f"{package}.settings").Settings
        main = importlib.import_module(f"{package}.__main__").main
        found.append(Service(directory, settings, main, _roles(main)))
    return found


def load_yaml(path: Path) -> Any:
    # The safe loader, with YAML anchors and merge keys (<<) resolved as compose resolves them.
    return YAML(typ="safe", pure=True).load(path.read_text())


def interpolate(value: str, env: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        present = env.get(name)
        missing = present is None or (present == "" and op is not None and op.startswith(":"))
        if op in (":?", "?") and missing:
            raise KeyError(f"{name}: {arg}")
        if op in (":-", "-") and missing:
            return arg or ""
        return present or ""

    return REFERENCE.sub(substitute, value)


def environment(container: dict[str, Any], env: dict[str, str]) -> dict[str, str]:
    """A container's environment as compose hands it over, from the .env values ``env``."""
    raw = container.get("environment") or {}
    assert isinstance(raw, dict), "environment is written as a mapping"
    return {str(k): interpolate(str(v), env) for k, v in raw.items()}


def parse_env_file(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            values[name] = value
    return values


def run_gen_env(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GEN_ENV), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def role_of(container: dict[str, Any]) -> str:
    command = container.get("command")
    assert isinstance(command, list) and command, "command is written as a list: the role"
    return str(command[0])


def service_of(container: dict[str, Any]) -> str | None:
    """The repository service a container runs (its image's SERVICE build argument), None for others."""
    build = container.get("build")
    if not isinstance(build, dict):
        return None
    return str(build.get("args", {}).get("SERVICE"))


def settings_from(service: Service, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> BaseSettings:
    """The service's Settings built from ``env`` alone: what its process in that container would read."""
    for name in list(os.environ):
        if name.startswith(("GATEWAY_", "PAYMENTS_", "PROVIDERS_", "WEBHOOKS_", "RECONCILIATION_", "CHECKOUT_")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("BILLING_ADMIN_TOKEN", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return service.settings()
