"""Structural validation of R4 resources: the one module that imports ``fhir.resources``.

A resource is validated once, on write, and the model is then only walked for facts the
store needs (the references it makes and which types each may point at). It is never
serialised back: the client's JSON, with server metadata added, is what gets stored.

Every problem is collected with its FHIRPath location before answering, so a client fixes
its payload in one round trip.
"""

from __future__ import annotations

import importlib
import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from fhir_core.types import FhirBase
from fhir_core.utils import is_primitive_type
from pydantic import BaseModel, ValidationError

from fhir_mappings import json_types, null_elements
from fhir_mappings.issues import Issue, fhirpath

# Both before the first fhir.resources class is built, or they are not used.
null_elements.install()
json_types.install()

from fhir.resources.R4B import get_fhir_model_class  # noqa: E402
from fhir.resources.R4B.fhirresourcemodel import FHIRResourceModel  # noqa: E402
from fhir.resources.R4B.reference import Reference  # noqa: E402

# pydantic error kinds -> OperationOutcome issue codes (value set issue-type).
_ISSUE_CODES = {
    "missing": "required",
    "extra_forbidden": "structure",
    "json_invalid": "structure",
    "model_type": "structure",
    "list_type": "structure",
    "dict_type": "structure",
}

_MESSAGES = {
    "extra_forbidden": "Unknown element: R4 defines no such element here",
    "missing": "Required element is missing",
}


@dataclass(frozen=True)
class ReferenceSite:
    """A reference the resource makes, where it stands and which types it may target."""

    expression: str
    reference: str
    allowed_types: tuple[str, ...]


@cache
def model_class(resource_type: str) -> type[FHIRResourceModel]:
    module = importlib.import_module(f"fhir.resources.R4B.{resource_type.lower()}")
    cls: type[FHIRResourceModel] = getattr(module, resource_type)
    return cls


@cache
def element_types(type_name: str) -> dict[str, tuple[str, bool]]:
    """The complex elements of a resource, datatype or backbone element (named as its
    ``fhir.resources`` class is: ``CareTeam``, ``Period``, ``CareTeamParticipant``), by JSON
    name, each with its type's name and whether that type stands alone (a resource or a
    datatype) rather than being defined inline where it is used (a backbone element).
    ``contained`` has the type ``Resource``: each one is of its own ``resourceType``."""
    elements = {}
    for name, info in get_fhir_model_class(type_name).model_fields.items():
        found = _model_type(info.annotation)
        if found is not None:
            child = found.__name__.removesuffix("Type")
            module = get_fhir_model_class(child).__module__
            elements[info.alias or name] = (child, module.rsplit(".", 1)[-1] == child.lower())
    return elements


def _model_type(annotation: Any) -> type[Any] | None:
    """The FHIR type inside a field's annotation (``list[X] | None`` and the like)."""
    if isinstance(annotation, type) and issubclass(annotation, FhirBase):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_type(argument)
        if found is not None:
            return found
    return None


def validate(resource_type: str, body: dict[str, Any]) -> tuple[list[Issue], list[ReferenceSite]]:
    """Validate ``body`` as ``resource_type``; return every issue and the references made."""
    try:
        model = model_class(resource_type).model_validate(body)
    except ValidationError as error:
        return [_issue(resource_type, e) for e in error.errors(include_url=False)], []
    issues: list[Issue] = []
    references: list[ReferenceSite] = []
    _inspect(model, (), resource_type, issues, references)
    return issues, references


def _issue(resource_type: str, error: Any) -> Issue:
    location = [step for step in error["loc"] if not _is_union_tag(step)]
    message = _MESSAGES.get(error["type"]) or str(error["msg"]).removeprefix("Value error, ")
    return Issue(
        message,
        code=_ISSUE_CODES.get(error["type"], "value"),
        expression=(fhirpath(resource_type, location),),
    )


def _is_union_tag(step: Any) -> bool:
    """pydantic inserts type names (``function-after[...]``) into union locations."""
    return isinstance(step, str) and ("[" in step or step.startswith("function-"))


@cache
def _fields(cls: type[BaseModel]) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Per field of a model class that the walk must look at, the codes it allows and the
    types it may refer to, read once from the field's FHIR metadata. A primitive field
    without a value set is left out: it can hold neither a reference nor a code to check,
    and most elements are such."""
    fields = {}
    for name, info in cls.model_fields.items():
        extra: dict[str, Any] = (
            info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        )
        codes = tuple(extra.get("enum_values") or ())
        if codes or not is_primitive_type(info):
            fields[name] = (codes, tuple(extra.get("enum_reference_types") or ()))
    return fields


def _inspect(
    model: BaseModel,
    location: tuple[str | int, ...],
    resource_type: str,
    issues: list[Issue],
    references: list[ReferenceSite],
) -> None:
    """Collect the references ``model`` makes and its codes outside their value sets, at
    every depth. Every write goes through this walk, and most elements are plain values
    that need neither, so a location is only spelled out for what is kept or descended into.
    """
    fields = _fields(type(model))
    for name in model.model_fields_set:
        field = fields.get(name)
        if field is None:
            continue
        value = getattr(model, name)
        if value is None:
            continue
        codes, targets = field
        items = enumerate(value) if isinstance(value, list) else ((None, value),)
        for index, item in items:
            if isinstance(item, BaseModel):
                here = (*location, name) if index is None else (*location, name, index)
                if isinstance(item, Reference) and item.reference:
                    site = ReferenceSite(fhirpath(resource_type, here), item.reference, targets)
                    references.append(site)
                _inspect(item, here, resource_type, issues, references)
            elif codes and isinstance(item, str) and item not in codes:
                here = (*location, name) if index is None else (*location, name, index)
                issues.append(
                    Issue(
                        f"'{item}' is not one of the codes allowed here: " + ", ".join(codes),
                        code="code-invalid",
                        expression=(fhirpath(resource_type, here),),
                    )
                )
