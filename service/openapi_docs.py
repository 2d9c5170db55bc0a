"""What the OpenAPI document says of each route beyond its path: the body it takes and the
errors it answers, derived from the registry like the routes themselves.

Without them a client generator, or a fuzzer driven by the document, knows of no body and
no answer but ``200``: nearly everything it sends is refused (``415``, ``400``) before a
write is ever tried. Here each write names its media type and the resource's shape (its
top-level elements, from the R4 model the service validates with; ``resourceType``
required and fixed; no other keys), patches and transactions theirs, and every route the
OperationOutcome answers it may give. Schemas and error answers are written once, under
``components`` (``add_components``), and routes refer to them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir_mappings.model import model_class
from service.media import FHIR_JSON, JSON_PATCH
from service.registry import RESOURCE_TYPES, Operation

_FORM = "application/x-www-form-urlencoded"
_OUTCOME = "OperationOutcome"
_ERRORS: dict[int | str, str] = {
    400: "The request is malformed: a parameter, header or body is not valid",
    401: "No valid access token",
    403: "The token does not allow this interaction",
    404: "No such resource (or one out of the token's reach), or no such type",
    405: "The interaction is not allowed on this type",
    406: "Accept or _format asks for a format other than JSON",
    409: "The resource was changed concurrently, or the write conflicts with stored data",
    410: "The resource has been deleted",
    412: "If-Match names another version, or a conditional interaction matched several",
    413: "The body is larger than the service accepts",
    415: "The body is not in a media type this route takes",
    422: "The resource breaks a rule of FHIR R4 or of this service",
    "4XX": "Another refusal",
}
Statuses = tuple[int, ...]
_ANY: Statuses = (400, 401, 403, 404, 406)
_ON_INSTANCE: Statuses = (410,)
_ON_WRITE: Statuses = (405, 409, 412)
_ON_BODY: Statuses = (413, 415, 422)
_SUCCESS = {
    "create": {201: "Created", 200: "An existing resource matched If-None-Exist"},
    "update": {201: "Created at this id", 200: "Updated"},
    "conditional-update": {201: "Created", 200: "Updated"},
    "delete": {204: "Deleted (or nothing to delete)"},
    "conditional-delete": {204: "Deleted (or nothing matched)"},
}
# Annotations of the R4 models' JSON schema that no client or fuzzer needs.
_SCHEMA_KEYWORDS = frozenset(
    ("type", "items", "anyOf", "pattern", "maxLength", "minLength", "enum", "format")
) | frozenset(("minimum", "maximum", "additionalProperties", "properties", "required"))


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _content(media_types: tuple[str, ...], schema: dict[str, Any]) -> dict[str, Any]:
    return {media: {"schema": schema} for media in media_types}


def _outcome_responses(statuses: Statuses) -> dict[int | str, dict[str, Any]]:
    """The refusals named, and any other (which also keeps FastAPI from documenting its
    own 422 for invalid parameters: this service answers them 400)."""
    named: list[int | str] = [*statuses, "4XX"]
    return {status: {"$ref": f"#/components/responses/{status}"} for status in named}


def _body(media_types: tuple[str, ...], schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": _content(media_types, schema)}}


def interaction_docs(interaction: str, method: str, resource_type: str = "") -> dict[str, Any]:
    """``add_api_route`` arguments documenting one interaction (on one resource type, unless
    it is a system interaction)."""
    body: dict[str, Any] = {}
    if interaction in ("create", "update", "conditional-update"):
        body = _body((FHIR_JSON, "application/json"), _ref(resource_type))
    elif interaction == "transaction":
        body = _body((FHIR_JSON, "application/json"), _ref("Bundle"))
    elif interaction == "patch":
        body = _body((JSON_PATCH,), _ref("JsonPatch"))
    elif interaction == "search-post":
        body = _body((_FORM,), {"type": "object", "additionalProperties": {"type": "string"}})
    statuses = _ANY
    if interaction in ("read", "vread", "history-instance", "update", "patch", "delete"):
        statuses += _ON_INSTANCE
    if method in ("PUT", "PATCH", "DELETE") or interaction in ("create", "transaction"):
        statuses += _ON_WRITE
    if body:
        statuses += _ON_BODY
    responses = _outcome_responses(statuses)
    for status, description in _SUCCESS.get(interaction, {}).items():
        responses[status] = {"description": description}
    return {"responses": responses, "openapi_extra": body}


def operation_docs(operation: Operation) -> dict[str, Any]:
    """``add_api_route`` arguments documenting one operation."""
    body: dict[str, Any] = {}
    if FHIR_JSON in operation.body_types:
        inputs = [p["name"] for p in operation.definition["parameter"] if p["use"] == "in"]
        body = _body(operation.body_types, _parameters_schema(inputs))
    elif operation.body_types:
        body = _body(operation.body_types, {"type": "string"})
    statuses = _ANY + (_ON_INSTANCE if operation.instance else ())
    if body:
        statuses += _ON_WRITE + _ON_BODY
    return {"responses": _outcome_responses(statuses), "openapi_extra": body}


def _parameters_schema(names: list[str]) -> dict[str, Any]:
    parameter = {
        "type": "object",
        "required": ["name"],
        "properties": {"name": {"type": "string", "enum": names}},
    }
    return {
        "type": "object",
        "required": ["resourceType"],
        "properties": {
            "resourceType": {"type": "string", "enum": ["Parameters"]},
            "parameter": {"type": "array", "items": parameter},
        },
    }


def _pruned(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_pruned(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kept = {k: _pruned(v) for k, v in schema.items() if k in _SCHEMA_KEYWORDS}
    # FHIR JSON has no nulls: an element is present with a value, or absent
    alternatives = [s for s in kept.pop("anyOf", []) if s.get("type") != "null"]
    if len(alternatives) == 1:
        kept.update(alternatives[0])
    elif alternatives:
        kept["anyOf"] = alternatives
    return kept


@cache
def resource_schema(resource_type: str) -> dict[str, Any]:
    """A resource's JSON shape: its R4 elements, ``resourceType`` fixed, nothing else."""
    model = model_class(resource_type).model_json_schema(by_alias=True)
    properties = {
        name: _pruned(schema)
        for name, schema in model["properties"].items()
        if name != "fhir_comments"
    }
    properties["resourceType"] = {"type": "string", "enum": [resource_type]}
    return {
        "type": "object",
        "required": ["resourceType", *model.get("required", ())],
        "properties": properties,
        "additionalProperties": False,
    }


def add_components(document: dict[str, Any]) -> None:
    """Add the responses and schemas routes refer to to the OpenAPI ``document``."""
    components = document.setdefault("components", {})
    components.setdefault("schemas", {}).update(_schemas())
    components["responses"] = {
        str(status): {
            "description": description,
            "content": _content((FHIR_JSON,), _ref(_OUTCOME)),
        }
        for status, description in _ERRORS.items()
    }


def _schemas() -> dict[str, dict[str, Any]]:
    issue = {
        "type": "object",
        "required": ["severity", "code"],
        "properties": {
            "severity": {"type": "string", "enum": ["fatal", "error", "warning", "information"]},
            "code": {"type": "string"},
            "diagnostics": {"type": "string"},
            "expression": {"type": "array", "items": {"type": "string"}},
        },
    }
    entry_request = {
        "type": "object",
        "required": ["method", "url"],
        "properties": {
            "method": {"type": "string", "enum": ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]},
            "url": {"type": "string"},
        },
    }
    writable = [name for name, rtype in RESOURCE_TYPES.items() if "update" in rtype.interactions]
    return {
        _OUTCOME: {
            "type": "object",
            "required": ["resourceType", "issue"],
            "properties": {
                "resourceType": {"type": "string", "enum": [_OUTCOME]},
                "issue": {"type": "array", "minItems": 1, "items": issue},
            },
        },
        "JsonPatch": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["op", "path"],
                "properties": {
                    "op": {
                        "type": "string",
                        "enum": ["add", "remove", "replace", "move", "copy", "test"],
                    },
                    "path": {"type": "string"},
                    "from": {"type": "string"},
                    "value": {},
                },
            },
        },
        "Bundle": {
            "type": "object",
            "required": ["resourceType", "type"],
            "properties": {
                "resourceType": {"type": "string", "enum": ["Bundle"]},
                "type": {"type": "string", "enum": ["transaction", "batch"]},
                "entry": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "fullUrl": {"type": "string"},
                            "resource": {"oneOf": [_ref(name) for name in writable]},
                            "request": entry_request,
                        },
                    },
                },
            },
        },
        **{name: resource_schema(name) for name in writable},
    }
