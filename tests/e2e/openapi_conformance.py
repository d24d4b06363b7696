"""Checking a real answer against the OpenAPI document: the operation's declared status and the
schema of its body, with the document's components (response objects are closed there:
``additionalProperties: false`` and every field required)."""

from __future__ import annotations

import json
from typing import Any

from gateway.api_docs import DOCUMENT_PATH
from jsonschema import Draft202012Validator


def load_document() -> dict[str, Any]:
    return json.loads(DOCUMENT_PATH.read_text(encoding="utf-8"))


class Conformance:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.checked: list[str] = []

    def check(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        """Fail unless ``status`` is declared for (``method``, ``path`` as templated in the document)
        and ``body`` is valid against its schema for ``content_type``."""
        where = f"{method} {path} → {status}"
        op = self.document["paths"].get(path, {}).get(method.lower())
        assert op is not None, f"{method} {path} is not in the document"
        answer = op["responses"].get(str(status))
        assert answer is not None, f"{where}: status not declared (declared: {sorted(op['responses'])})"
        media = answer.get("content", {}).get(content_type)
        assert media is not None, f"{where}: {content_type} not declared ({sorted(answer.get('content', {}))})"
        self._valid(media["schema"], body, where)
        self.checked.append(where)

    def check_webhook(self, body: dict[str, Any]) -> None:
        """Fail unless a webhook's body is valid against the document's ``webhooks`` entry of its type."""
        hook = self.document.get("webhooks", {}).get(body.get("type"))
        assert hook is not None, f"webhook {body.get('type')} is not in the document"
        self._valid(hook["post"]["requestBody"]["content"]["application/json"]["schema"], body, body["type"])
        self.checked.append(f"webhook {body['type']}")

    def _valid(self, schema: dict[str, Any], body: Any, where: str) -> None:
        full = {**schema, "components": self.document["components"]}
        errors = sorted(Draft202012Validator(full).iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{where}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in errors[:5]
        )
