"""JSON schemas of pydantic models as the document needs them: every schema under
``components/schemas``, responses closed and complete.

A response model is serialised whole (handlers dump every field), so in serialization mode every
field is required and no field beyond the model's may appear (``additionalProperties: false``): a
field a handler returns that the model lacks, or one the model lists that the handler leaves out,
is then a mismatch any validator of the document sees. Request models keep pydantic's own view
(defaults optional, unknown fields as each model's ``extra`` says)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, models_json_schema
from pydantic_core import core_schema

REF_TEMPLATE = "#/components/schemas/{model}"

Mode = Literal["validation", "serialization"]


class _ClosedResponses(GenerateJsonSchema):
    def field_is_required(
        self,
        field: core_schema.ModelField | core_schema.DataclassField | core_schema.TypedDictField,
        total: bool,
    ) -> bool:
        if self.mode == "serialization":
            return True
        return super().field_is_required(field, total)

    def model_schema(self, schema: core_schema.ModelSchema) -> dict[str, Any]:
        json_schema = super().model_schema(schema)
        # An ``extra="allow"`` model (problem details) says additionalProperties: true itself.
        if self.mode == "serialization" and json_schema.get("type") == "object":
            json_schema.setdefault("additionalProperties", False)
        return json_schema


class SchemaSet:
    """The schemas of a set of (model, mode) pairs, generated together so that shared models are
    one component (pydantic names a model ``-Input``/``-Output`` when its two modes differ)."""

    def __init__(self, pairs: Iterable[tuple[type[BaseModel], Mode]]) -> None:
        unique: list[tuple[type[BaseModel], JsonSchemaMode]] = list(dict.fromkeys(pairs))
        refs, defs = models_json_schema(unique, ref_template=REF_TEMPLATE, schema_generator=_ClosedResponses)
        self._refs = refs
        self.components: dict[str, Any] = dict(sorted(defs.get("$defs", {}).items()))

    def ref(self, model: type[BaseModel], mode: Mode) -> dict[str, Any]:
        return dict(self._refs[(model, mode)])
