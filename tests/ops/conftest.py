"""Fixtures of the ops tests (helpers in support.py): the repository's services, docker-compose.yml, and
a `.env` generated as `make env` generates it."""

from __future__ import annotations

from typing import Any

import pytest

from .support import COMPOSE_FILE, Service, load_yaml, parse_env_file, repository_services, run_gen_env


@pytest.fixture(scope="session")
def services() -> dict[str, Service]:
    return {service.directory: service for service in repository_services()}


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    loaded = load_yaml(COMPOSE_FILE)
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="session")
def dotenv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A `.env` exactly as `make env` writes it, in a directory of the test's own."""
    path = tmp_path_factory.mktemp("env") / ".env"
    result = run_gen_env("--output", path)
    assert result.returncode == 0, result.stderr
    return parse_env_file(path.read_text())
