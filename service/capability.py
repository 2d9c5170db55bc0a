"""The CapabilityStatement, generated from the registry that also builds the router.

https://hl7.org/fhir/R4/capabilitystatement.html
"""

from __future__ import annotations

from typing import Any

from service.conformance import capability_resources, operation_entries
from service.registry import (
    COMPARTMENT_DEFINITION,
    EVERYTHING,
    RESOURCE_TYPES,
    SYSTEM_INTERACTIONS,
    ResourceType,
)
from service.search.controls import include_values, revinclude_values
from service.search.criteria import COMMON_PARAMETERS
from service.search.parameters import (
    JOURNALED_TYPES,
    META_PARAMETERS,
    PROJECT_CANONICAL,
    SearchParam,
)
from service.settings import built_in_issuer

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


# What the referencePolicy "enforced" covers, and what it leaves as sent.
_REFERENCES = (
    "References to the resource types served here must resolve (a write naming one that "
    "does not exist is refused, 422, unless the server is set to create placeholders for "
    "them). References to any other R4 resource type (Encounter, "
    "Condition, Goal, Location, ...) name another system's records: they are accepted and "
    "kept as sent, and searchable through the reference search parameters. A "
    "CareTeam.participant.role other than a keyworking-role code (a profession, another "
    "system's code, or none) makes a plain team member with no keyworking duty."
)


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
            for p in (*_common(rtype.name), *rtype.search_params)
        ],
        "searchInclude": include_values(rtype.name),
        "searchRevInclude": revinclude_values(rtype.name),
    } | ({"operation": ops} if (ops := _operations(rtype.name)) else {})


def _common(resource_type: str) -> list[SearchParam]:
    """The parameters of every resource the type is searched by: the ``meta`` ones but on
    the types kept in the audit journal, which has no index of them."""
    journaled = resource_type in JOURNALED_TYPES
    return [p for p in COMMON_PARAMETERS.values() if not (journaled and p in META_PARAMETERS)]


def _operations(resource_type: str) -> list[dict[str, str]]:
    """The registry's operations on a type, and R4's own ``$everything`` on Patient."""
    entries = operation_entries(resource_type)
    if resource_type == "Patient":
        entries.append({"name": "everything", "definition": EVERYTHING})
    return entries


def _common_search_params() -> list[dict[str, str]]:
    """The parameters every type takes, which system search (``GET /fhir?_type=``) uses."""
    return [
        {"name": p.name, "definition": p.url(""), "type": p.type, "documentation": p.description}
        for p in COMMON_PARAMETERS.values()
    ]


def _security(base_url: str) -> dict[str, Any]:
    """SMART on FHIR security: https://hl7.org/fhir/smart-app-launch/conformance.html"""
    issuer = built_in_issuer(base_url)
    return {
        "cors": False,
        "service": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                    }
                ],
                "text": "OAuth2 bearer tokens with SMART scopes (v1 and v2)",
            }
        ],
        "extension": [
            {
                "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                "extension": [
                    {"url": "token", "valueUri": f"{issuer}/token"},
                    {"url": "introspect", "valueUri": f"{issuer}/introspect"},
                ],
            }
        ],
        "description": "Bearer access tokens from the built-in authorization server or a "
        "trusted identity provider; see /fhir/.well-known/smart-configuration",
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
                "documentation": _REFERENCES,
                "resource": [
                    *(_resource(r) for r in RESOURCE_TYPES.values()),
                    *capability_resources(),
                ],
                "interaction": [{"code": i} for i in SYSTEM_INTERACTIONS],
                "searchParam": _common_search_params(),
                "compartment": [COMPARTMENT_DEFINITION],
                "security": _security(base_url),
                "operation": operation_entries(None),
            }
        ],
    }
