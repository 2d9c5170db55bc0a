"""The AuditEvent for one FHIR request, in the IHE Basic Audit Log Patterns style.

Who (the OAuth client and user), what (type, id or search query), which patient(s), the
outcome, when, and from which network address. Patients are taken from the token's
``patient`` claim, the requested Patient id, and the patient links of the records the
response carried. https://profiles.ihe.net/ITI/BALP/ and https://hl7.org/fhir/R4/auditevent.html
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from service.audit.provenance import CLIENT_SYSTEM
from service.auth.access import COMPARTMENT, Access
from service.json_screen import printable
from service.search.extraction import split_reference, values_at
from service.search.parameters import parameter

_ACTIONS = {"GET": "R", "HEAD": "R", "POST": "C", "PUT": "U", "PATCH": "U", "DELETE": "D"}
EVENT_TYPE = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
_DICOM = "http://dicom.nema.org/resources/ontology/DCM"
# A reference the event can hold: a type, then an id of any length (an overlong one is still
# what the request named) without control characters, spaces or slashes.
_REFERENCE = re.compile(r"[A-Z][A-Za-z]{0,63}/[^\x00-\x20\x7f/]+")


@dataclass(frozen=True)
class RequestRecord:
    """What the HTTP layer saw of one request."""

    method: str
    path: str  # below the FHIR base, e.g. "CareTeam/ct-1"
    query: str
    status: int
    address: str | None
    interaction: str | None
    access: Access | None


def _outcome(status: int) -> str:
    """0 success, 4 minor failure (the client's), 8 serious failure (the server's)."""
    if status < 400:
        return "0"
    return "4" if status < 500 else "8"


def patients_of(resource: Any, base_url: str) -> Iterable[str]:
    """Patient ids a resource (or every entry of a Bundle) belongs to, or an operation's
    ``Parameters`` answer is about (its ``patient`` parameters, as ``$accountable`` gives)."""
    if not isinstance(resource, dict):
        return
    if resource.get("resourceType") == "Bundle":
        for entry in resource.get("entry", []):
            yield from patients_of(
                entry.get("resource") if isinstance(entry, dict) else None, base_url
            )
        return
    resource_type = resource.get("resourceType")
    if resource_type == "Parameters":  # an operation's answer names its patient so
        for part in resource.get("parameter") or ():
            if isinstance(part, dict) and part.get("name") == "patient":
                yield from _patient_ids([part.get("valueReference")], base_url)
        return
    link = COMPARTMENT.get(str(resource_type))
    if link == "_id" and isinstance(resource.get("id"), str):
        yield resource["id"]
    param = parameter(str(resource_type), "patient") if link == "patient" else None
    for path in param.paths if param else ():
        yield from _patient_ids(values_at(resource, path), base_url)


def _patient_ids(values: Iterable[Any], base_url: str) -> Iterable[str]:
    """The ids of the Patients that references among ``values`` point at."""
    for value in values:
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            target_type, target_id, _ = split_reference(value["reference"], base_url)
            if target_type == "Patient" and target_id:
                yield target_id


def _agents(record: RequestRecord) -> list[dict[str, Any]]:
    network = {"network": {"address": record.address, "type": "2"}} if record.address else {}
    access = record.access
    client: dict[str, Any] = (
        {"identifier": {"system": CLIENT_SYSTEM, "value": access.client_id}}
        if access is not None and access.client_id
        else {"display": "unauthenticated"}
    )
    agents = [
        {
            "type": {"coding": [{"system": _DICOM, "code": "110150", "display": "Application"}]},
            "who": client,
            "requestor": access is None or access.user is None,
            **network,
        }
    ]
    if access is not None and access.user:
        agents.append({"who": {"display": access.user}, "requestor": True, **network})
    return agents


def target_of(path: str) -> str | None:
    """The resource a request path (below the FHIR base) is about, as a reference."""
    parts = path.split("/")
    if len(parts) >= 2 and parts[0][:1].isupper() and not parts[1].startswith(("_", "$")):
        target = "/".join(parts[:2])
        # A path that is no reference (a NUL in it, which PostgreSQL text cannot hold, or any
        # other character no id has) names nothing: the event must stay valid R4.
        return target if _REFERENCE.fullmatch(target) else None
    return None


def audit_event(
    record: RequestRecord, recorded: str, patients: Iterable[str], base_url: str
) -> dict[str, Any]:
    what: dict[str, Any] = {
        "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"}
    }
    target = target_of(record.path)
    if target is not None:
        what["what"] = {"reference": target}
    if record.query:
        what["query"] = base64.b64encode(record.query.encode()).decode()
    what["description"] = printable(f"{record.method} {base_url}/{record.path}")
    entities = [what]
    for patient in dict.fromkeys(patients):
        entities.append(
            {
                "what": {"reference": f"Patient/{patient}"},
                "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": _ROLE, "code": "1", "display": "Patient"},
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "type": EVENT_TYPE,
        "action": _ACTIONS.get(record.method, "E"),
        "recorded": recorded,
        "outcome": _outcome(record.status),
        "outcomeDesc": f"HTTP {record.status}",
        "agent": _agents(record),
        "source": {
            "observer": {"display": "Keyworker FHIR"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
        "entity": entities,
    }
    if record.interaction:
        event["subtype"] = [{"system": _INTERACTION, "code": record.interaction}]
    return event
