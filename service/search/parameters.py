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
    type: str  # token | reference | string | date | uri | composite
    paths: tuple[str, ...]
    description: str
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    custom: bool = False
    # The R4 SearchParameter's id where several types share one definition
    # (``individual-phone``, ``clinical-patient``); empty: its own, ``{Type}-{name}``.
    definition: str = ""
    # A token that is ``true`` when the element is present and not ``false``, else ``false``
    # (R4's ``Patient.deceased.exists() and Patient.deceased != false``).
    presence: bool = False
    # A string matched by how it sounds (``service.search.phonetic``), not by its letters.
    phonetic: bool = False

    def url(self, resource_type: str) -> str:
        if self.name.startswith("_"):  # defined once for every resource type
            return f"http://hl7.org/fhir/SearchParameter/Resource-{self.name[1:]}"
        if self.custom:
            return f"{PROJECT_CANONICAL}/SearchParameter/{resource_type}-{self.name}"
        defined = self.definition or f"{resource_type}-{self.name}"
        return f"http://hl7.org/fhir/SearchParameter/{defined}"

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


def _ref(name: str, path: str, targets: str, description: str, shared: str = "") -> SearchParam:
    return SearchParam(
        name, "reference", (path,), description, tuple(targets.split()), definition=shared
    )


def _tok(name: str, path: str, description: str, shared: str = "") -> SearchParam:
    return SearchParam(name, "token", (path,), description, definition=shared)


def _str(name: str, paths: str, description: str, shared: str = "") -> SearchParam:
    return SearchParam(name, "string", tuple(paths.split()), description, definition=shared)


def _date(name: str, path: str, description: str, shared: str = "") -> SearchParam:
    return SearchParam(name, "date", (path,), description, definition=shared)


def _addresses(shared: str) -> tuple[SearchParam, ...]:
    """The address parameters, on ``address``: R4 defines them once for the people types
    (``individual-address``...) and again for Organization (``Organization-address``...)."""

    def named(name: str) -> str:
        return f"{shared}-{name}" if shared else ""

    return (
        _str("address", "address", "Any part of an address", named("address")),
        _str("address-city", "address.city", "A city in an address", named("address-city")),
        _str("address-state", "address.state", "A state in an address", named("address-state")),
        _str(
            "address-postalcode",
            "address.postalCode",
            "A postal code in an address",
            named("address-postalcode"),
        ),
        _str(
            "address-country",
            "address.country",
            "A country in an address",
            named("address-country"),
        ),
        _tok("address-use", "address.use", "A use code of an address", named("address-use")),
    )


# The contact parameters of the people types, all R4's shared ``individual-*`` definitions.
_TELECOM = (
    _tok(
        "phone",
        "telecom.where(system='phone')",
        "A value in a phone contact",
        "individual-phone",
    ),
    _tok(
        "email",
        "telecom.where(system='email')",
        "A value in an email contact",
        "individual-email",
    ),
    _tok("telecom", "telecom", "The value in any kind of contact", "individual-telecom"),
)
_PERSON = (
    *_addresses("individual"),
    *_TELECOM,
    _tok("gender", "gender", "male | female | other | unknown", "individual-gender"),
    SearchParam(
        "phonetic",
        "string",
        ("name",),
        "A name part, matched by how it sounds",
        definition="individual-phonetic",
        phonetic=True,
    ),
)
_NAMES = (
    _str("family", "name.family", "Family name", "individual-family"),
    _str("given", "name.given", "Given name", "individual-given"),
)
_IDENTIFIER = _tok("identifier", "identifier", "A business identifier")
_CLINICAL_IDENTIFIER = _tok(
    "identifier", "identifier", "A business identifier", "clinical-identifier"
)
_ACTIVE = _tok("active", "active", "Whether the record is in active use")
_BIRTHDATE = _date("birthdate", "birthDate", "Date of birth", "individual-birthdate")
_PERFORMERS = (
    "Practitioner Organization RelatedPerson Patient CareTeam HealthcareService Device "
    "PractitionerRole"
)
_MEMBERS = "Practitioner PractitionerRole RelatedPerson Patient Organization CareTeam"
_ACTIVITY_REQUESTS = (
    "Appointment CommunicationRequest DeviceRequest MedicationRequest NutritionOrder Task "
    "ServiceRequest VisionPrescription RequestGroup"
)
_DEFINITIONS = "PlanDefinition Questionnaire Measure ActivityDefinition OperationDefinition"

SEARCH_PARAMETERS: dict[str, tuple[SearchParam, ...]] = {
    "CareTeam": (
        _ref(
            "patient",
            "subject",
            "Patient",
            "Who the care team is for (a Patient)",
            "clinical-patient",
        ),
        _ref("subject", "subject", "Patient Group", "Who the care team is for"),
        _tok("status", "status", "proposed | active | suspended | inactive | entered-in-error"),
        _tok("category", "category", "Type of team"),
        _date("date", "period", "Time period the team covers", "clinical-date"),
        _ref("participant", "participant.member", _MEMBERS, "Who is involved"),
        _CLINICAL_IDENTIFIER,
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
        _ref(
            "patient",
            "subject",
            "Patient",
            "Who the care plan is for (a Patient)",
            "clinical-patient",
        ),
        _ref("subject", "subject", "Patient Group", "Who the care plan is for"),
        _tok("status", "status", "draft | active | on-hold | revoked | completed | ..."),
        _tok("intent", "intent", "proposal | plan | order | option"),
        _tok("category", "category", "Type of plan"),
        _ref("care-team", "careTeam", "CareTeam", "Who is involved"),
        _date("date", "period", "Time period the plan covers", "clinical-date"),
        _ref("performer", "activity.detail.performer", _PERFORMERS, "Who performs an activity"),
        _date("activity-date", "activity.detail.scheduled[x]", "When an activity is scheduled"),
        _tok("activity-code", "activity.detail.code", "Detail type of an activity"),
        _ref(
            "activity-reference",
            "activity.reference",
            _ACTIVITY_REQUESTS,
            "An activity described by a request resource",
        ),
        _CLINICAL_IDENTIFIER,
        _ref("based-on", "basedOn", "CarePlan", "Fulfils this CarePlan"),
        _ref("replaces", "replaces", "CarePlan", "CarePlan replaced by this CarePlan"),
        _ref("part-of", "partOf", "CarePlan", "Part of referenced CarePlan"),
        _ref("condition", "addresses", "Condition", "Health issues this plan addresses"),
        _ref("encounter", "encounter", "Encounter", "Encounter created as part of"),
        _ref("goal", "goal", "Goal", "Desired outcome of the plan"),
        _ref(
            "instantiates-canonical",
            "instantiatesCanonical",
            _DEFINITIONS,
            "A protocol or definition the plan follows (canonical)",
        ),
        SearchParam(
            "instantiates-uri",
            "uri",
            ("instantiatesUri",),
            "An external protocol or definition the plan follows",
        ),
    ),
    "Patient": (
        _IDENTIFIER,
        _str("name", "name", "Any part of a name"),
        *_NAMES,
        _BIRTHDATE,
        _ACTIVE,
        *_PERSON,
        _ref(
            "general-practitioner",
            "generalPractitioner",
            "Organization Practitioner PractitionerRole",
            "Nominated primary care provider",
        ),
        _ref("organization", "managingOrganization", "Organization", "Custodian organisation"),
        _tok("language", "communication.language", "A language the patient communicates in"),
        _ref("link", "link.other", "Patient RelatedPerson", "A patient or person linked to"),
        SearchParam(
            "deceased",
            "token",
            ("deceased[x]",),
            "Whether the patient has died (true | false)",
            presence=True,
        ),
        _date("death-date", "deceased[x]", "When the patient died"),
    ),
    "Practitioner": (
        _IDENTIFIER,
        _str("name", "name", "Any part of a name"),
        *_NAMES,
        _ACTIVE,
        *_PERSON,
        _tok("communication", "communication", "A language the practitioner communicates in"),
    ),
    "PractitionerRole": (
        _ref("practitioner", "practitioner", "Practitioner", "The practitioner in this role"),
        _ref("organization", "organization", "Organization", "Where the role is held"),
        _tok("role", "code", "The role the practitioner performs"),
        _IDENTIFIER,
        _ACTIVE,
        _date("date", "period", "When the role is held"),
        *_TELECOM,
        _tok("specialty", "specialty", "The practitioner's specialty in this role"),
        _ref("location", "location", "Location", "Where the practitioner provides care"),
        _ref("service", "healthcareService", "HealthcareService", "The services provided"),
        _ref("endpoint", "endpoint", "Endpoint", "Technical endpoints for this role"),
    ),
    "Organization": (
        _IDENTIFIER,
        _str("name", "name alias", "Name or alias"),
        _ACTIVE,
        _ref("partof", "partOf", "Organization", "Parent organisation"),
        *_addresses(""),
        _tok("type", "type", "A kind of organisation"),
        _ref("endpoint", "endpoint", "Endpoint", "Technical endpoints of the organisation"),
        SearchParam(
            "phonetic",
            "string",
            ("name",),
            "The organisation's name, matched by how it sounds",
            phonetic=True,
        ),
    ),
    "RelatedPerson": (
        _ref("patient", "patient", "Patient", "The patient this person is related to"),
        _IDENTIFIER,
        _str("name", "name", "Any part of a name"),
        _tok("relationship", "relationship", "Relationship to the patient"),
        _ACTIVE,
        _BIRTHDATE,
        *_PERSON,
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


# R4's parameters of every resource that read its ``meta`` (``_id`` and ``_lastUpdated``
# are the resource row's own: ``service.search.criteria``), indexed for every type.
META_PARAMETERS = (
    _tok("_tag", "meta.tag", "A tag on the resource"),
    SearchParam("_profile", "uri", ("meta.profile",), "A profile the resource claims"),
    _tok("_security", "meta.security", "A security label on the resource"),
    SearchParam("_source", "uri", ("meta.source",), "Where the resource comes from"),
)


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
