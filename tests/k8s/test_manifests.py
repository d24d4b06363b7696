"""Our own rules for k8s/, on what the overlays render: probes, resources, non-root, graceful
termination matching the services' drain, a PDB and an HPA per Deployment, Secrets referenced and
never committed, settings that the services really read, network policies that allow exactly
the calls docs/INTERNAL.md describes, and every metric the autoscalers read scraped by a monitor."""

from __future__ import annotations

import copy
import importlib
import re
import tomllib
import typing
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from .conftest import K8S, OVERLAYS, REPO

Resource = dict[str, Any]
SERVICES = {
    # service directory: (settings module, env prefix, console script, roles it accepts)
    "gateway": ("gateway.settings", "GATEWAY_", ("api",)),
    "checkout-web": ("checkout_web.settings", "CHECKOUT_", ("serve",)),
    "payments-svc": ("payments_svc.settings", "PAYMENTS_", ("api", "worker")),
    "providers-svc": ("providers_svc.settings", "PROVIDERS_", ("api", "worker")),
    "webhook-dispatcher": ("webhook_dispatcher.settings", "WEBHOOKS_", ("api", "worker")),
    "reconciliation-svc": ("reconciliation_svc.settings", "RECONCILIATION_", ("api", "worker")),
}
APP_OVERLAYS = [o for o in OVERLAYS if not o.endswith(("/migrate", "/platform"))]
# After SIGTERM a process exits within its grace period (<PREFIX>_SHUTDOWN_GRACE_SECONDS, counted from the
# signal: drain, outbox, closing; billing_runtime.shutdown), or kills itself at its end. Kubernetes must
# not kill it first: the pod's grace covers the preStop sleep, that grace period, and a margin for the
# process to exit and the kubelet to see it.
EXIT_MARGIN = 5.0
PRIVATE_RANGES = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"}


def pod_templates(resources: list[Resource]) -> Iterator[tuple[Resource, Resource]]:
    """(workload, its pod template) for every Deployment, StatefulSet and Job."""
    for resource in resources:
        if resource["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield resource, resource["spec"]["template"]


def labels_match(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector: matchLabels and matchExpressions (In, NotIn, Exists, DoesNotExist)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if (
            (operator == "In" and labels.get(key) not in values)
            or (operator == "NotIn" and labels.get(key) in values)
            or (operator == "Exists" and key not in labels)
            or (operator == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [r for r in resources if r["kind"] == kind]


def service_of(workload: Resource) -> str:
    return workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]


def role_of(workload: Resource) -> str:
    return workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]


def ours(resources: list[Resource]) -> Iterator[tuple[Resource, Resource]]:
    """The services' own workloads (not the dev databases and broker)."""
    for workload, template in pod_templates(resources):
        if service_of(workload) in SERVICES:
            yield workload, template


# ---------------------------------------------------------------------------------------------------
# Every pod: resources, non-root, read-only root, probes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(builds: dict[str, list[Resource]], overlay: str) -> None:
    containers = 0
    for workload, template in pod_templates(builds[overlay]):
        for container in template["spec"].get("initContainers", []) + template["spec"]["containers"]:
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), (workload["metadata"]["name"], part)
            containers += 1
    # The operators' pods: the sizes their resources give them.
    for cluster in [r for r in builds[overlay] if r["kind"] in ("Cluster", "RabbitmqCluster")]:
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(cluster["spec"]["resources"][part]), cluster["metadata"]["name"]
        containers += 1
    assert containers > 0


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_container_runs_as_root(builds: dict[str, list[Resource]], overlay: str) -> None:
    """runAsNonRoot with a numeric non-zero user, no privilege escalation, every capability dropped,
    the runtime's seccomp profile, and a read-only root filesystem unless the pod says why not
    (annotation billing/writable-root-reason)."""
    for workload, template in pod_templates(builds[overlay]):
        name = workload["metadata"]["name"]
        pod = template["spec"].get("securityContext", {})
        assert pod.get("runAsNonRoot") is True and pod.get("runAsUser", 0) > 0, name
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert template["spec"].get("automountServiceAccountToken") is False, name
        reason = template["metadata"].get("annotations", {}).get("billing/writable-root-reason")
        for container in template["spec"]["containers"]:
            context = container.get("securityContext", {})
            assert context.get("runAsUser", pod["runAsUser"]) > 0, name
            assert context.get("runAsNonRoot", True) is True, name
            assert context.get("allowPrivilegeEscalation") is False, name
            assert context.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not context.get("privileged", False), name
            assert context.get("readOnlyRootFilesystem") is True or reason, name


def port_number(container: Resource, port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    assert port in named, f"{container['name']} has no port named {port}"
    return named[port]


def config_of(resources: list[Resource], service: str) -> dict[str, str]:
    maps = [r for r in of_kind(resources, "ConfigMap") if r["metadata"]["name"].startswith(f"{service}-config")]
    assert len(maps) == 1, service
    return dict(maps[0]["data"])


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_probes_are_on_the_right_paths_and_ports(builds: dict[str, list[Resource]], overlay: str) -> None:
    """Readiness is /readyz, liveness (and start-up) /healthz, on a port the process listens on: the
    port its settings give the role, and for the gateway's readiness its ops listener (the public
    /readyz needs the admin token)."""
    resources = builds[overlay]
    for workload in of_kind(resources, "Deployment"):
        service, role = service_of(workload), role_of(workload)
        config = config_of(resources, service)
        prefix = SERVICES[service][1]
        listens = int(
            config[f"{prefix}WORKER_PORT" if (service, role) == ("providers-svc", "worker") else f"{prefix}PORT"]
        )
        [container] = workload["spec"]["template"]["spec"]["containers"]
        for probe, path in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz"), ("startupProbe", "/healthz")]:
            assert probe in container, (service, role, probe)
            get = container[probe]["httpGet"]
            assert get["path"] == path, (service, role, probe)
            expected = int(config["GATEWAY_OPS_PORT"]) if (service, probe) == ("gateway", "readinessProbe") else listens
            assert port_number(container, get["port"]) == expected, (service, role, probe)
        # A readiness answer takes up to 2 s per check (billing_runtime.health), one check after another.
        assert container["readinessProbe"]["timeoutSeconds"] >= 5


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dependency_pods_have_probes(builds: dict[str, list[Resource]], overlay: str) -> None:
    for workload in of_kind(builds[overlay], "StatefulSet"):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert "readinessProbe" in container and "livenessProbe" in container, workload["metadata"]["name"]


def shutdown_grace(service: str, container: dict[str, Any]) -> float:
    """The process's grace period: its <PREFIX>_SHUTDOWN_GRACE_SECONDS when the container sets it (its env,
    else its ConfigMap would; the base sets neither), else the setting's default."""
    module, prefix, _ = SERVICES[service]
    for variable in container.get("env") or []:
        if variable["name"] == f"{prefix}SHUTDOWN_GRACE_SECONDS":
            return float(variable["value"])
    field = importlib.import_module(module).Settings.model_fields["shutdown_grace_seconds"]
    return float(field.default)


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_termination_grace_covers_prestop_and_drain(builds: dict[str, list[Resource]], overlay: str) -> None:
    for workload in of_kind(builds[overlay], "Deployment"):
        service, role = service_of(workload), role_of(workload)
        spec = workload["spec"]["template"]["spec"]
        [container] = spec["containers"]
        pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        grace = shutdown_grace(service, container)
        assert spec["terminationGracePeriodSeconds"] >= pre_stop + grace + EXIT_MARGIN, (service, role)
        if role in ("api", "web"):
            # Behind a Service: keep serving while endpoints and the ingress catch up with the deletion.
            assert pre_stop >= 5, (service, role)


# ---------------------------------------------------------------------------------------------------
# Deployments: PDB, HPA, commands, images


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_every_deployment_has_a_pdb_and_an_hpa(builds: dict[str, list[Resource]], overlay: str) -> None:
    resources = builds[overlay]
    deployments = of_kind(resources, "Deployment")
    assert len(deployments) == 10
    for deployment in deployments:
        name, labels = deployment["metadata"]["name"], deployment["spec"]["template"]["metadata"]["labels"]
        pdbs = [p for p in of_kind(resources, "PodDisruptionBudget") if labels_match(p["spec"]["selector"], labels)]
        assert len(pdbs) == 1, name
        assert "maxUnavailable" in pdbs[0]["spec"], "minAvailable would block draining a one-replica Deployment"
        hpas = [
            h
            for h in of_kind(resources, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        ]
        assert len(hpas) == 1, name
        assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in hpas[0]["spec"]["metrics"])
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns the replica count"
        # The selector is immutable and must pick only this role's pods.
        assert set(deployment["spec"]["selector"]["matchLabels"]) == {
            "app.kubernetes.io/name",
            "app.kubernetes.io/component",
        }


def test_prod_keeps_two_of_everything(prod: list[Resource]) -> None:
    for hpa in of_kind(prod, "HorizontalPodAutoscaler"):
        assert hpa["spec"]["minReplicas"] >= 2, hpa["metadata"]["name"]


def adapter_rules() -> set[str]:
    values = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-rules.yaml").read_text())
    return {rule["name"]["as"] for rule in values["rules"]["external"]}


def consumed_queues(service: str) -> set[str]:
    module = importlib.import_module(f"{SERVICES[service][0].split('.')[0]}.events.consumers")
    return {value for name, value in vars(module).items() if name.endswith("_QUEUE") and isinstance(value, str)}


def test_prod_workers_scale_on_their_queues_backlog(prod: list[Resource]) -> None:
    """Every worker HPA has a backlog metric that prometheus-adapter serves, and the queues it
    selects are the ones that service consumes (events/consumers.py)."""
    rules = adapter_rules()
    workers = [
        h
        for h in of_kind(prod, "HorizontalPodAutoscaler")
        if h["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    ]
    assert len(workers) == 4
    for hpa in workers:
        service = hpa["metadata"]["labels"]["app.kubernetes.io/name"]
        external = [m["external"] for m in hpa["spec"]["metrics"] if m["type"] == "External"]
        assert external, service
        for metric in external:
            assert metric["metric"]["name"] in rules, f"no prometheus-adapter rule for {metric['metric']['name']}"
        queues = [m for m in external if m["metric"]["name"] == "rabbitmq_queue_messages_ready"]
        assert len(queues) == 1, service
        [expression] = queues[0]["metric"]["selector"]["matchExpressions"]
        assert expression["key"] == "queue" and expression["operator"] == "In"
        assert set(expression["values"]) == consumed_queues(service), service


def console_scripts(service: str) -> set[str]:
    return set(tomllib.loads((REPO / service / "pyproject.toml").read_text())["project"]["scripts"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_commands_are_the_services_console_scripts(builds: dict[str, list[Resource]], overlay: str) -> None:
    for workload, template in ours(builds[overlay]):
        service = service_of(workload)
        [container] = template["spec"]["containers"]
        script, role = container["command"]
        assert script in console_scripts(service), workload["metadata"]["name"]
        expected = ("migrate",) if workload["kind"] == "Job" else SERVICES[service][2]
        assert role in expected, workload["metadata"]["name"]
        assert role_of(workload) in ({"migrate"} if role == "migrate" else {role, "web"})


def images(resources: list[Resource]) -> dict[str, str]:
    found = {}
    for _, template in ours(resources):
        for container in template["spec"]["containers"]:
            repository, _, tag = container["image"].rpartition(":")
            found[repository] = tag
    return found


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_migrations_run_the_release_of_the_services(builds: dict[str, list[Resource]], env: str) -> None:
    apps, jobs = images(builds[f"overlays/{env}"]), images(builds[f"overlays/{env}/migrate"])
    assert set(apps) == {f"billing/{service}" for service in SERVICES}
    assert set(jobs) == set(apps), "a migration Job per service (each has a database)"
    assert all(jobs[image] == apps[image] for image in jobs)
    if env == "prod":
        assert all(tag and tag not in ("latest", "dev") for tag in apps.values()), apps


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_is_in_the_overlays_namespace(builds: dict[str, list[Resource]], overlay: str) -> None:
    [namespace] = of_kind(builds[overlay], "Namespace")
    for resource in builds[overlay]:
        if resource["kind"] != "Namespace":
            assert resource["metadata"].get("namespace") == namespace["metadata"]["name"], resource["metadata"]["name"]


# ---------------------------------------------------------------------------------------------------
# Settings and Secrets


def settings_class(service: str) -> Any:
    return importlib.import_module(SERVICES[service][0]).Settings


def env_names(service: str) -> dict[str, Any]:
    """Every environment variable the service's settings read -> its field."""
    cls = settings_class(service)
    prefix = SERVICES[service][1]
    names = {}
    for name, field in cls.model_fields.items():
        names[prefix + name.upper()] = field
        alias = field.validation_alias
        for choice in getattr(alias, "choices", [alias] if isinstance(alias, str) else []):
            names[str(choice)] = field
    return names


def is_secret(field: Any) -> bool:
    return "SecretStr" in str(field.annotation)


def is_optional(field: Any) -> bool:
    """`SecretStr | None`: the service runs without it (the Secret's key may then be absent)."""
    return type(None) in typing.get_args(field.annotation)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_maps_hold_only_settings_the_service_reads(builds: dict[str, list[Resource]], overlay: str) -> None:
    """The settings ignore unknown variables (extra="ignore"): a misspelt key would be silently lost."""
    for service in SERVICES:
        known = env_names(service)
        for key in config_of(builds[overlay], service):
            assert key in known, f"{service}: {key} is not a setting of {SERVICES[service][0]}"
            assert not is_secret(known[key]), f"{service}: {key} is a secret and belongs in a Secret"


def documented_secrets() -> dict[str, set[str]]:
    """The Secrets table of k8s/README.md: secret name -> its keys."""
    table = {}
    for line in (K8S / "README.md").read_text().splitlines():
        match = re.match(r"^\| `([a-z0-9-]+)` \| ([^|]+) \|", line)
        if match:
            table[match.group(1)] = set(re.findall(r"`([A-Za-z0-9_.-]+)`", match.group(2)))
    assert table, "k8s/README.md lists the Secrets in a table"
    return table


def secret_refs(template: Resource) -> Iterator[tuple[str, str, bool]]:
    """(secret, key, optional) of every secretKeyRef, and (secret, "*", optional) of envFrom."""
    spec = template["spec"]
    for container in spec.get("initContainers", []) + spec["containers"]:
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                yield ref["name"], ref["key"], ref.get("optional", False)
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                yield source["secretRef"]["name"], "*", source["secretRef"].get("optional", False)
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            yield volume["secret"]["secretName"], "*", volume["secret"].get("optional", False)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_referenced_is_documented(builds: dict[str, list[Resource]], overlay: str) -> None:
    documented = documented_secrets()
    referenced = 0
    for workload, template in pod_templates(builds[overlay]):
        for name, key, _ in secret_refs(template):
            assert name in documented, f"{workload['metadata']['name']} reads Secret {name}, not in k8s/README.md"
            assert key in documented[name], f"{workload['metadata']['name']} reads {name}/{key}, not in k8s/README.md"
            referenced += 1
    for ingress in of_kind(builds[overlay], "Ingress"):
        for tls in ingress["spec"].get("tls", []):
            assert tls["secretName"] in documented
    # Every build with pods reads Secrets (prod/platform has the operators' resources only).
    assert referenced > 0 or not list(pod_templates(builds[overlay]))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_secret_setting_comes_from_a_secret(builds: dict[str, list[Resource]], overlay: str) -> None:
    """Each process gets every secret its settings read (required ones required, optional ones
    optional) from a secretKeyRef, never as a literal; and its database and broker URLs."""
    for workload, template in ours(builds[overlay]):
        service = service_of(workload)
        [container] = template["spec"]["containers"]
        env = {variable["name"]: variable for variable in container.get("env", [])}
        for name, field in env_names(service).items():
            if not is_secret(field) or (service, name) == ("gateway", "BILLING_ADMIN_TOKEN"):
                continue
            assert name in env, f"{workload['metadata']['name']} lacks {name}"
            ref = env[name]["valueFrom"]["secretKeyRef"]
            assert ref.get("optional", False) is is_optional(field), name
        prefix = SERVICES[service][1]
        assert env[f"{prefix}DATABASE_URL"]["value"].startswith("postgresql+asyncpg://$(DB_USERNAME):$(DB_PASSWORD)@")
        for variable in env.values():
            if "value" in variable and re.search(r"SECRET|TOKEN|KEY|PASSWORD", variable["name"]):
                pytest.fail(f"{workload['metadata']['name']}: {variable['name']} is a literal")


def test_no_secret_is_committed(builds: dict[str, list[Resource]]) -> None:
    """No Secret in any build, and no file under k8s/ that holds one (data or stringData)."""
    for rendered in builds.values():
        assert not of_kind(rendered, "Secret")
    for path in K8S.rglob("*.y*ml"):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict):
                assert document.get("kind") != "Secret", path
                assert "secretGenerator" not in document, path
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secretGenerator" not in kustomization.read_text()


def environment(resources: list[Resource], workload: Resource) -> dict[str, str]:
    """The environment a container would get, with made-up values for what comes from Secrets."""
    from cryptography.fernet import Fernet

    [container] = workload["spec"]["template"]["spec"]["containers"]
    env = dict(config_of(resources, service_of(workload)))
    made_up = {"username": "billing", "password": "not-a-real-password"}
    values: dict[str, str] = {}
    for variable in container.get("env", []):
        if "value" in variable:
            values[variable["name"]] = re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], variable["value"])
        else:
            key = variable["valueFrom"]["secretKeyRef"]["key"]
            secret = Fernet.generate_key().decode()
            values[variable["name"]] = made_up.get(key, f"k1:{secret}" if key.endswith("JWT_KEYS") else secret)
    env.update(values)
    return env


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_the_services_accept_their_settings(
    builds: dict[str, list[Resource]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each Deployment's environment (its ConfigMap, and made-up secrets) passes the service's own
    settings validation, so a pod would not stop at start-up on a value written here."""
    for workload in of_kind(builds[overlay], "Deployment"):
        service = service_of(workload)
        with monkeypatch.context() as patched:
            for name, value in environment(builds[overlay], workload).items():
                patched.setenv(name, value)
            settings = settings_class(service)()
        assert settings.host == "0.0.0.0", f"{service} must listen beyond loopback in a pod"


# ---------------------------------------------------------------------------------------------------
# Network policies


def policies(resources: list[Resource]) -> list[Resource]:
    return of_kind(resources, "NetworkPolicy")


def container_ports(container: str, *ports: tuple[str, int]) -> Resource:
    """A pod spec of one container with these (name, number) ports."""
    return {"containers": [{"name": container, "ports": [{"name": n, "containerPort": p} for n, p in ports]}]}


def rabbitmq_labels(broker: Resource) -> dict[str, str]:
    """What the RabbitMQ Cluster Operator labels a RabbitmqCluster's pods with (internal/metadata/label.go),
    whatever labels the resource itself has (part-of is rabbitmq, not billing)."""
    name = broker["metadata"]["name"]
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": "rabbitmq",
        "app.kubernetes.io/part-of": "rabbitmq",
    }


def pods(resources: list[Resource]) -> list[tuple[str, dict[str, str], Resource]]:
    """(name, labels, pod spec) of every pod the build runs, the operators' pods included (their
    labels and container ports as the operators set them)."""
    found = [(w["metadata"]["name"], t["metadata"]["labels"], t["spec"]) for w, t in pod_templates(resources)]
    for cluster in of_kind(resources, "Cluster"):
        name = cluster["metadata"]["name"]
        labels = {
            "cnpg.io/cluster": name,
            "cnpg.io/podRole": "instance",
            **cluster["spec"]["inheritedMetadata"]["labels"],
        }
        found.append(
            (name, labels, container_ports("postgres", ("postgresql", 5432), ("metrics", 9187), ("status", 8000)))
        )
    for broker in of_kind(resources, "RabbitmqCluster"):
        spec = container_ports("rabbitmq", ("epmd", 4369), ("amqp", 5672), ("management", 15672), ("prometheus", 15692))
        found.append((broker["metadata"]["name"], rabbitmq_labels(broker), spec))
    return found


def port_allowed(rule_ports: list[Resource] | None, port: int, spec: Resource) -> bool:
    if not rule_ports:
        return True
    for rule in rule_ports:
        wanted = rule.get("port")
        if wanted is None or wanted == port:
            return True
        if isinstance(wanted, str):
            named = {p.get("name"): p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])}
            if named.get(wanted) == port:
                return True
    return False


def peer_matches(peer: Resource, labels: dict[str, str]) -> bool:
    """A peer in the same namespace (no namespaceSelector, no ipBlock)."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    return labels_match(peer.get("podSelector", {}), labels)


def allowed(resources: list[Resource], source: str, destination: str, port: int) -> bool:
    """Whether the policies let pod `source` open a TCP connection to pod `destination` on `port`,
    both in the namespace (NetworkPolicy semantics: a direction is denied once any policy of that
    type selects the pod, and then allowed only by a rule of one of them)."""
    everyone = {name: (labels, spec) for name, labels, spec in pods(resources)}
    (src_labels, _), (dst_labels, dst_spec) = everyone[source], everyone[destination]

    def direction(kind: str, pod_labels: dict[str, str], other: dict[str, str]) -> bool:
        selecting = [
            p
            for p in policies(resources)
            if kind in p["spec"]["policyTypes"] and labels_match(p["spec"]["podSelector"], pod_labels)
        ]
        if not selecting:
            return True
        key, peers_key = ("egress", "to") if kind == "Egress" else ("ingress", "from")
        for policy in selecting:
            for rule in policy["spec"].get(key, []):
                peers = rule.get(peers_key)
                if (peers is None or any(peer_matches(peer, other) for peer in peers)) and port_allowed(
                    rule.get("ports"), port, dst_spec
                ):
                    return True
        return False

    return direction("Egress", src_labels, dst_labels) and direction("Ingress", dst_labels, src_labels)


# Who calls whom (docs/INTERNAL.md), by Deployment or Job name and port; every other pair is refused.
CALLS = {
    ("gateway", "payments-svc-api", 8001),
    ("gateway", "providers-svc-api", 8002),
    ("gateway", "webhook-dispatcher-api", 8003),
    ("gateway", "reconciliation-svc-api", 8004),
    ("checkout-web", "gateway", 8000),
    ("payments-svc-api", "providers-svc-api", 8002),
    ("payments-svc-worker", "providers-svc-api", 8002),
    ("reconciliation-svc-api", "providers-svc-api", 8002),
    ("reconciliation-svc-worker", "providers-svc-api", 8002),
    ("reconciliation-svc-api", "payments-svc-api", 8001),
    ("reconciliation-svc-worker", "payments-svc-api", 8001),
    # The sandbox bank's callbacks reach the gateway (PROVIDERS_PUBLIC_GATEWAY_URL).
    ("providers-svc-api", "gateway", 8000),
    ("providers-svc-worker", "gateway", 8000),
}
SERVICE_PORTS = {
    "gateway": 8000,
    "checkout-web": 8080,
    "payments-svc-api": 8001,
    "providers-svc-api": 8002,
    "webhook-dispatcher-api": 8003,
    "reconciliation-svc-api": 8004,
}
DATABASES = {
    "gateway": "gateway-db",
    "payments-svc": "payments-db",
    "providers-svc": "providers-db",
    "webhook-dispatcher": "webhooks-db",
    "reconciliation-svc": "reconciliation-db",
    "checkout-web": "checkout-db",
}
WITH_BUS = {"payments-svc", "providers-svc", "webhook-dispatcher", "reconciliation-svc"}


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_services_reach_exactly_the_services_they_call(builds: dict[str, list[Resource]], overlay: str) -> None:
    resources = builds[overlay]
    callers = [w["metadata"]["name"] for w, _ in ours(resources)]
    for source in callers:
        for destination, port in SERVICE_PORTS.items():
            expected = (source, destination, port) in CALLS
            assert allowed(resources, source, destination, port) is expected, (source, destination, port)


@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/prod", "overlays/dev/migrate", "overlays/prod/migrate"])
def test_each_service_reaches_only_its_own_database_and_the_broker(
    builds: dict[str, list[Resource]], overlay: str
) -> None:
    resources = builds[overlay]
    database_pods = {name: labels for name, labels, _ in pods(resources) if "billing/database-of" in labels}
    broker = [name for name, labels, _ in pods(resources) if labels.get("app.kubernetes.io/component") == "rabbitmq"]
    assert len(database_pods) == len(DATABASES) and len(broker) == 1
    for workload, _ in ours(resources):
        source, service = workload["metadata"]["name"], service_of(workload)
        for database, labels in database_pods.items():
            mine = labels["billing/database-of"] == service
            assert allowed(resources, source, database, 5432) is mine, (source, database)
            assert DATABASES.get(service) != database or mine
        assert allowed(resources, source, broker[0], 5672) is (service in WITH_BUS), source


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_only_the_gateway_and_checkout_take_connections_from_outside(
    builds: dict[str, list[Resource]], overlay: str
) -> None:
    """An ingress rule without peers (anyone, the ingress controller included) exists for the public
    listeners of the gateway and checkout-web, and for nothing else."""
    open_to_all = set()
    for name, labels, spec in pods(builds[overlay]):
        for policy in policies(builds[overlay]):
            if "Ingress" in policy["spec"]["policyTypes"] and labels_match(policy["spec"]["podSelector"], labels):
                for rule in policy["spec"].get("ingress", []):
                    if "from" not in rule:
                        open_to_all |= {(name, port_number(spec["containers"][0], p["port"])) for p in rule["ports"]}
    assert open_to_all == {("gateway", 8000), ("checkout-web", 8080)}


def internet_rules(resources: list[Resource], labels: dict[str, str]) -> list[Resource]:
    rules = []
    for policy in policies(resources):
        if "Egress" in policy["spec"]["policyTypes"] and labels_match(policy["spec"]["podSelector"], labels):
            for rule in policy["spec"].get("egress", []):
                blocks = [peer["ipBlock"] for peer in rule.get("to", []) if "ipBlock" in peer]
                if not rule.get("to") or blocks:
                    rules.append({"blocks": blocks, "ports": rule.get("ports")})
    return rules


@pytest.mark.parametrize("overlay", APP_OVERLAYS)
def test_only_the_dispatcher_and_providers_reach_the_internet(builds: dict[str, list[Resource]], overlay: str) -> None:
    """The webhook dispatcher's worker and providers-svc reach any public address and none of the
    private ranges (the cluster, its nodes, cloud metadata); nothing else has an ipBlock at all
    (apart from the operators' pods' API server rule, ports 443/6443 only)."""
    resources = builds[overlay]
    for name, labels, _ in pods(resources):
        rules = internet_rules(resources, labels)
        internet = name in {"webhook-dispatcher-worker", "providers-svc-api", "providers-svc-worker"}
        if internet:
            [rule] = [r for r in rules if r["blocks"]]
            v4 = next(b for b in rule["blocks"] if b["cidr"] == "0.0.0.0/0")
            assert set(v4["except"]) >= PRIVATE_RANGES, name
            assert rule["ports"] is None
        elif name in DATABASES.values() or name == "rabbitmq":
            assert all(r["ports"] and {p["port"] for p in r["ports"]} <= {443, 6443} for r in rules), name
        else:
            assert rules == [], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_and_dns(builds: dict[str, list[Resource]], overlay: str) -> None:
    everything = [p for p in policies(builds[overlay]) if p["spec"]["podSelector"] == {}]
    deny = [p for p in everything if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1 and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    dns = [
        p
        for p in everything
        if any(53 in {port["port"] for port in r.get("ports", [])} for r in p["spec"].get("egress", []))
    ]
    assert len(dns) == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_workload_has_policies_of_its_own(builds: dict[str, list[Resource]], overlay: str) -> None:
    """Beyond the namespace-wide ones, each pod is selected by a policy that names it."""
    for name, labels, _ in pods(builds[overlay]):
        own = [
            p
            for p in policies(builds[overlay])
            if p["spec"]["podSelector"] and labels_match(p["spec"]["podSelector"], labels)
        ]
        assert own, name


def test_the_policy_model_refuses_what_no_rule_allows(prod: list[Resource]) -> None:
    """allowed() itself: a worker cannot call an API it has no rule for, and a rule's port matters."""
    assert allowed(prod, "gateway", "payments-svc-api", 8001)
    assert not allowed(prod, "gateway", "payments-svc-api", 8002)
    assert not allowed(prod, "webhook-dispatcher-worker", "payments-svc-api", 8001)
    assert not allowed(prod, "checkout-web", "payments-db", 5432)


# ---------------------------------------------------------------------------------------------------
# Monitoring: what the autoscalers read is scraped


def operator_services(resources: list[Resource]) -> list[Resource]:
    """The Services the RabbitMQ Cluster Operator makes for a RabbitmqCluster (internal/resource/
    service.go, headless_service.go): `<name>` (amqp, management, prometheus) and the headless
    `<name>-nodes`, labelled like the pods plus the resource's own labels but its app.kubernetes.io/*."""
    made = []
    for broker in of_kind(resources, "RabbitmqCluster"):
        name = broker["metadata"]["name"]
        own = {k: v for k, v in broker["metadata"].get("labels", {}).items() if not k.startswith("app.kubernetes.io/")}
        for service, ports in [
            (name, [("amqp", 5672), ("management", 15672), ("prometheus", 15692)]),
            (f"{name}-nodes", [("epmd", 4369), ("cluster-rpc", 25672)]),
        ]:
            made.append(
                {
                    "kind": "Service",
                    "metadata": {"name": service, "labels": {**rabbitmq_labels(broker), **own}},
                    "spec": {
                        "selector": {"app.kubernetes.io/name": name},
                        "ports": [{"name": port, "port": number, "targetPort": number} for port, number in ports],
                    },
                }
            )
    return made


def operator_pod_monitors(resources: list[Resource]) -> list[Resource]:
    """The PodMonitor CloudNativePG makes for a Cluster with spec.monitoring.enablePodMonitor
    (pkg/specs/podmonitor.go): its instances, port `metrics`."""
    return [
        {
            "kind": "PodMonitor",
            "metadata": {"name": cluster["metadata"]["name"]},
            "spec": {
                "selector": {
                    "matchLabels": {"cnpg.io/cluster": cluster["metadata"]["name"], "cnpg.io/podRole": "instance"}
                },
                "podMetricsEndpoints": [{"port": "metrics"}],
            },
        }
        for cluster in of_kind(resources, "Cluster")
        if cluster["spec"].get("monitoring", {}).get("enablePodMonitor") is True
    ]


def scraped(resources: list[Resource]) -> set[tuple[str, int, str]]:
    """(pod, container port, path) of every scrape the build's ServiceMonitors and PodMonitors, and
    the ones the operators make from it, give Prometheus. Everything is in the overlay's namespace,
    where a monitor without a namespaceSelector looks."""
    everyone = pods(resources)
    targets = set()
    services = of_kind(resources, "Service") + operator_services(resources)
    for monitor in of_kind(resources, "ServiceMonitor"):
        assert "namespaceSelector" not in monitor["spec"], monitor["metadata"]["name"]
        for endpoint in monitor["spec"]["endpoints"]:
            assert "port" in endpoint, f"{monitor['metadata']['name']}: endpoints name a Service port"
            for service in services:
                selector = service["spec"].get("selector")
                if not selector or not labels_match(monitor["spec"]["selector"], service["metadata"].get("labels", {})):
                    continue
                for port in service["spec"]["ports"]:
                    if port.get("name") != endpoint["port"]:
                        continue
                    for name, labels, spec in everyone:
                        if labels_match({"matchLabels": selector}, labels):
                            number = port_number(spec["containers"][0], port.get("targetPort", port["port"]))
                            targets.add((name, number, endpoint.get("path", "/metrics")))
    for monitor in of_kind(resources, "PodMonitor") + operator_pod_monitors(resources):
        assert "namespaceSelector" not in monitor["spec"], monitor["metadata"]["name"]
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            for name, labels, spec in everyone:
                if labels_match(monitor["spec"]["selector"], labels):
                    number = port_number(spec["containers"][0], endpoint["port"])
                    targets.add((name, number, endpoint.get("path", "/metrics")))
    return targets


def adapter_series() -> dict[tuple[str, str], str]:
    """prometheus-adapter's rules: (external or custom, the metric it serves) -> the series it reads."""
    values = yaml.safe_load((K8S / "monitoring" / "prometheus-adapter-rules.yaml").read_text())
    served = {}
    for kind in ("external", "custom"):
        for rule in values["rules"].get(kind, []):
            match = re.match(r"\s*([A-Za-z_:][A-Za-z0-9_:]*)", rule["seriesQuery"])
            assert match, f"a seriesQuery names its series: {rule['seriesQuery']}"
            served[(kind, rule.get("name", {}).get("as", match.group(1)))] = match.group(1)
    return served


def rabbitmq_per_queue_paths(broker: Resource) -> set[str]:
    """The paths of RabbitMQ's Prometheus plugin (15692, RabbitMQ 3.13) that return one
    rabbitmq_queue_messages_ready series per queue under that name: /metrics/per-object always,
    /metrics only with prometheus.return_per_object_metrics = true (else one series for all queues),
    never /metrics/detailed (its names start rabbitmq_detailed_)."""
    config = broker["spec"].get("rabbitmq", {}).get("additionalConfig", "")
    per_object = re.search(r"^\s*prometheus\.return_per_object_metrics\s*=\s*true\s*$", config, re.MULTILINE)
    return {"/metrics/per-object", *(["/metrics"] if per_object else [])}


def exporters(resources: list[Resource], series: str) -> list[tuple[str, int, set[str]]]:
    """Who exports `series` under that name: (pod, container port, the paths that return it)."""
    if series == "rabbitmq_queue_messages_ready":
        brokers = of_kind(resources, "RabbitmqCluster")
        return [(b["metadata"]["name"], 15692, rabbitmq_per_queue_paths(b)) for b in brokers]
    if series == "webhook_due_backlog":
        # The dispatcher's gauge (webhook_dispatcher.metrics), on every worker's /metrics.
        from billing_runtime.metrics import Metrics
        from prometheus_client import generate_latest
        from webhook_dispatcher.metrics import WebhookMetrics

        metrics = Metrics("webhook-dispatcher")
        WebhookMetrics(metrics)
        assert f"# TYPE {series} gauge" in generate_latest(metrics.registry).decode()
        return [
            (w["metadata"]["name"], port_number(t["spec"]["containers"][0], "http"), {"/metrics"})
            for w, t in ours(resources)
            if (service_of(w), role_of(w)) == ("webhook-dispatcher", "worker")
        ]
    pytest.fail(f"exporters() does not know where {series} comes from: say which pods, port and path")


def test_prod_autoscaler_metrics_are_scraped(prod: list[Resource]) -> None:
    """Every External, Object or Pods metric an HPA scales on, and every series a prometheus-adapter
    rule reads, is scraped by a ServiceMonitor or PodMonitor of the build (or one an operator makes
    from it) on every pod that exports it, on its port, at a path that returns it under that name.
    Otherwise the adapter has nothing to serve and the HPA scales on CPU alone."""
    served = adapter_series()
    relied_on = set(served.values())
    for hpa in of_kind(prod, "HorizontalPodAutoscaler"):
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] in ("External", "Object", "Pods"):
                name = metric[metric["type"].lower()]["metric"]["name"]
                kind = "external" if metric["type"] == "External" else "custom"
                assert (kind, name) in served, (
                    f"{hpa['metadata']['name']}: no prometheus-adapter {kind} rule for {name}"
                )
                relied_on.add(served[(kind, name)])
    assert {"rabbitmq_queue_messages_ready", "webhook_due_backlog"} <= relied_on
    targets = scraped(prod)
    for series in sorted(relied_on):
        sources = exporters(prod, series)
        assert sources, f"nothing in the build exports {series}"
        for pod, port, paths in sources:
            assert any((pod, port, path) in targets for path in paths), (
                f"{series}: no ServiceMonitor or PodMonitor scrapes {pod} on {port} at {' or '.join(sorted(paths))}"
            )


def test_prod_databases_have_pod_monitors(prod: list[Resource]) -> None:
    """CloudNativePG makes a Cluster's PodMonitor only when asked (spec.monitoring.enablePodMonitor):
    every instance's exporter (9187) is then scraped."""
    clusters = of_kind(prod, "Cluster")
    assert len(clusters) == len(DATABASES)
    for cluster in clusters:
        assert cluster["spec"].get("monitoring", {}).get("enablePodMonitor") is True, cluster["metadata"]["name"]
    assert {pod for pod, port, _ in scraped(prod) if port == 9187} == set(DATABASES.values())


def from_monitoring(peer: Resource) -> bool:
    """A peer that is every pod of namespace `monitoring` (where Prometheus runs)."""
    selector = peer.get("namespaceSelector")
    return (
        selector is not None
        and "podSelector" not in peer
        and labels_match(selector, {"kubernetes.io/metadata.name": "monitoring"})
    )


def prometheus_may_connect(resources: list[Resource], labels: dict[str, str], spec: Resource, port: int) -> bool:
    """Whether the policies let Prometheus in (namespace `monitoring`) to a pod with these labels on
    `port` (ingress: Prometheus's egress is its own namespace's business)."""
    selecting = [
        p
        for p in policies(resources)
        if "Ingress" in p["spec"]["policyTypes"] and labels_match(p["spec"]["podSelector"], labels)
    ]
    return not selecting or any(
        ("from" not in rule or any(from_monitoring(peer) for peer in rule["from"]))
        and port_allowed(rule.get("ports"), port, spec)
        for policy in selecting
        for rule in policy["spec"].get("ingress", [])
    )


def test_prometheus_may_reach_every_scrape_target(prod: list[Resource]) -> None:
    """Every pod a monitor points Prometheus at (the services, the broker, the databases) lets it in
    on that port (dev has no monitors: no prometheus-operator assumed)."""
    everyone = {name: (labels, spec) for name, labels, spec in pods(prod)}
    targets = scraped(prod)
    expected = {w["metadata"]["name"] for w in of_kind(prod, "Deployment")} | {"rabbitmq", *DATABASES.values()}
    assert {pod for pod, _, _ in targets} == expected
    for pod, port, _ in targets:
        labels, spec = everyone[pod]
        assert prometheus_may_connect(prod, labels, spec, port), f"Prometheus may not scrape {pod} on {port}"


def test_the_scrape_model_refuses_a_wrong_path_or_port(prod: list[Resource]) -> None:
    """scraped() and exporters() themselves: the broker scraped at /metrics/detailed, or on another
    port, gives no rabbitmq_queue_messages_ready; /metrics gives it only with per-object metrics on;
    and a policy without the port keeps Prometheus out."""
    [(pod, port, paths)] = exporters(prod, "rabbitmq_queue_messages_ready")
    assert any((pod, port, path) in scraped(prod) for path in paths)
    for change in [{"path": "/metrics/detailed"}, {"port": "management"}]:
        changed = copy.deepcopy(prod)
        [monitor] = [m for m in of_kind(changed, "ServiceMonitor") if m["metadata"]["name"] == "rabbitmq"]
        monitor["spec"]["endpoints"][0].update(change)
        assert not any((pod, port, path) in scraped(changed) for path in paths), change
    [broker] = copy.deepcopy(of_kind(prod, "RabbitmqCluster"))
    assert "/metrics" in rabbitmq_per_queue_paths(broker)
    broker["spec"]["rabbitmq"]["additionalConfig"] = "consumer_timeout = 1800000\n"
    assert rabbitmq_per_queue_paths(broker) == {"/metrics/per-object"}
    labels, spec = {name: (labels, spec) for name, labels, spec in pods(prod)}[pod]
    assert prometheus_may_connect(prod, labels, spec, 15692)
    assert not prometheus_may_connect(prod, labels, spec, 15672)


# ---------------------------------------------------------------------------------------------------
# Capacity


def test_prod_database_connections_fit_at_the_autoscalers_maxima(prod: list[Resource]) -> None:
    """Each process keeps <PREFIX>_DATABASE_POOL_SIZE connections and a few more (LISTEN, the
    notifier); at every HPA's maximum, plus a migration, they must fit the cluster's max_connections
    with room for the operator and a person (10)."""
    per_process_extra = 4
    for service, database in DATABASES.items():
        [cluster] = [c for c in of_kind(prod, "Cluster") if c["metadata"]["name"] == database]
        limit = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"]) - 10
        pool = int(config_of(prod, service).get(f"{SERVICES[service][1]}DATABASE_POOL_SIZE", 20))
        most = sum(
            h["spec"]["maxReplicas"]
            for h in of_kind(prod, "HorizontalPodAutoscaler")
            if h["metadata"]["labels"]["app.kubernetes.io/name"] == service
        )
        assert most * (pool + per_process_extra) + 1 <= limit, (service, most, pool, limit)


def test_readme_runbook_covers_the_issue() -> None:
    text = (K8S / "README.md").read_text()
    for heading in [
        "Deploy order",
        "Migrations",
        "Scaling",
        "Monitoring",
        "Rotating secrets",
        "Draining the webhook dispatcher",
        "Dead-letter queues",
        "Secrets",
    ]:
        assert re.search(rf"^#+ .*{heading}", text, re.MULTILINE), heading
    assert "Deploy on Kubernetes" in (REPO / "README.md").read_text()


def test_secret_field_detection_sees_the_secrets() -> None:
    """is_secret() finds the required and optional secrets of a service, not its other settings."""
    names = env_names("gateway")
    secret = {name for name, field in names.items() if is_secret(field)}
    assert {"GATEWAY_JWT_KEYS", "GATEWAY_PAYMENTS_INTERNAL_SECRET", "GATEWAY_ADMIN_TOKEN"} <= secret
    assert "GATEWAY_PORT" not in secret and "GATEWAY_DATABASE_URL" not in secret
    assert is_optional(names["GATEWAY_ADMIN_TOKEN"]) and not is_optional(names["GATEWAY_JWT_KEYS"])
