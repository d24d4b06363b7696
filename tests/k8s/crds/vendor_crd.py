"""Refresh the vendored CRD schemas: ``python tests/k8s/crds/vendor_crd.py CRD.yaml [...]``.

For each CustomResourceDefinition given (a local file, e.g. from the operator's repository at the
release you deploy), writes ``<Kind>.<group>.<version>.json`` beside this script: the served
version's ``openAPIV3Schema`` with every ``description`` removed (they are most of the size and
validate nothing). tests/k8s validates the overlays' custom resources against these files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def strip_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        # A property may itself be called "description" (it is then a schema, under "properties").
        return {
            key: strip_descriptions(value)
            for key, value in node.items()
            if not (key == "description" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


def vendor(crd_file: Path) -> list[Path]:
    written = []
    for crd in yaml.safe_load_all(crd_file.read_text()):
        if not crd or crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            if not version.get("served", False):
                continue
            schema = strip_descriptions(version["schema"]["openAPIV3Schema"])
            target = HERE / f"{spec['names']['kind']}.{spec['group']}.{version['name']}.json"
            target.write_text(json.dumps(schema, sort_keys=True, separators=(",", ":")) + "\n")
            written.append(target)
    return written


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        for path in vendor(Path(arg)):
            print(path.name, path.stat().st_size)
