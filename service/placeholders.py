"""Placeholders: empty resources created for the missing targets of a write's references.

Off by default, where a reference to a hosted resource that does not exist is refused (422).
With ``KEYWORKER_AUTO_CREATE_PLACEHOLDERS=true`` (as HAPI's auto-create placeholder option)
such a target is created empty, tagged as a placeholder, so records that point at each other
or at records sent later load one at a time in any order; a later write of that id replaces
the placeholder (its tag goes with it). Only a target that never existed gets one: a deleted
resource stays deleted, and a reference to it is refused as before.
"""

from __future__ import annotations

from typing import Any

from service.registry import RESOURCE_TYPES
from service.search.parameters import PROJECT_CANONICAL

TAG_SYSTEM = f"{PROJECT_CANONICAL}/tag"
TAG = {
    "system": TAG_SYSTEM,
    "code": "placeholder",
    "display": "Placeholder for a resource referenced before it was written",
}


def creatable(resource_type: str) -> bool:
    """Whether a missing target of this type may get a placeholder: a type clients write
    by id (not one only the server writes, such as Provenance)."""
    rtype = RESOURCE_TYPES.get(resource_type)
    return rtype is not None and rtype.supports("update")


def placeholder(resource_type: str) -> dict[str, Any]:
    """The body of a placeholder: nothing but its type and its tag."""
    return {"resourceType": resource_type, "meta": {"tag": [TAG]}}
