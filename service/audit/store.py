"""Storing a server-authored resource (a Provenance) as a first version.

These resources are written by the server itself, never through the public create path: it
would validate references strictly (a Provenance targets a *version*) and run write hooks,
which must not recurse. They are still stored and indexed like any other resource, so
read, search and history serve them.
"""

from __future__ import annotations

from typing import Any

from service.ids import new_id
from service.search.extraction import extract
from service.storage import repository
from service.storage.repository import NewResource


def first_version(body: dict[str, Any], moment: int, base_url: str) -> NewResource:
    """A server-authored resource with a fresh id, its canonical bytes and its index rows."""
    resource_type = str(body["resourceType"])
    resource_id = new_id()
    return NewResource(
        resource_type,
        resource_id,
        repository.with_meta(body, resource_id, 1, moment),
        moment,
        extract(resource_type, body, base_url),
    )
