"""Write the `.env` that docker-compose.yml reads: every secret generated, the other settings at their
defaults. ``make env`` runs it; ``--example`` prints the committed `.env.example` (names, no values).

One variable per key, whoever holds it: docker-compose.yml hands a service's internal key to that
service and, under their own names, to its callers (docs/INTERNAL.md "Trust"), so the holders of a key
cannot drift apart. An existing `.env` is kept: only variables it lacks are added (a new release may
need a new key), unless ``--force``, which regenerates everything. Mind that the PostgreSQL passwords
are set when the database volume is first created and the encryption keys open what is stored: after a
``--force`` on a running installation, remove its volumes (`docker compose down -v`) or put the old
values back.

Standard library only, so it runs with any python3 before anything is installed.
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def token() -> str:
    # 48 random bytes, url-safe base64 (64 characters): well over secret_policy's 32 bytes, and only
    # [A-Za-z0-9_-], so a value needs no quoting in `.env` nor escaping in a URL (database passwords).
    return secrets.token_urlsafe(48)


def fernet_key() -> str:
    # What cryptography's Fernet.generate_key() returns: url-safe base64 of 32 random bytes.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def jwt_keys() -> str:
    # The gateway's GATEWAY_JWT_KEYS format, "kid:secret[,kid:secret]": the first key signs.
    return f"k1:{token()}"


@dataclass(frozen=True)
class Variable:
    name: str
    about: str
    generate: Callable[[], str] | None = None  # None: a setting, written with its default
    default: str = ""

    @property
    def secret(self) -> bool:
        return self.generate is not None


VARIABLES: tuple[Variable, ...] = (
    # The internal keys: each service that receives internal calls verifies with its own.
    Variable("PAYMENTS_INTERNAL_SECRET", "payments-svc's key; held by the gateway", token),
    Variable("PROVIDERS_INTERNAL_SECRET", "providers-svc's key; held by payments-svc and the gateway", token),
    # reconciliation-svc signs with keys of its own at the two services it calls (a key per issuer).
    Variable("PAYMENTS_RECONCILIATION_INTERNAL_SECRET", "payments-svc's key for reconciliation-svc alone", token),
    Variable("PROVIDERS_RECONCILIATION_INTERNAL_SECRET", "providers-svc's key for reconciliation-svc alone", token),
    Variable("WEBHOOKS_INTERNAL_SECRET", "webhook-dispatcher's key; held by the gateway", token),
    Variable("RECONCILIATION_INTERNAL_SECRET", "reconciliation-svc's key; held by the gateway", token),
    Variable("GATEWAY_JWT_KEYS", "HMAC keys of tenant JWTs, 'kid:secret,...' (the first signs)", jwt_keys),
    Variable("BILLING_ADMIN_TOKEN", "the gateway's admin API token (Authorization: Bearer ...)", token),
    Variable("PROVIDERS_SANDBOX_SECRET", "HMAC key of the sandbox provider's signed callbacks", token),
    Variable("PROVIDERS_CREDENTIALS_KEYS", "Fernet keys of provider credentials at rest, 'new,old'", fernet_key),
    Variable("WEBHOOKS_ENCRYPTION_KEY", "Fernet keys of webhook signing secrets at rest, 'new,old'", fernet_key),
    Variable(
        "CHECKOUT_SESSION_KEYS", "Fernet keys of dashboard sessions' access tokens at rest, 'new,old'", fernet_key
    ),
    # Infrastructure: set when its volume is first created (see the module's docstring).
    Variable("POSTGRES_PASSWORD", "PostgreSQL superuser (postgres); no service uses it", token),
    Variable("GATEWAY_DB_PASSWORD", "PostgreSQL role gateway (database gateway)", token),
    Variable("PAYMENTS_DB_PASSWORD", "PostgreSQL role payments (database payments)", token),
    Variable("PROVIDERS_DB_PASSWORD", "PostgreSQL role providers (database providers)", token),
    Variable("WEBHOOKS_DB_PASSWORD", "PostgreSQL role webhooks (database webhooks)", token),
    Variable("RECONCILIATION_DB_PASSWORD", "PostgreSQL role reconciliation (database reconciliation)", token),
    Variable("CHECKOUT_DB_PASSWORD", "PostgreSQL role checkout (database checkout: dashboard sessions)", token),
    Variable("RABBITMQ_PASSWORD", "RabbitMQ user billing (vhost billing; management UI too)", token),
    # Settings that are not secret.
    Variable(
        "PUBLIC_GATEWAY_URL",
        "the gateway as payers' browsers AND the providers-svc containers reach it (sandbox callbacks); "
        "gateway.localhost is the gateway's alias on the compose network and loopback in browsers",
        default="http://gateway.localhost:8000",
    ),
    Variable("PUBLIC_CHECKOUT_URL", "checkout-web as payers' browsers reach it", default="http://127.0.0.1:8080"),
    Variable("WEBHOOKS_ALLOW_HTTP", "deliver webhooks to http:// URLs too (https only: false)", default="false"),
    Variable(
        "WEBHOOKS_ALLOWED_HOSTS",
        "hosts exempt from the SSRF guard's private-address refusal, e.g. host.docker.internal",
        default="",
    ),
)


HEADER = (
    "# docker-compose.yml's settings. `make env` writes .env from this list, every secret generated\n"
    "# (ops/gen_env.py); in .env.example they are empty. .env is git-ignored: never commit it."
)


def render(values: dict[str, str], *, example: bool, header: bool = True) -> str:
    """The ``VARIABLES`` named in ``values`` (all of them for an example), each under its description."""
    lines = [HEADER] if header else []
    for variable in VARIABLES:
        if not example and variable.name not in values:
            continue
        lines.append(f"# {variable.about}")
        # An example names every secret and holds none.
        value = ("" if variable.secret else variable.default) if example else values[variable.name]
        lines.append(f"{variable.name}={value}")
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, str]:
    """``NAME=value`` lines (what this script writes); comments and blank lines skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#"):
            values[name.strip()] = value.strip()
    return values


def generate(existing: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The values to write (the existing ones kept) and the names newly generated or defaulted."""
    values = dict(existing)
    added: list[str] = []
    for variable in VARIABLES:
        if values.get(variable.name, "") == "" and (variable.secret or variable.name not in values):
            values[variable.name] = variable.generate() if variable.generate is not None else variable.default
            added.append(variable.name)
    return values, added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--output", type=Path, default=Path(".env"), help="the file to write (default: .env)")
    parser.add_argument("--force", action="store_true", help="regenerate every value of an existing file")
    parser.add_argument("--example", action="store_true", help="print .env.example (no secret) and exit")
    args = parser.parse_args(argv)
    if args.example:
        sys.stdout.write(render({}, example=True))
        return 0
    path: Path = args.output
    if path.exists() and not args.force:
        # Kept as it is, lines of the operator's own included; only what it lacks is appended.
        text = path.read_text()
        values, added = generate(parse(text))
        if not added:
            print(f"{path}: every variable is set; kept as it is (--force regenerates them all)")
            return 0
        fresh = render({name: values[name] for name in added}, example=False, header=False)
        path.write_text(text + ("" if text.endswith("\n") or not text else "\n") + fresh)
        print(f"{path}: kept; added {', '.join(added)}")
        return 0
    values, added = generate({})
    # Created owner-only before a secret is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(render(values, example=False))
    os.chmod(path, 0o600)
    print(f"{path}: written, {len(added)} variables ({sum(v.secret for v in VARIABLES)} secrets generated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
