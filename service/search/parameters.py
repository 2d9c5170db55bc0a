"""The search parameters this server supports, per resource type, as data.

Each definition names its FHIR search type and the element paths it reads (a dotted subset of
the R4 FHIRPath expressions; ``[x]`` marks a choice element). The same definitions drive index
extraction on write, query parsing, the CapabilityStatement and the SearchParameter resources
published for the custom ones. R4 definitions: https://hl7.org/fhir/R4/searchparameter-registry.html
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

PROJECT_CANONICAL = "https://keyworker-fhir.org/fhir"


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter, read relative to the composite's path."""

    name: str
    type: str
    path: str


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # token | reference | string | date | composite
    paths: tuple[str, ...]
    description: str
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    custom: bool = False

    def url(self, resource_type: str) -> str:
        if self.name.startswith("_"):  # defined once for every resource type
            return f"http://hl7.org/fhir/SearchParameter/Resource-{self.name[1:]}"
        if self.custom:
            return f"{PROJECT_CANONICAL}/SearchParameter/{resource_type}-{self.name}"
        return f"http://hl7.org/fhir/SearchParameter/{resource_type}-{self.name}"

    def refers_to(self, resource_type: str) -> bool:
        """Whether this reference parameter can point at ``resource_type`` (no targets: any)."""
        return not self.targets or resource_type in self.targets

    def target_types(self) -> tuple[str, ...]:
        """The registered types this reference parameter can point at."""
        return _target_types(self)

    def expression(self, resource_type: str) -> str:
        return " | ".join(f"{resource_type}.{p.replace('[x]', '')}" for p in self.paths)


@cache
def _target_types(param: SearchParam) -> tuple[str, ...]:
    """Worked out once per parameter: every search with a reference criterion or an
    ``_include`` asks, and the answer only changes with the registry, which is fixed."""
    return tuple(t for t in SEARCH_PARAMETERS if param.refers_to(t))


def _ref(name: str, path: str, targets: str, description: str) -> SearchParam:
    return SearchParam(name, "reference", (path,), description, tuple(targets.split()))


def _tok(name: str, path: str, description: str) -> SearchParam:
    return SearchParam(name, "token", (path,), description)


def _str(name: str, paths: str, description: str) -> SearchParam:
    return SearchParam(name, "string", tuple(paths.split()), description)


def _date(name: str, path: str, description: str) -> SearchParam:
    return SearchParam(name, "date", (path,), description)


_IDENTIFIER = _tok("identifier", "identifier", "A business identifier")
_ACTIVE = _tok("active", "active", "Whether the record is in active use")
_PERFORMERS = (
    "Practitioner Organization RelatedPerson Patient CareTeam HealthcareService Device "
    "PractitionerRole"
)
_MEMBERS = "Practitioner PractitionerRole RelatedPerson Patient Organization CareTeam"

SEARCH_PARAMETERS: dict[str, tuple[SearchParam, ...]] = {
    "CareTeam": (
        _ref("patient", "subject", "Patient", "Who the care team is for (a Patient)"),
        _ref("subject", "subject", "Patient Group", "Who the care team is for"),
        _tok("status", "status", "proposed | active | suspended | inactive | entered-in-error"),
        _tok("category", "category", "Type of team"),
        _date("date", "period", "Time period the team covers"),
        _ref("participant", "participant.member", _MEMBERS, "Who is involved"),
        _IDENTIFIER,
        _ref("encounter", "encounter", "Encounter", "Encounter created as part of"),
        SearchParam(
            "role",
            "token",
            ("participant.role",),
            "A participant's role in the team (keyworking role or profession)",
            custom=True,
        ),
        SearchParam(
            "participant-role",
            "composite",
            ("participant",),
            "A member and the role that same participant holds, as member$role",
            targets=tuple(_MEMBERS.split()),
            components=(
                Component("member", "reference", "member"),
                Component("role", "token", "role"),
            ),
            custom=True,
        ),
    ),
    "CarePlan": (
        _ref("patient", "subject", "Patient", "Who the care plan is for (a Patient)"),
        _ref("subject", "subject", "Patient Group", "Who the care plan is for"),
        _tok("status", "status", "draft | active | on-hold | revoked | completed | ..."),
        _tok("intent", "intent", "proposal | plan | order | option"),
        _tok("category", "category", "Type of plan"),
        _ref("care-team", "careTeam", "CareTeam", "Who is involved"),
        _date("date", "period", "Time period the plan covers"),
        _ref("performer", "activity.detail.performer", _PERFORMERS, "Who performs an activity"),
        _date("activity-date", "activity.detail.scheduled[x]", "When an activity is scheduled"),
        _tok("activity-code", "activity.detail.code", "Detail type of an activity"),
        _IDENTIFIER,
        _ref("based-on", "basedOn", "CarePlan", "Fulfils this CarePlan"),
        _ref("replaces", "replaces", "CarePlan", "CarePlan replaced by this CarePlan"),
        _ref("part-of", "partOf", "CarePlan", "Part of referenced CarePlan"),
    ),
    "Patient": (
        _IDENTIFIER,
        _str("name", "name", "Any part of a name"),
        _str("family", "name.family", "Family name"),
        _str("given", "name.given", "Given name"),
        _date("birthdate", "birthDate", "Date of birth"),
        _tok("gender", "gender", "male | female | other | unknown"),
        _ACTIVE,
        _ref(
            "general-practitioner",
            "generalPractitioner",
            "Organization Practitioner PractitionerRole",
            "Nominated primary care provider",
        ),
        _ref("organization", "managingOrganization", "Organization", "Custodian organisation"),
    ),
    "Practitioner": (
        _IDENTIFIER,
        _str("name", "name", "Any part of a name"),
        _str("family", "name.family", "Family name"),
        _str("given", "name.given", "Given name"),
        _ACTIVE,
    ),
    "PractitionerRole": (
        _ref("practitioner", "practitioner", "Practitioner", "The practitioner in this role"),
        _ref("organization", "organization", "Organization", "Where the role is held"),
        _tok("role", "code", "The role the practitioner performs"),
        _IDENTIFIER,
        _ACTIVE,
        _date("date", "period", "When the role is held"),
    ),
    "Organization": (
        _IDENTIFIER,
        _str("name", "name alias", "Name or alias"),
        _ACTIVE,
        _ref("partof", "partOf", "Organization", "Parent organisation"),
    ),
    "RelatedPerson": (
        _ref("patient", "patient", "Patient", "The patient this person is related to"),
        _IDENTIFIER,
        _str("name", "name", "Any part of a name"),
        _tok("relationship", "relationship", "Relationship to the patient"),
    ),
    # Server-written records (service.audit): https://hl7.org/fhir/R4/provenance.html#search
    # and https://hl7.org/fhir/R4/auditevent.html#search
    "Provenance": (
        SearchParam("target", "reference", ("target",), "The resource version(s) recorded"),
        _ref("patient", "target", "Patient", "Target reference(s) that are a Patient"),
        _ref("agent", "agent.who", _MEMBERS + " Device", "Who participated"),
        _date("recorded", "recorded", "When the activity was recorded"),
    ),
    "AuditEvent": (
        _ref("patient", "entity.what", "Patient", "A patient the event is about"),
        _ref("agent", "agent.who", _MEMBERS + " Device", "Who participated"),
        _date("date", "recorded", "Time when the event was recorded"),
        SearchParam("entity", "reference", ("entity.what",), "Specific instance of resource"),
        _tok("type", "type", "Type/identifier of event"),
    ),
}


# Types searched in the audit journal (``service.audit.journal_search``), not through the
# index tables: no search of another type can include them or filter on them with _has.
JOURNALED_TYPES = ("AuditEvent",)


def parameter(resource_type: str, name: str) -> SearchParam | None:
    for param in SEARCH_PARAMETERS.get(resource_type, ()):
        if param.name == name:
            return param
    return None


def search_parameter_resources() -> list[dict[str, Any]]:
    """R4 SearchParameter resources for the custom parameters, so clients can discover them
    (served by the conformance module, listed in the CapabilityStatement by ``url``)."""
    published = []
    for resource_type, params in SEARCH_PARAMETERS.items():
        for param in params:
            if param.custom:
                published.append(_search_parameter(resource_type, param))
    return published


def _search_parameter(resource_type: str, param: SearchParam) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "SearchParameter",
        "id": f"{resource_type}-{param.name}",
        "url": param.url(resource_type),
        "name": f"{resource_type}{param.name.title().replace('-', '')}",
        "status": "active",
        "publisher": "Keyworker FHIR",
        "description": param.description,
        "code": param.name,
        "base": [resource_type],
        "type": param.type,
        "expression": param.expression(resource_type),
        "xpathUsage": "normal",
    }
    if param.type == "reference":
        body["target"] = list(param.targets)
    if param.components:
        body["component"] = [
            {"definition": _component_definition(resource_type, param, c), "expression": c.path}
            for c in param.components
        ]
    return body


def _component_definition(resource_type: str, composite: SearchParam, part: Component) -> str:
    """The parameter that searches the component's element on its own (R4 requires one)."""
    paths = {f"{p}.{part.path}" for p in composite.paths}
    for param in SEARCH_PARAMETERS[resource_type]:
        if paths & set(param.paths):
            return param.url(resource_type)
    raise LookupError(f"{resource_type}-{composite.name}: no parameter for '{part.path}'")
