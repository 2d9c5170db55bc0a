"""What this server supports: resource types, their interactions, search parameters and
operations. The router, the CapabilityStatement and the OpenAPI document are all generated
from here, so they cannot disagree.

Interaction names are FHIR's own: https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_mappings.keyworking import definitions
from fhir_mappings.keyworking.terminology import CANONICAL
from service.search.parameters import JOURNALED_TYPES, SEARCH_PARAMETERS, SearchParam

INSTANCE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance")
TYPE_INTERACTIONS = ("create", "search-type", "history-type")
# search-system: ``GET /fhir?_type=...`` (``service.routes.across_types``)
SYSTEM_INTERACTIONS = ("history-system", "transaction", "batch", "search-system")


@dataclass(frozen=True)
class ResourceType:
    name: str
    profile: str
    interactions: tuple[str, ...] = INSTANCE_INTERACTIONS + TYPE_INTERACTIONS
    conditional_create: bool = True
    conditional_update: bool = True
    conditional_delete: bool = True

    @property
    def search_params(self) -> tuple[SearchParam, ...]:
        return SEARCH_PARAMETERS.get(self.name, ())

    def supports(self, interaction: str) -> bool:
        """Whether ``interaction`` is served on this type, by a plain request or a Bundle entry
        alike (the conditional ones by their flags)."""
        flags = {
            "conditional-update": self.conditional_update,
            "conditional-delete": self.conditional_delete,
        }
        return flags.get(interaction, interaction in self.interactions)


RESOURCE_TYPES: dict[str, ResourceType] = {
    name: ResourceType(name, f"http://hl7.org/fhir/StructureDefinition/{name}")
    for name in (
        "CareTeam",
        "CarePlan",
        "Patient",
        "Practitioner",
        "PractitionerRole",
        "Organization",
        "RelatedPerson",
    )
}
RECORD_INTERACTIONS = ("read", "vread", "history-instance", "search-type", "history-type")


# AuditEvents live in the audit journal (``service.audit.journal``), written once and never
# versioned: there is no history to page, and _include, _revinclude and _has never reach them.
JOURNAL_INTERACTIONS = ("read", "vread", "search-type")


def _server_written(name: str) -> ResourceType:
    """A type only the server writes (``service.audit``): read and search through the API,
    and a change or deletion is 405."""
    return ResourceType(
        name,
        f"http://hl7.org/fhir/StructureDefinition/{name}",
        JOURNAL_INTERACTIONS if name in JOURNALED_TYPES else RECORD_INTERACTIONS,
        conditional_create=False,
        conditional_update=False,
        conditional_delete=False,
    )


RESOURCE_TYPES.update((name, _server_written(name)) for name in ("Provenance", "AuditEvent"))


# -- searches across types ---------------------------------------------------------------------
# https://hl7.org/fhir/R4/search.html#compartments and #all

# The patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html) as
# served here: for each type, the search parameters any of which places a record in the
# compartment of the patient it points at. Searched at ``Patient/{id}/{type}``.
PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    "CareTeam": ("patient", "participant"),
    "CarePlan": ("subject", "performer"),
    "RelatedPerson": ("patient",),
    "Provenance": ("patient",),
    "AuditEvent": ("patient",),
}
COMPARTMENT_DEFINITION = "http://hl7.org/fhir/CompartmentDefinition/patient"
# ``Patient/{id}/$everything``, R4's own operation: the patient, its compartment (but the
# AuditEvents, kept in the audit journal: ``AuditEvent?patient=``), the resources of these
# types that the patient or a record of its care refers to, and those a role among them does.
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
EVERYTHING_REFERENCED = ("Practitioner", "PractitionerRole", "Organization")


# -- operations --------------------------------------------------------------------------------
# https://hl7.org/fhir/R4/operations.html


@dataclass(frozen=True)
class Operation:
    """A FHIR operation served here: its code, where it lives, and what access it needs."""

    code: str
    method: str
    definition: dict[str, Any]  # the OperationDefinition resource
    resource: str | None = None  # None: a system-level operation
    instance: bool = False
    # (resource type, action) pairs the caller's access must allow, every one of them
    requires: tuple[tuple[str, str], ...] = ()
    # media types of the body it takes (a Parameters resource in FHIR JSON, or a file)
    body_types: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        """The route under the FHIR base (``$`` literal)."""
        if self.resource is None:
            return f"/${self.code}"
        if self.instance:
            return f"/{self.resource}/{{id}}/${self.code}"
        return f"/{self.resource}/${self.code}"

    @property
    def canonical(self) -> str:
        return str(self.definition["url"])


# What a CSV import creates or updates, in the order its transaction writes them.
_IMPORTED_TYPES = ("Organization", "Practitioner", "PractitionerRole", "Patient", "CareTeam")

OPERATIONS: dict[str, Operation] = {
    op.code: op
    for op in (
        Operation(
            "accountable",
            "GET",
            definitions.ACCOUNTABLE,
            "CareTeam",
            requires=(("CareTeam", "read"), ("PractitionerRole", "read")),
        ),
        Operation(
            "handover",
            "POST",
            definitions.HANDOVER,
            "CareTeam",
            instance=True,
            requires=(("CareTeam", "read"), ("CareTeam", "update")),
            body_types=("application/fhir+json", "application/json"),
        ),
        Operation(
            "accountability-gaps",
            "GET",
            definitions.GAPS,
            requires=(("CareTeam", "search"), ("CarePlan", "search"), ("Patient", "search")),
        ),
        Operation(
            "import-assignments",
            "POST",
            definitions.IMPORT_ASSIGNMENTS,
            requires=tuple(
                (rtype, action) for rtype in _IMPORTED_TYPES for action in ("create", "update")
            ),
            body_types=("text/csv",),
        ),
        Operation(
            "caseload",
            "GET",
            definitions.CASELOAD,
            "Organization",
            instance=True,
            requires=(("Organization", "read"), ("CareTeam", "search")),
        ),
    )
}

# $validate, on every type a client writes: one registry entry per type (so the
# CapabilityStatement lists it under each), each served at type and instance level by the
# type's own routes (``service.routes.resources``), which check the access its mode needs.
_VALIDATED_TYPES = tuple(r.name for r in RESOURCE_TYPES.values() if r.supports("create"))
VALIDATE_DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "Resource-validate",
    "url": f"{CANONICAL}/OperationDefinition/Resource-validate",
    "name": "Validate",
    "title": "Validate a resource",
    "status": "active",
    "kind": "operation",
    "publisher": "Keyworker FHIR",
    "description": (
        "Runs every check a create, update or delete of the resource would run (the FHIR "
        "model, references, invariants, the keyworking rules, the caller's reach) and "
        "writes nothing; answers an OperationOutcome listing what would be refused."
    ),
    "affectsState": False,
    "code": "validate",
    "base": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
    "resource": list(_VALIDATED_TYPES),
    "system": False,
    "type": True,
    "instance": True,
    "parameter": [
        {
            "name": "resource",
            "use": "in",
            "min": 0,
            "max": "1",
            "type": "Resource",
            "documentation": "The resource (also accepted as the whole body)",
        },
        {
            "name": "mode",
            "use": "in",
            "min": 0,
            "max": "1",
            "type": "code",
            "documentation": "create, update or delete; default create (type), update (instance)",
        },
        {
            "name": "profile",
            "use": "in",
            "min": 0,
            "max": "1",
            "type": "uri",
            "documentation": "The type's base profile, the only one validated against",
        },
        {
            "name": "return",
            "use": "out",
            "min": 1,
            "max": "1",
            "type": "OperationOutcome",
            "documentation": "What would be refused; an information issue when nothing",
        },
    ],
}
OPERATIONS.update(
    (
        f"validate-{name}",
        Operation(
            "validate",
            "POST",
            VALIDATE_DEFINITION,
            name,
            body_types=("application/fhir+json", "application/json", "application/json+fhir"),
        ),
    )
    for name in _VALIDATED_TYPES
)
