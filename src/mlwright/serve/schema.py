"""OpenAPI schemas of the API, the request record generated from the data contract.

A column's allowed categories and training range become ``enum`` / ``minimum`` /
``maximum`` only when its policy is ``reject``: the schema says exactly what the server
refuses. Under ``warn`` or ``impute`` they are documented in the description and in
``x-categories`` / ``x-range`` (a client still sees them; the server accepts other values).
"""

from __future__ import annotations

from typing import Any

from mlwright.data.contract import ColumnSpec, Contract, LogicalType, Policy

__all__ = ["components", "record_schema"]

_JSON_TYPES = {
    LogicalType.INTEGER: "integer",
    LogicalType.FLOAT: "number",
    LogicalType.BOOLEAN: "boolean",
    LogicalType.STRING: "string",
    LogicalType.DATETIME: "string",
}


def _column_schema(spec: ColumnSpec) -> dict[str, Any]:
    # Integers are documented as numbers: 3.0 is accepted (a fraction only warns).
    kind = "number" if spec.dtype is LogicalType.INTEGER else _JSON_TYPES[spec.dtype]
    schema: dict[str, Any] = {"type": kind}
    notes = [f"{spec.kind.value} column, type {spec.dtype.value}"]
    if spec.dtype is LogicalType.DATETIME:
        schema["format"] = "date-time"
    if spec.categories is not None and spec.on_unknown not in (None, Policy.IGNORE):
        categories = list(spec.categories)
        if spec.on_unknown is Policy.REJECT:
            schema["enum"] = categories
        else:
            schema["x-categories"] = categories
            notes.append(f"known categories {categories} (others: {spec.on_unknown.value})")
    if spec.min is not None and spec.max is not None and spec.on_out_of_range is not None:
        if spec.on_out_of_range is Policy.REJECT:
            schema["minimum"], schema["maximum"] = spec.min, spec.max
        elif spec.on_out_of_range is not Policy.IGNORE:
            schema["x-range"] = [spec.min, spec.max]
            notes.append(f"training range [{spec.min:g}, {spec.max:g}] "
                         f"(outside: {spec.on_out_of_range.value})")
    if spec.earliest is not None and spec.latest is not None:
        notes.append(f"training period {spec.earliest} to {spec.latest}")
    # Null is accepted when training had missing values, or when the policy fills it in.
    if spec.nullable or spec.on_missing is not Policy.REJECT:
        if "enum" in schema:
            schema["enum"] = [*schema["enum"], None]
        schema["type"] = [schema["type"], "null"]
    if not spec.required:
        notes.append("optional")
    schema["description"] = "; ".join(notes)
    return schema


def record_schema(contract: Contract) -> dict[str, Any]:
    """JSON schema of one input record: the contract's feature columns."""
    names = contract.feature_names
    specs = [contract.column(n) for n in names]
    return {
        "type": "object",
        "title": "Record",
        "description": "One row of the model's input; extra fields are ignored with a warning.",
        "properties": {s.name: _column_schema(s) for s in specs},
        "required": [s.name for s in specs if s.required],
        "additionalProperties": True,
    }


_ISSUE = {
    "type": "object",
    "properties": {
        "record": {"type": "integer", "description": "index of the record (-1: the request)"},
        "field": {"type": "string"},
        "rule": {"type": "string"},
        "severity": {"type": "string", "enum": ["error", "warning"]},
        "message": {"type": "string"},
    },
    "required": ["record", "field", "rule", "message"],
}

_ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string"},
        "errors": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
    },
    "required": ["detail"],
}

_SCALAR = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"},
                     {"type": "null"}]}


def components(contract: Contract) -> dict[str, dict[str, Any]]:
    """The named schemas the API's operations refer to."""
    record = {"$ref": "#/components/schemas/Record"}
    target = contract.target
    label: dict[str, Any] = {"type": "number"}  # regression
    if target is not None and target.classes is not None:
        label = {"enum": list(target.classes)}
    return {
        "Record": record_schema(contract),
        "PredictRequest": {
            "description": "A record, a list of records, {\"records\": [...]} or "
                           "{\"columns\": {field: [values]}}; \"keys\" gives each record the "
                           "caller's own id (for feedback and sticky A/B routing).",
            "anyOf": [
                record,
                {"type": "array", "items": record, "minItems": 1},
                {"type": "object", "properties": {
                    "records": {"type": "array", "items": record, "minItems": 1},
                    "keys": {"type": "array", "items": {"type": "string"}}},
                 "required": ["records"]},
                {"type": "object", "properties": {
                    "columns": {"type": "object",
                                "additionalProperties": {"type": "array", "items": _SCALAR}},
                    "keys": {"type": "array", "items": {"type": "string"}}},
                 "required": ["columns"]},
            ],
        },
        "PredictResponse": {
            "type": "object",
            "properties": {
                "request_id": {"type": "string"},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "role": {"type": "string", "enum": ["champion", "challenger"]},
                "predictions": {"type": "array", "items": _SCALAR},
                "classes": {"type": ["array", "null"], "items": _SCALAR},
                "probabilities": {"type": ["array", "null"],
                                  "items": {"type": "array", "items": {"type": "number"}}},
                "warnings": {"type": "array", "items": {"$ref": "#/components/schemas/Issue"}},
            },
            "required": ["request_id", "model", "version", "predictions"],
        },
        "ExplainRequest": {
            "anyOf": [record, {"type": "array", "items": record, "minItems": 1},
                      {"type": "object", "properties": {
                          "records": {"type": "array", "items": record, "minItems": 1}},
                       "required": ["records"]}],
        },
        "FeedbackItem": {
            "type": "object",
            "description": "A true label for a prediction: by request_id (and row, default "
                           "0) or by the caller's key.",
            "properties": {
                "request_id": {"type": "string", "minLength": 1, "maxLength": 64},
                "row": {"type": "integer", "minimum": 0},
                "key": {"type": "string", "minLength": 1, "maxLength": 200},
                "label": label,
            },
            "required": ["label"],
            "anyOf": [{"required": ["request_id"]}, {"required": ["key"]}],
        },
        "FeedbackRequest": {
            "anyOf": [
                {"$ref": "#/components/schemas/FeedbackItem"},
                {"type": "array", "items": {"$ref": "#/components/schemas/FeedbackItem"},
                 "minItems": 1},
                {"type": "object", "properties": {"items": {
                    "type": "array", "items": {"$ref": "#/components/schemas/FeedbackItem"},
                    "minItems": 1}}, "required": ["items"]},
            ],
        },
        "FeedbackResponse": {
            "type": "object",
            "description": "accepted: items recorded; matched: those naming an answered "
                           "prediction (only these are labelled); unmatched: the others, "
                           "listed (up to 50) with the reason.",
            "properties": {
                "accepted": {"type": "integer"},
                "matched": {"type": "integer"},
                "unmatched": {"type": "integer"},
                "unmatched_items": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"item": {"type": "integer"},
                                   "request_id": {"type": ["string", "null"]},
                                   "row": {"type": "integer"},
                                   "key": {"type": ["string", "null"]},
                                   "reason": {"type": "string"}},
                    "required": ["item", "reason"]}},
            },
            "required": ["accepted", "matched", "unmatched", "unmatched_items"],
        },
        "Issue": _ISSUE,
        "Error": _ERROR,
    }
