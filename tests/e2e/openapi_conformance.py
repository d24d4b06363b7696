"""Checking a real answer against the OpenAPI document: the operation's declared status and the
schema of its body, with the document's components (response objects are closed there:
``additionalProperties: false`` and every field required)."""

from __future__ import annotations

from typing import Any

from gateway.api_docs import DOCUMENT_PATH
from jsonschema import Draft202012Validator


def load_document() -> dict[str, Any]:
    import json

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
        schema = {**media["schema"], "components": self.document["components"]}
        errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
        assert not errors, f"{where}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in errors[:5]
        )
        self.checked.append(where)
