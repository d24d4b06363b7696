"""Every overlay builds, and every resource it renders is valid for the Kubernetes versions we
support: built-in kinds against kubernetes-validate's bundled schemas (strict: an unknown field
fails), the operators' kinds against the CRD schemas vendored in tests/k8s/crds (SOURCES.md)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from .conftest import K8S, OVERLAYS, build

CRDS = Path(__file__).resolve().parent / "crds"
# The oldest Kubernetes the manifests are written for (preStop `sleep` actions need 1.30) and the
# newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ["1.30", kubernetes_validate.latest_version()]
CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("rabbitmq.com/v1beta1", "RabbitmqCluster"),
}


def test_every_overlay_is_listed() -> None:
    """A new overlay directory is built and checked too (OVERLAYS in conftest.py)."""
    found = set()
    for kustomization in K8S.glob("overlays/**/kustomization.yaml"):
        if yaml.safe_load(kustomization.read_text()).get("kind") == "Component":
            continue
        found.add(str(kustomization.parent.relative_to(K8S)))
    assert found == set(OVERLAYS)


def test_no_remote_bases() -> None:
    """Builds read local directories only: no git or HTTP base (the tests run offline, and a release
    must not change under us)."""
    for kustomization in K8S.rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        for entry in [*spec.get("resources", []), *spec.get("components", [])]:
            assert "://" not in entry and not entry.startswith(("github.com", "git@")), (kustomization, entry)
            assert (kustomization.parent / entry).exists(), (kustomization, entry)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_builds(builds: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    kinds = {resource["kind"] for resource in builds[overlay]}
    if overlay.endswith("/platform"):
        assert {"Namespace", "ConfigMap", "NetworkPolicy"} <= kinds
        assert not kinds & {"Deployment", "Job"}
    elif overlay.endswith("/migrate"):
        assert {"Job", "ConfigMap", "NetworkPolicy", "Namespace"} <= kinds
        assert "Deployment" not in kinds, "the migrations are applied (and completed) before the services"
    else:
        assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
        assert "Job" not in kinds


def test_the_bases_build_alone(kubectl: str) -> None:
    for base in ["base/apps", "base/migrate", "base/platform"]:
        assert build(kubectl, K8S / base), base


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_builtin_kinds_are_valid(builds: dict[str, list[dict[str, Any]]], version: str) -> None:
    # Each distinct resource once (the platform is in every build of its environment).
    unique = {json.dumps(r, sort_keys=True): r for rendered in builds.values() for r in rendered}
    checked = 0
    for resource in unique.values():
        if (resource["apiVersion"], resource["kind"]) in CUSTOM_KINDS:
            continue
        name = f"{resource['kind']}/{resource['metadata']['name']}"
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{name} is not valid for Kubernetes {version}: {exc.message} at {list(exc.path)}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            pytest.fail(f"{name}: no schema (a custom kind not vendored in tests/k8s/crds?): {exc.message}")
        checked += 1
    assert checked > 100


def test_the_schema_check_catches_a_misspelt_field(prod: list[dict[str, Any]]) -> None:
    deployment = json.loads(json.dumps(next(r for r in prod if r["kind"] == "Deployment")))
    kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists properties and keeps no unknown
    fields (the API server prunes them silently, which would hide a misspelt field)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
        and out.get("type") == "object"
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator(api_version: str, kind: str) -> jsonschema.Draft7Validator:
    group, version = api_version.split("/")
    schema = json.loads((CRDS / f"{kind}.{group}.{version}.json").read_text())
    # metadata is the API server's ObjectMeta, not described by the CRD: checked by the built-in rules.
    schema = strict(schema)
    schema["properties"]["metadata"] = {"type": "object"}
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_kinds_match_their_crds(builds: dict[str, list[dict[str, Any]]], overlay: str) -> None:
    for resource in builds[overlay]:
        key = (resource["apiVersion"], resource["kind"])
        if key not in CUSTOM_KINDS:
            continue
        errors = sorted(crd_validator(*key).iter_errors(resource), key=lambda e: list(e.path))
        assert not errors, [
            f"{resource['kind']}/{resource['metadata']['name']}: {e.message} at {list(e.path)}" for e in errors
        ]


def test_the_crd_check_catches_a_misspelt_field() -> None:
    """The vendored schemas and strict() do refuse what the API server would drop."""
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "x"},
        "spec": {"instances": 3, "storage": {"size": "1Gi"}, "instance": 3},
    }
    assert list(crd_validator("postgresql.cnpg.io/v1", "Cluster").iter_errors(cluster))
    del cluster["spec"]["instance"]
    assert not list(crd_validator("postgresql.cnpg.io/v1", "Cluster").iter_errors(cluster))


def test_prod_has_the_operators_resources(prod: list[dict[str, Any]]) -> None:
    kinds = [(r["apiVersion"], r["kind"]) for r in prod]
    assert kinds.count(("postgresql.cnpg.io/v1", "Cluster")) == 6, "one CloudNativePG cluster per service database"
    assert kinds.count(("rabbitmq.com/v1beta1", "RabbitmqCluster")) == 1
    assert kinds.count(("monitoring.coreos.com/v1", "ServiceMonitor")) == 11, "one per Deployment, and the broker's"
