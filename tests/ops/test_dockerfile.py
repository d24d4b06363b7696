"""The Dockerfile, without a docker engine: hadolint finds nothing in it, and it has the properties the
issue asks for (multi-stage, slim 3.11 base, uv.lock frozen, non-root, a health check), read from its
instructions. Whether an image builds and runs is beyond these tests: they need no docker."""

from __future__ import annotations

import http.server
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import BIN, DOCKERFILE, ROOT

HEALTHCHECK_SCRIPT = ROOT / "ops" / "docker" / "healthcheck.py"


def hadolint(path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Every rule at every severity counts (failure threshold "style", the lowest). No configuration is
    # read from the user's home (XDG_CONFIG_HOME, HADOLINT_* cleared): a waiver lives in the Dockerfile,
    # next to its reason, or nowhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("HADOLINT_")}
    env["XDG_CONFIG_HOME"] = str(cwd / ".no-config")
    return subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
        check=False,
    )


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    found = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (a stage starts at its FROM)."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def arg_default(name: str) -> str:
    for keyword, rest in instructions():
        if keyword == "ARG" and rest.startswith(f"{name}="):
            return rest.split("=", 1)[1]
    raise AssertionError(f"no ARG {name}=... in the Dockerfile")


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    result = hadolint(DOCKERFILE, tmp_path)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_does_report_what_it_should(tmp_path: Path) -> None:
    # The lint above is only worth something if it runs: here a Dockerfile with known faults.
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\nCMD python app.py\n")
    result = hadolint(bad, tmp_path)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3015", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_every_waiver_gives_its_reason() -> None:
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            above = lines[number - 1].strip() if number else ""
            reason = above.startswith("#") and "hadolint" not in above
            assert reason, f"line {number + 1}: a waiver needs its reason on the line above"


def test_multi_stage_on_one_slim_python_311_base() -> None:
    froms = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert len(froms) >= 3, froms  # uv, builder, runtime
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", arg_default("PYTHON_IMAGE"))
    # The virtual environment's interpreter path must exist in the runtime: same image both sides.
    assert froms[-1].split()[0] == "${PYTHON_IMAGE}"
    assert any(f.split()[0] == "${PYTHON_IMAGE}" and f.endswith("AS builder") for f in froms[:-1])


def test_uv_is_the_version_the_makefile_pins() -> None:
    makefile = (ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.M)
    assert pinned
    assert arg_default("UV_IMAGE") == f"ghcr.io/astral-sh/uv:{pinned.group(1)}"


def test_dependencies_come_from_the_lock_only() -> None:
    syncs = [rest for keyword, rest in instructions() if keyword == "RUN" and "uv sync" in rest]
    assert len(syncs) == 2, syncs  # third-party layer, then the code
    for command in syncs:
        assert "--frozen" in command and "--no-dev" in command and '--package "${SERVICE}"' in command
    assert "--no-install-workspace" in syncs[0]
    assert not any(keyword == "RUN" and re.search(r"\bpip\b", rest) for keyword, rest in instructions())


def test_every_workspace_member_is_copied_for_the_dependency_layer() -> None:
    # uv reads the whole workspace even to install one member: a member added to the root pyproject
    # and not copied here would break every image's build.
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]["members"]
    pyprojects = [p for member in workspace for p in ROOT.glob(f"{member}/pyproject.toml")]
    members = sorted({p.parent.relative_to(ROOT).as_posix() for p in pyprojects})
    copies = {rest for keyword, rest in instructions() if keyword == "COPY"}
    for member in members:
        assert f"{member}/pyproject.toml {member}/" in copies, member


def test_the_runtime_runs_as_a_fixed_unprivileged_user() -> None:
    runtime = stages()[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users, "the runtime stage sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) >= 1000 and gid.isdigit() and int(gid) >= 1000
    assert not any(keyword == "RUN" for keyword, _ in runtime[[k for k, _ in runtime].index("USER") :])
    # No build tool in the runtime: uv stays in the builder.
    assert not any(keyword == "COPY" and "--from=uv" in rest for keyword, rest in runtime)


def test_health_check_is_the_stdlib_script_on_the_roles_port() -> None:
    runtime = stages()[-1]
    checks = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    assert len(checks) == 1 and "healthcheck.py" in checks[0]
    assert any(keyword == "ENV" and "HEALTHCHECK_PORT=${PORT}" in rest for keyword, rest in runtime)
    assert any(keyword == "COPY" and "ops/docker/healthcheck.py" in rest for keyword, rest in runtime)


def test_the_role_is_the_command() -> None:
    runtime = stages()[-1]
    (entrypoint,) = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert entrypoint == '["/app/.venv/bin/service"]'
    # No default role: a container states which one it is (docker-compose.yml, the k8s manifests).
    assert not any(keyword == "CMD" for keyword, _ in runtime)


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    for entry in (".env", ".git", ".venv", ".tools", ".data", "**/tests", "**/__pycache__"):
        assert entry in ignored, entry


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[http.server.HTTPServer, type[_Health]]]:
    handler = type("Handler", (_Health,), {})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def run_healthcheck(port: int) -> int:
    env = {"PATH": os.environ.get("PATH", ""), "HEALTHCHECK_PORT": str(port)}
    check = subprocess.run([sys.executable, str(HEALTHCHECK_SCRIPT)], env=env, capture_output=True, timeout=30)
    return check.returncode


def test_healthcheck_script_follows_healthz(health_server: tuple[http.server.HTTPServer, type[_Health]]) -> None:
    server, handler = health_server
    port = server.server_address[1]
    assert run_healthcheck(port) == 0
    handler.status = 503
    assert run_healthcheck(port) == 1
    server.shutdown()
    server.server_close()
    assert run_healthcheck(port) == 1  # nothing listening
