"""The CapabilityStatement, generated from the registry that also builds the router.

https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from typing import Any

from service.registry import RESOURCE_TYPES, SYSTEM_INTERACTIONS, ResourceType
from service.search.parameters import PROJECT_CANONICAL

SOFTWARE_VERSION = "0.1.0"
_INTERACTION_CODES = {
    "history-instance",
    "history-type",
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "create",
    "search-type",
}


def _resource(rtype: ResourceType) -> dict[str, Any]:
    return {
        "type": rtype.name,
        "profile": rtype.profile,
        "interaction": [{"code": i} for i in rtype.interactions if i in _INTERACTION_CODES],
        "versioning": "versioned-update",
        "readHistory": True,
        "updateCreate": True,
        "conditionalCreate": rtype.conditional_create,
        "conditionalUpdate": rtype.conditional_update,
        "conditionalDelete": "single" if rtype.conditional_delete else "not-supported",
        "referencePolicy": ["literal", "logical", "local", "enforced"],
        "searchParam": [
            {
                "name": p.name,
                "definition": p.url(rtype.name),
                "type": p.type,
                "documentation": p.description,
            }
            for p in rtype.search_params
        ],
    }


def capability_statement(base_url: str, moment: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "url": f"{PROJECT_CANONICAL}/CapabilityStatement/keyworker-fhir",
        "name": "KeyworkerFHIR",
        "title": "Keyworker FHIR server",
        "status": "active",
        "date": moment,
        "publisher": "Keyworker FHIR",
        "kind": "instance",
        "software": {"name": "Keyworker FHIR", "version": SOFTWARE_VERSION},
        "implementation": {
            "description": "Named accountable professionals and key workers as FHIR R4",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "resource": [_resource(r) for r in RESOURCE_TYPES.values()],
                "interaction": [{"code": i} for i in SYSTEM_INTERACTIONS],
            }
        ],
    }
