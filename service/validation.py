"""``$validate``: a write's every check, run and rolled back.

Rather than a second validator beside the write pipeline (which would drift from it), the
write itself is run (create, update or delete, as the mode asks) inside a database
transaction that is then rolled back: the FHIR model, the invariants, the references, the
keyworking rules and the write guard of the caller's reach all run exactly as they would,
and nothing is kept. https://hl7.org/fhir/R4/resource-operation-validate.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.errors import BadRequest
from service.interactions import Interactions, Transaction

MODES = ("create", "update", "delete")


@dataclass(frozen=True)
class Validation:
    """What one ``$validate`` request asks: the write (mode) and the resource it writes."""

    mode: str
    resource: dict[str, Any] | None


class _RolledBack(Exception):
    """Raised inside the write transaction once the write has passed, to undo it."""


def read_request(
    resource_type: str, body: dict[str, Any] | None, query_mode: str | None, instance: bool
) -> Validation:
    """The mode and resource from the body (the resource itself, or a Parameters with
    ``resource``, ``mode`` and ``profile``) and the query's ``mode``; 400 for anything else."""
    resource, mode, profile = body, query_mode, None
    if body is not None and body.get("resourceType") == "Parameters":
        resource, mode, profile = _parameters(body, query_mode)
    mode = mode or ("update" if instance else "create")
    if mode not in MODES:
        raise BadRequest(
            f"mode '{mode}' is not one of {', '.join(MODES)}", code="value", expression=("mode",)
        )
    if mode != "create" and not instance:
        raise BadRequest(f"mode {mode} validates an instance: POST [type]/[id]/$validate")
    if profile not in (None, f"http://hl7.org/fhir/StructureDefinition/{resource_type}"):
        raise BadRequest(
            f"Only the base profile of {resource_type} is validated against, not {profile}",
            code="not-supported",
            expression=("profile",),
        )
    if resource is None and mode != "delete":
        raise BadRequest(f"mode {mode} needs the resource", expression=("resource",))
    return Validation(mode, resource)


def _parameters(
    body: dict[str, Any], query_mode: str | None
) -> tuple[dict[str, Any] | None, str | None, str | None]:
    resource: dict[str, Any] | None = None
    mode, profile = query_mode, None
    for index, parameter in enumerate(body.get("parameter") or []):
        name = parameter.get("name") if isinstance(parameter, dict) else None
        if name == "resource" and isinstance(parameter.get("resource"), dict):
            resource = parameter["resource"]
        elif name == "mode" and isinstance(parameter.get("valueCode"), str):
            mode = parameter["valueCode"]
        elif name == "profile" and isinstance(parameter.get("valueUri"), str):
            profile = parameter["valueUri"]
        else:
            raise BadRequest(
                f"Parameter {name!r} is not resource (a resource), mode (a code) or "
                "profile (a uri)",
                expression=(f"Parameters.parameter[{index}]",),
            )
    return resource, mode, profile


async def dry_run(
    service: Interactions, resource_type: str, resource_id: str | None, asked: Validation
) -> None:
    """Run the write and undo it; raises what the write would have been refused with."""
    try:
        async with service.database.write() as connection:
            within = Transaction(connection)
            if asked.mode == "create":
                await service.create(resource_type, asked.resource or {}, within=within)
            elif asked.mode == "update":
                await service.update(
                    resource_type, resource_id or "", asked.resource or {}, within=within
                )
            else:
                await service.delete(resource_type, resource_id or "", within=within)
            raise _RolledBack
    except _RolledBack:
        return
