"""What this server supports: resource types, their interactions, search parameters and
operations. The router, the CapabilityStatement and the OpenAPI document are all generated
from here, so they cannot disagree.

Interaction names are FHIR's own: https://hl7.org/fhir/R4/http.html
"""

from __future__ import annotations

from dataclasses import dataclass

from service.search.parameters import SEARCH_PARAMETERS, SearchParam

INSTANCE_INTERACTIONS = ("read", "vread", "update", "patch", "delete", "history-instance")
TYPE_INTERACTIONS = ("create", "search-type", "history-type")
SYSTEM_INTERACTIONS = ("history-system",)


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
