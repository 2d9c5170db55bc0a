"""A caller's reach as search criteria: what every statement that finds records ANDs in.

One ``Reach`` per request (or per conditional write) is the ``restrict`` function of every
``service.search.sql.Planner`` the request builds: the search itself, its includes, the
targets of its chains, the sources of its ``_has``, and the matches of conditional creates,
updates, deletes and conditional references in Bundles. Records out of reach are thereby
absent wherever records are found, never filtered afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence

from service.auth.access import Access
from service.search.criteria import Criterion, restriction


class Reach:
    """The criteria ANDed into every match of a type (None: the type is out of reach)."""

    def __init__(self, access: Access) -> None:
        self.access = access
        # Worked out once per type: a search with includes asks about a dozen types (each
        # reference criterion and include names its targets), some more than once.
        self._known: dict[str, list[Criterion] | None] = {}

    def __call__(self, resource_type: str) -> Sequence[Criterion] | None:
        if resource_type not in self._known:
            self._known[resource_type] = self._criteria(resource_type)
        return self._known[resource_type]

    def _criteria(self, resource_type: str) -> list[Criterion] | None:
        if not self.access.allows(resource_type, "search"):
            return None
        compartment = self.access.compartment(resource_type)
        found = []
        for name, values in self.access.restrictions(resource_type):
            criterion = restriction(
                resource_type, name, values, confining=(name, values) == compartment
            )
            if criterion is None:
                return None  # a restriction this server cannot apply: fail closed
            found.append(criterion)
        return found
