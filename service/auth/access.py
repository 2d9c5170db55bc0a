"""What a request may do: the contract between authorization and everything that serves data.

The access dependency puts an ``Access`` on ``request.state.access`` for every FHIR request.
Routers and search consult it instead of looking at tokens themselves:

* ``allows(type, action)`` — may this caller perform ``action`` (``read``, ``search``,
  ``create``, ``update``, ``delete``) on resources of ``type`` at all;
* ``restrictions(type)`` — extra search criteria, as query pairs, that every search of
  ``type`` is ANDed with (a ``patient/`` token's compartment, SMART v2 ``?category=``
  restrictions), so out-of-scope records are simply absent from results and includes.

``FULL_ACCESS`` is what the operator's explicit development mode grants.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ACTIONS = ("read", "search", "create", "update", "delete")


@dataclass(frozen=True)
class Access:
    client_id: str | None
    user: str | None = None
    patient: str | None = None
    unrestricted: bool = False
    # (resource type or "*", action) -> list of alternative criteria sets; an empty set
    # means no restriction. Filled from the token's scopes.
    grants: dict[tuple[str, str], list[tuple[tuple[str, str], ...]]] = field(default_factory=dict)

    def allows(self, resource_type: str, action: str) -> bool:
        if self.unrestricted:
            return True
        return (resource_type, action) in self.grants or ("*", action) in self.grants

    def restrictions(self, resource_type: str) -> list[tuple[str, str]]:
        """Criteria every search of ``resource_type`` must also satisfy."""
        return []


FULL_ACCESS = Access(client_id=None, unrestricted=True)
