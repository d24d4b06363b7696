"""ops/gen_env.py (`make env`): every value it generates passes the services' own checks, an existing
`.env` is never overwritten without --force, and `.env.example` is exactly what it says is needed."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from billing_runtime.key_ring import key_ring_problem
from billing_runtime.secret_policy import weakness

from .support import ROOT, SECRET_NAME, parse_env_file, run_gen_env

FERNET = ("PROVIDERS_CREDENTIALS_KEYS", "WEBHOOKS_ENCRYPTION_KEY")


def example() -> dict[str, str]:
    return parse_env_file((ROOT / ".env.example").read_text())


def secrets_of(values: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in values.items() if SECRET_NAME.search(name)}


def test_every_secret_passes_the_secret_policy(dotenv: dict[str, str]) -> None:
    secrets = secrets_of(dotenv)
    assert len(secrets) >= 16
    for name, value in secrets.items():
        if name in FERNET:
            assert key_ring_problem(value, name) is None, name
        elif name == "GATEWAY_JWT_KEYS":
            kid, _, key = value.partition(":")
            assert kid and weakness(key) is None
        else:
            assert weakness(value) is None, name
        # Safe unquoted in .env (no $ for compose to interpolate) and inside a URL (database passwords).
        assert re.fullmatch(r"[A-Za-z0-9_=:-]+", value), name
    assert len(set(secrets.values())) == len(secrets), "every secret is a value of its own"


def test_the_file_is_for_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert run_gen_env("--output", path).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_an_existing_env_is_kept(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert run_gen_env("--output", path).returncode == 0
    first = path.read_text()
    again = run_gen_env("--output", path)
    assert again.returncode == 0 and "kept" in again.stdout
    assert path.read_text() == first


def test_only_what_is_missing_is_added(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert run_gen_env("--output", path).returncode == 0
    before = parse_env_file(path.read_text())
    lines = [line for line in path.read_text().splitlines() if not line.startswith("RABBITMQ_PASSWORD=")]
    path.write_text("\n".join([*lines, "OPERATOR_OWN=kept"]) + "\n")
    result = run_gen_env("--output", path)
    assert result.returncode == 0 and "RABBITMQ_PASSWORD" in result.stdout
    after = parse_env_file(path.read_text())
    assert after.pop("OPERATOR_OWN") == "kept"
    assert after.pop("RABBITMQ_PASSWORD") not in ("", before["RABBITMQ_PASSWORD"])
    before.pop("RABBITMQ_PASSWORD")
    assert after == before
    assert not any(value in result.stdout for value in after.values() if len(value) > 20), "no secret printed"


def test_force_regenerates_every_secret(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    assert run_gen_env("--output", path).returncode == 0
    before = secrets_of(parse_env_file(path.read_text()))
    assert run_gen_env("--output", path, "--force").returncode == 0
    after = secrets_of(parse_env_file(path.read_text()))
    assert set(before) == set(after)
    assert all(before[name] != after[name] for name in before)


def test_env_example_is_the_generators_own(dotenv: dict[str, str]) -> None:
    printed = run_gen_env("--example")
    assert printed.returncode == 0
    assert (ROOT / ".env.example").read_text() == printed.stdout, "regenerate it: python3 ops/gen_env.py --example"
    assert set(example()) == set(dotenv)
    assert all(example()[name] == "" for name in secrets_of(dotenv)), "an example names secrets, holds none"
