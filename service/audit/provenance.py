"""Provenance for every create, update, patch and delete of a CareTeam or CarePlan.

A write hook whose Provenances are companions: stored by the statement that stores the
care-record version, so the two are stored together or not at all. The target is the
exact version written (``CareTeam/x/_history/3``); the agent is the OAuth client (and user)
from ``write_context``; the reason comes from the ``X-Provenance`` header or an operation,
else ``DEFAULT_REASON``. https://hl7.org/fhir/R4/provenance.html
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.audit.store import first_version
from service.search.dates import instant
from service.storage.repository import NewResource
from service.write_hooks import WriteContext, WriteHook, Written, write_context

TRACKED_TYPES = ("CareTeam", "CarePlan")
DEFAULT_REASON = "Recorded through the Keyworker FHIR API"
CLIENT_SYSTEM = "https://keyworker-fhir.org/fhir/oauth-client"
SERVER_DISPLAY = "Keyworker FHIR server (no access token: development mode or internal write)"
_ACTIVITIES = {"POST": "CREATE", "PUT": "UPDATE", "DELETE": "DELETE"}
_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
_AGENT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"


def agents(context: WriteContext) -> list[dict[str, Any]]:
    """Provenance.agent: the client that wrote (author), and the user it acted for."""
    if context.agent is None:
        return [{"who": {"display": SERVER_DISPLAY}}]
    author = {
        "type": {"coding": [{"system": _AGENT_TYPE, "code": "author"}]},
        "who": {"identifier": {"system": CLIENT_SYSTEM, "value": context.agent}},
    }
    if context.user is None:
        return [author]
    return [author, {"who": {"display": context.user}, "onBehalfOf": author["who"]}]


class ProvenanceHook(WriteHook):
    """One Provenance per tracked write of the batch; ``base_url`` indexes each like any
    stored resource."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def companions(self, batch: Sequence[Written]) -> list[NewResource]:
        context = write_context.get()
        return [
            first_version(provenance(written, context), written.stored.last_updated, self.base_url)
            for written in batch
            if written.stored.type in TRACKED_TYPES
        ]


def provenance(written: Written, context: WriteContext) -> dict[str, Any]:
    """The Provenance of one write of a CareTeam or CarePlan."""
    stored = written.stored
    activity = "DELETE" if stored.deleted else _ACTIVITIES.get(stored.method, "UPDATE")
    if activity == "UPDATE" and (written.previous is None or written.previous.deleted):
        activity = "CREATE"
    return {
        "resourceType": "Provenance",
        "target": [{"reference": f"{stored.reference}/_history/{stored.version}"}],
        "recorded": instant(stored.last_updated),
        "activity": {"coding": [{"system": _DATA_OPERATION, "code": activity}]},
        "reason": [{"text": context.reason or DEFAULT_REASON}],
        "agent": agents(context),
    }
