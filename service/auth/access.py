"""What a request may do: the contract between authorization and everything that serves data.

The access dependency puts an ``Access`` on ``request.state.access`` (and in the
``current_access`` context variable, for write hooks and conditional matches) for every FHIR
request. Routers, search and writes consult it instead of looking at tokens themselves:

* ``allows(type, action)`` — may this caller perform ``action`` (``read``, ``search``,
  ``create``, ``update``, ``delete``) on resources of ``type`` at all;
* ``restrictions(type)`` — extra search criteria, as (parameter, values) pairs, that every
  search of ``type`` is ANDed with (a ``patient/`` token's compartment, SMART v2
  ``?category=`` restrictions), so out-of-scope records are simply absent from results,
  includes, chains, ``_has`` and conditional matches (``service.auth.reach``);
* ``alternatives(type, action)`` — the criteria sets one of which a single record must meet
  (what ``service.auth.records`` checks on direct reads and on every write).

A ``patient/`` grant confines the types of the patient compartment to its patient; types
outside it (Practitioner, PractitionerRole, Organization) are shared by every patient, so
such a grant may read and search them but never create, change or delete them.

``FULL_ACCESS`` is what the operator's explicit development mode grants, and what writes
outside any request (demo loader, CLI) run with.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from service.auth.scopes import Criteria, parse_scopes
from service.errors import Forbidden

ACTIONS = ("read", "search", "create", "update", "delete")
# What a patient/ grant allows on a type outside the patient compartment.
_SHARED_ACTIONS = ("read", "search")

# The patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html),
# limited to the types served here: the search parameter that ties a record to its patient.
# Types not listed (Practitioner, Organization, ...) hold no patient data and are not
# confined by a patient/ scope.
COMPARTMENT: dict[str, str] = {
    "Patient": "_id",
    "CareTeam": "patient",
    "CarePlan": "patient",
    "RelatedPerson": "patient",
    "Provenance": "patient",
    "AuditEvent": "patient",
}
# Stands in a patient/ grant's criteria for "this type's compartment link to the patient".
_IN_COMPARTMENT: tuple[str, tuple[str, ...]] = ("$compartment", ())
Restriction = tuple[str, tuple[str, ...]]


@dataclass(frozen=True)
class Access:
    client_id: str | None
    user: str | None = None
    patient: str | None = None
    unrestricted: bool = False
    # (resource type or "*", action) -> alternative criteria sets; an empty set means no
    # restriction. Filled from the token's scopes by ``from_scopes``.
    grants: dict[tuple[str, str], list[Criteria]] = field(default_factory=dict)

    @classmethod
    def from_scopes(
        cls, scopes: str, *, client_id: str | None, user: str | None, patient: str | None
    ) -> Access:
        grants: dict[tuple[str, str], list[Criteria]] = {}
        for scope in parse_scopes(scopes):
            criteria = scope.criteria
            if scope.context == "patient":
                criteria = (*criteria, _IN_COMPARTMENT)
            for action in scope.actions:
                grants.setdefault((scope.resource_type, action), []).append(criteria)
        return cls(client_id, user, patient, grants=grants)

    def alternatives(self, resource_type: str, action: str) -> list[Criteria]:
        """The criteria sets, one of which a record of ``resource_type`` must meet."""
        if self.unrestricted:
            return [()]
        found: list[Criteria] = []
        for key in ((resource_type, action), ("*", action)):
            for criteria in self.grants.get(key, []):
                resolved = self._resolve(resource_type, action, criteria)
                if resolved is not None and resolved not in found:
                    found.append(resolved)
        return found

    def allows(self, resource_type: str, action: str) -> bool:
        return bool(self.alternatives(resource_type, action))

    def covers_all(self, action: str) -> bool:
        """Whether ``action`` is granted on every type without any restriction."""
        return self.unrestricted or () in self.grants.get(("*", action), [])

    def restrictions(self, resource_type: str, action: str = "search") -> list[Restriction]:
        """Criteria every search of ``resource_type`` must also satisfy.

        Alternatives that differ in one parameter have their values ORed, as FHIR search
        does; any other mix is ANDed, which may hide records the token covers but never
        shows one it does not. Raises ``Forbidden`` when the type is not granted at all:
        callers check ``allows`` first, and a forgotten check must not widen access.
        """
        alternatives = self.alternatives(resource_type, action)
        if not alternatives:
            raise Forbidden(f"The access token does not allow {action} on {resource_type}")
        if () in alternatives:
            return []
        common = [pair for pair in alternatives[0] if all(pair in a for a in alternatives)]
        rest = [[pair for pair in a if pair not in common] for a in alternatives]
        names = {pair[0] for pairs in rest for pair in pairs}
        if len(names) == 1 and all(len(pairs) == 1 for pairs in rest):
            values = tuple(dict.fromkeys(v for pairs in rest for v in pairs[0][1]))
            return [*common, (names.pop(), values)]
        return [*common, *dict.fromkeys(pair for pairs in rest for pair in pairs)]

    def compartment(self, resource_type: str) -> Restriction | None:
        """The criterion tying ``resource_type`` to this token's patient, if it has one."""
        link = COMPARTMENT.get(resource_type)
        if link is None or self.patient is None:
            return None
        return (link, (self.patient if link == "_id" else f"Patient/{self.patient}",))

    def _resolve(self, resource_type: str, action: str, criteria: Criteria) -> Criteria | None:
        """A grant's criteria for one type, the compartment marker made concrete (or None)."""
        if _IN_COMPARTMENT not in criteria:
            return criteria
        plain = tuple(pair for pair in criteria if pair != _IN_COMPARTMENT)
        if resource_type not in COMPARTMENT:
            return plain if action in _SHARED_ACTIONS else None
        link = self.compartment(resource_type)
        if link is None:
            return None  # a patient/ scope without a patient claim reaches no patient's data
        return tuple(sorted((*plain, link)))


FULL_ACCESS = Access(client_id=None, unrestricted=True)

current_access: ContextVar[Access] = ContextVar("current_access", default=FULL_ACCESS)
