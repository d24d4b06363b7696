"""What a service's process imports at start-up: each library module costs every process memory and
start-up time, so what only one command needs is imported by that command (issue 16, RSS)."""

from __future__ import annotations

import json

import pytest
from billing_runtime.testing import fresh_python

# The modules behind each service's command line (``<service> api | worker | migrate``).
ENTRY_POINTS = [
    "gateway.__main__",
    "payments_svc.__main__",
    "providers_svc.__main__",
    "webhook_dispatcher.__main__",
    "reconciliation_svc.__main__",
    "checkout_web.__main__",
]


def _imported_after(module: str) -> set[str]:
    # A fresh interpreter: this test process has imported everything already.
    code = f"import importlib, json, sys; importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))"
    return {name.split(".")[0] for name in json.loads(fresh_python(code))}


@pytest.mark.slow
@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_alembic_is_imported_only_by_the_migrate_command(module: str) -> None:
    # alembic, with mako behind it, is about 8 MiB of RSS and half a second of start-up. (Every test
    # that builds a database runs the migrations, so they are proven to work elsewhere.)
    assert _imported_after(module).isdisjoint({"alembic", "mako"})


@pytest.mark.slow
@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_stripe_is_imported_by_the_first_stripe_call_only(module: str) -> None:
    # stripe-python, with the HTTP libraries it probes for, is about 11 MiB of RSS: a platform without
    # Stripe accounts never loads it (the Stripe tests prove the first call does).
    assert _imported_after(module).isdisjoint({"stripe"})


# cryptography is about 10 MiB of RSS: PyJWT would load it for algorithms the platform never uses
# (``billing_runtime.hs256``), and a key ring loads it with its first encryption or decryption
# (``billing_runtime.key_ring``), never at start.
@pytest.mark.slow
@pytest.mark.parametrize("module", [*ENTRY_POINTS, "billing_embedded.__main__"])
def test_cryptography_is_not_imported_at_start(module: str) -> None:
    assert "cryptography" not in _imported_after(module)


# Processes with no RabbitMQ connection: the gateway consumes and publishes nothing, and the embedded
# mode's bus is in-process. aio-pika with aiormq and pamqp is about 2.4 MiB of RSS.
WITHOUT_AIO_PIKA = ["gateway.__main__", "billing_embedded.__main__"]


@pytest.mark.slow
@pytest.mark.parametrize("module", WITHOUT_AIO_PIKA)
def test_aio_pika_is_not_imported_where_there_is_no_rabbitmq(module: str) -> None:
    assert _imported_after(module).isdisjoint({"aio_pika", "aiormq", "pamqp"})


def _unbuilt_after(module: str) -> dict[str, list[str]]:
    """The pydantic models a fresh interpreter has defined after importing ``module``, by whether
    their validator is built yet; then the ones that fail to build when asked."""
    code = f"""
import importlib, json, pydantic
importlib.import_module({module!r})
from billing_contracts.events import ANY_EVENT
seen, todo, classes = {{}}, [pydantic.BaseModel], []
while todo:
    for sub in todo.pop().__subclasses__():
        todo.append(sub)
        classes.append(sub)
        seen[sub.__module__ + "." + sub.__qualname__] = bool(sub.__pydantic_complete__)
union = ["ANY_EVENT"] if ANY_EVENT.pydantic_complete else []
# What is deferred must still build when first used (a forward reference it cannot resolve would
# otherwise surface as a failed request, not at import).
unbuildable = []
for cls in classes:
    if not cls.__pydantic_complete__:
        try:
            cls.model_rebuild(raise_errors=True)
        except Exception as exc:
            unbuildable.append(cls.__module__ + "." + cls.__qualname__ + ": " + str(exc)[:200])
ANY_EVENT.rebuild(raise_errors=True)
print(json.dumps({{"built": sorted(k for k, v in seen.items() if v),
                  "deferred": sorted(k for k, v in seen.items() if not v),
                  "union": union, "unbuildable": unbuildable}}))
"""
    return json.loads(fresh_python(code))  # type: ignore[no-any-return]


@pytest.mark.slow
@pytest.mark.parametrize("module", ENTRY_POINTS)
def test_contract_and_api_models_are_built_by_their_first_use(module: str) -> None:
    # Every service imports every contract (the union that parses any event names them all) and its
    # own request and response models, but a process uses few of them (an api process parses no event,
    # a worker no request): built at import they cost each process about 1.5 MiB (issue 16, RSS).
    # Settings are built at import, as they are used at start.
    found = _unbuilt_after(module)
    assert any(name.startswith("billing_contracts.") for name in found["deferred"])
    ours = ("billing_contracts.", "gateway.", "payments_svc.", "providers_svc.", "webhook_dispatcher.")
    built = [name for name in found["built"] if name.startswith(ours) and not name.endswith(".Settings")]
    assert built == []
    assert found["union"] == []
    assert found["unbuildable"] == []
