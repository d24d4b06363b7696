"""docker-compose.yml: valid by the compose specification's JSON schema, and right by our own rules,
each derived from the code rather than restated (the services' commands, Settings classes and
docs/INTERNAL.md's table of who holds which key)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from billing_runtime.secret_policy import weakness
from pydantic import ValidationError
from ruamel.yaml import YAML

from .support import (
    BIN,
    COMPOSE_FILE,
    REFERENCE,
    ROOT,
    SECRET_NAME,
    Service,
    environment,
    role_of,
    service_of,
    settings_from,
)

INFRASTRUCTURE_PORTS = {"postgres": {5432}, "rabbitmq": {5672, 15672}}


def containers_of(compose: dict[str, Any], directory: str) -> dict[str, dict[str, Any]]:
    return {name: c for name, c in compose["services"].items() if service_of(c) == directory}


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    # The compose specification's schema as check-jsonschema vendors it: no download. Any attempt to
    # reach the network would go to a closed loopback port and fail the run.
    env = dict(os.environ, HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="")
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_valid_by_the_compose_specification_schema() -> None:
    result = check_jsonschema(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_does_refuse_an_invalid_file(tmp_path: Path, compose: dict[str, Any]) -> None:
    broken = dict(compose, services={**compose["services"], "gateway": {**compose["services"]["gateway"]}})
    broken["services"]["gateway"]["restart"] = 3  # must be a string
    broken["services"]["gateway"]["depends_on"] = {"gateway-migrate": {"condition": "when-ready"}}
    path = tmp_path / "docker-compose.yml"
    with path.open("w") as out:
        YAML(typ="safe", pure=True).dump(broken, out)
    result = check_jsonschema(path)
    assert result.returncode == 1, result.stdout + result.stderr


def test_every_service_runs_in_each_of_its_roles(compose: dict[str, Any], services: dict[str, Service]) -> None:
    assert services, "no service found in the repository"
    for directory, service in services.items():
        roles = sorted(role_of(c) for c in containers_of(compose, directory).values())
        # api and worker as separate containers (the `all` role is for a single host without compose).
        expected = sorted(service.roles & {"migrate", "api", "worker", "serve"})
        assert roles == expected, f"{directory}: containers for {roles}, its command offers {sorted(service.roles)}"


def test_docker_waits_for_each_process_to_drain(compose: dict[str, Any], services: dict[str, Service]) -> None:
    """A long-running process drains within its grace period after SIGTERM (30 s by default,
    <PREFIX>_SHUTDOWN_GRACE_SECONDS); Docker's own default (10 s) would kill it halfway."""
    for directory in services:
        for name, container in containers_of(compose, directory).items():
            if role_of(container) == "migrate":
                continue
            period = str(container.get("stop_grace_period", "10s"))
            assert period.endswith("s") and float(period[:-1]) >= 35, f"{name}: stop_grace_period {period}"


def test_each_migration_runs_once_before_its_service(compose: dict[str, Any], services: dict[str, Service]) -> None:
    for directory, service in services.items():
        containers = containers_of(compose, directory)
        migrations = [name for name, c in containers.items() if role_of(c) == "migrate"]
        assert len(migrations) == (1 if service.has_migrations else 0), directory
        for name in migrations:
            container = containers[name]
            assert container["restart"] == "no", f"{name} is one-shot"
            assert container["healthcheck"] == {"disable": True}, f"{name} serves nothing to check"
            assert container["depends_on"]["postgres"]["condition"] == "service_healthy"
            for other, c in containers.items():
                if other != name:
                    assert c["depends_on"][name]["condition"] == "service_completed_successfully", other
                    assert c["restart"] != "no", f"{other} is a long-running process"


def test_processes_with_a_database_or_broker_wait_until_they_are_healthy(compose: dict[str, Any]) -> None:
    for name, container in compose["services"].items():
        env = " ".join(str(v) for v in (container.get("environment") or {}).values())
        for infrastructure, scheme in (("postgres", "postgresql+asyncpg://"), ("rabbitmq", "amqp://")):
            if name != infrastructure and f"@{infrastructure}:" in env and scheme in env:
                assert container["depends_on"][infrastructure] == {"condition": "service_healthy"}, name


def has_health_check(container: dict[str, Any]) -> bool:
    check = container.get("healthcheck") or {}
    if check.get("disable"):
        return False
    # Its own test, or the image's HEALTHCHECK (every image built from our Dockerfile has one).
    return bool(check.get("test")) or service_of(container) is not None


def test_depends_on_is_consistent(compose: dict[str, Any]) -> None:
    services = compose["services"]
    edges: dict[str, set[str]] = {}
    for name, container in services.items():
        depends = container.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        edges[name] = set(depends)
        for target, how in depends.items():
            assert target in services, f"{name} depends on {target}, which is not a service"
            condition = how["condition"]
            if condition == "service_healthy":
                assert has_health_check(services[target]), f"{name} waits for {target}'s health, which has no check"
            elif condition == "service_completed_successfully":
                assert services[target]["restart"] == "no" and role_of(services[target]) == "migrate", target
            else:
                pytest.fail(f"{name} → {target}: condition {condition}")
    # A cycle would leave `docker compose up` waiting forever.
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"depends_on cycle: {' → '.join((*path, name))}"
        if name not in done:
            for target in edges[name]:
                visit(target, (*path, name))
            done.add(name)

    for name in edges:
        visit(name, ())


def app_containers(compose: dict[str, Any], services: dict[str, Service]) -> list[tuple[str, dict[str, Any], Service]]:
    found = []
    for name, container in compose["services"].items():
        directory = service_of(container)
        if directory is not None:
            found.append((name, container, services[directory]))
    return found


def test_each_container_has_every_setting_its_service_requires(
    compose: dict[str, Any],
    services: dict[str, Service],
    dotenv: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, container, service in app_containers(compose, services):
        # What the service cannot start without: the variables its Settings refuse to do without.
        required: set[str] = set()
        with monkeypatch.context() as empty:
            try:
                settings_from(service, {}, empty)
            except ValidationError as refused:
                required = {str(error["loc"][0]) for error in refused.errors()}
        if service.has_migrations:
            assert required, f"{service.directory} requires no setting? (its secrets are required)"
        env = environment(container, dotenv)
        for field in required:
            variable = f"{service.prefix}{field}".upper()
            assert env.get(variable), f"{name}: {variable} is required and not set"
        # ...and with what the container gets, it starts: every value valid (secret policy, Fernet
        # keys, JWT keys, database URLs).
        with monkeypatch.context() as patch:
            settings = settings_from(service, env, patch)
        # Every secret the service knows of is set, the optional ones too (the admin API, the
        # reconciliation admin API): compose runs the whole platform.
        for field, info in type(settings).model_fields.items():
            if "SecretStr" in str(info.annotation):
                assert getattr(settings, field), f"{name}: {service.prefix}{field.upper()} is not set"


def listening_ports(
    container: dict[str, Any], env: dict[str, str], service: Service, patch: pytest.MonkeyPatch
) -> set[int]:
    """Where the container's process listens: its role's port (a worker's own where its service has
    one, providers-svc's), and the gateway's ops listener; a migration nowhere."""
    settings = settings_from(service, env, patch)
    role = role_of(container)
    if role == "migrate":
        return set()
    worker_port = getattr(settings, "worker_port", None)
    ports = {int(worker_port if role == "worker" and worker_port else settings.port)}
    ops_port = getattr(settings, "ops_port", None)
    if ops_port:
        ports.add(int(ops_port))
    return ports


@pytest.fixture
def listeners(
    compose: dict[str, Any], services: dict[str, Service], dotenv: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> dict[str, set[int]]:
    """Container (and network alias) → the ports its process listens on, by its Settings."""
    found = {name: set(ports) for name, ports in INFRASTRUCTURE_PORTS.items()}
    for name, container, service in app_containers(compose, services):
        with monkeypatch.context() as patch:
            found[name] = listening_ports(container, environment(container, dotenv), service, patch)
        for alias in ((container.get("networks") or {}).get("default") or {}).get("aliases", []):
            found[alias] = found[name]
    return found


def test_published_ports_are_unique_and_listened_on(compose: dict[str, Any], listeners: dict[str, set[int]]) -> None:
    published: dict[str, str] = {}
    for name, container in compose["services"].items():
        for mapping in container.get("ports", []):
            *host, container_port = str(mapping).split(":")
            address = ":".join(host)
            host_port = address.rsplit(":", 1)[-1]
            assert host_port not in published, f"host port {host_port}: {published.get(host_port)} and {name}"
            published[host_port] = name
            assert int(container_port) in listeners[name], f"{name} publishes {container_port}, not listened on"
            if name not in ("gateway", "checkout-web") or container_port == "8090":
                # Only the two public entries face the network; ops and management ports stay on loopback.
                assert address.startswith("127.0.0.1:"), f"{name}: {mapping} must be bound to loopback"


def test_health_checks_probe_the_port_of_the_role(
    compose: dict[str, Any], services: dict[str, Service], dotenv: dict[str, str], listeners: dict[str, set[int]]
) -> None:
    for name, container, _service in app_containers(compose, services):
        if role_of(container) == "migrate":
            continue
        env = environment(container, dotenv)
        port = int(env.get("HEALTHCHECK_PORT") or container["build"]["args"]["PORT"])
        assert port in listeners[name], f"{name}: health check on {port}, the process listens on {listeners[name]}"


def test_every_url_between_containers_reaches_a_listener(
    compose: dict[str, Any], dotenv: dict[str, str], listeners: dict[str, set[int]]
) -> None:
    checked = 0
    for name, container in compose["services"].items():
        for variable, value in environment(container, dotenv).items():
            for url in re.findall(r"[a-z+]+://[^\s,]+", value):
                parts = urlsplit(url)
                host, port = parts.hostname or "", parts.port
                if host in ("127.0.0.1", "localhost"):
                    continue  # a browser's address (public URLs), not a container's
                assert host in listeners, f"{name} {variable}: {host} is no service of this file"
                assert port in listeners[host], f"{name} {variable}: {host} listens on {listeners[host]}, not {port}"
                checked += 1
    assert checked >= 20


def test_webhooks_can_never_reach_a_listener_of_the_platform(
    compose: dict[str, Any], dotenv: dict[str, str], listeners: dict[str, set[int]]
) -> None:
    for name in ("webhooks-api", "webhooks-worker"):
        raw = environment(compose["services"][name], dotenv)["WEBHOOKS_PLATFORM_ADDRESSES"]
        refused = {(h, int(p)) for h, _, p in (entry.strip().rpartition(":") for entry in raw.split(","))}
        for host, ports in listeners.items():
            for port in ports:
                assert (host, port) in refused, f"{name}: a webhook to {host}:{port} would be allowed"


def internal_keys() -> dict[str, list[str]]:
    """docs/INTERNAL.md "Trust": each key a service verifies with → the names its holders hold it under.
    A row may name a second key after a ";" (a key kept for one issuer alone), its holder likewise."""
    table = {}
    for line in (ROOT / "docs" / "INTERNAL.md").read_text().splitlines():
        cells = line.split("|")
        if len(cells) == 6 and "_INTERNAL_SECRET" in cells[2]:
            for verifies, holders in zip(cells[2].split(";"), cells[4].split(";"), strict=True):
                (owner,) = re.findall(r"`([A-Z_]+_INTERNAL_SECRET)`", verifies)
                table[owner] = re.findall(r"`([A-Z_]+_INTERNAL_SECRET)`", holders)
    return table


def test_a_key_and_its_holders_share_one_value(compose: dict[str, Any]) -> None:
    keys = internal_keys()
    assert len(keys) == 6 and all(keys.values()), keys
    references: dict[str, set[str]] = {}
    for container in compose["services"].values():
        for variable, value in (container.get("environment") or {}).items():
            references.setdefault(variable, set()).update(m.group("name") for m in REFERENCE.finditer(str(value)))
    for owner, holders in keys.items():
        assert len(references[owner]) == 1, f"{owner}: {references[owner]}"
        for holder in holders:
            assert references.get(holder) == references[owner], f"{holder} must hold {owner}'s value"


def test_no_secret_is_written_in_the_file(compose: dict[str, Any]) -> None:
    for name, container in compose["services"].items():
        for variable, value in (container.get("environment") or {}).items():
            text = str(value)
            if SECRET_NAME.search(variable):
                assert re.fullmatch(REFERENCE.pattern, text), f"{name} {variable}: a secret must come from .env"
            for url in re.findall(r"[a-z+]+://[^\s,]+", text):
                password = urlsplit(url).password
                assert password is None or re.fullmatch(REFERENCE.pattern, password), f"{name} {variable}"
    # Nothing that looks like a generated value anywhere (the references removed).
    bare = REFERENCE.sub("", COMPOSE_FILE.read_text())
    for run in re.findall(r"[A-Za-z0-9_+/=-]{32,}", bare):
        assert not (re.search(r"[a-z]", run) and re.search(r"[0-9]", run)), f"a secret literal? {run[:6]}..."


def test_env_example_names_every_variable_and_holds_no_secret(dotenv: dict[str, str]) -> None:
    used = {m.group("name") for m in REFERENCE.finditer(COMPOSE_FILE.read_text())}
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        variable, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            example[variable] = value
    assert used <= set(example), f"not in .env.example: {sorted(used - set(example))}"
    assert set(example) <= set(dotenv), "make env writes every variable of the example"
    for variable, value in example.items():
        if SECRET_NAME.search(variable):
            assert value == "", f".env.example: {variable} must be empty"
            # Compose itself refuses to start on an empty or missing secret (${VAR:?...}).
            for match in REFERENCE.finditer(COMPOSE_FILE.read_text()):
                if match.group("name") == variable:
                    assert match.group("op") == ":?", f"{variable} is referenced without :?"
        # A secret that made it into .env.example would be a published value: no placeholder passes.
        assert value == "" or weakness(value) is not None, variable


def test_dotenv_is_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT, check=False, timeout=30)
    assert ignored.returncode == 0, ".env must be git-ignored"
    tracked = subprocess.run(["git", "ls-files", ".env"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert tracked.stdout == ""


def test_interpolation_is_what_compose_does() -> None:
    # The helper the other tests rely on, against compose's documented behaviour.
    from .support import interpolate

    env = {"SET": "v", "EMPTY": ""}
    assert interpolate("a${SET}b", env) == "avb"
    assert interpolate("${EMPTY:-d}|${EMPTY-d}|${UNSET-d}", env) == "d||d"
    with pytest.raises(KeyError):
        interpolate("${EMPTY:?run make env}", env)
    with pytest.raises(KeyError):
        interpolate("${UNSET:?run make env}", env)
