"""The entries of a transaction or batch Bundle, read and checked before anything runs.

A request Bundle is refused whole (400, naming ``Bundle.entry[i]...``) when it is not one a
server could process: an unknown type or method, a URL that names no interaction, a body
missing where one is needed. https://hl7.org/fhir/R4/http.html#transaction

An entry that asks for an interaction its type does not serve (a write of the server-written
AuditEvent or Provenance) is answered as the plain request is, 405, by ``check_served``,
which ``service.transactions`` runs on every entry: a transaction is refused whole, a batch
reports that entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from service.errors import BadRequest, MethodNotAllowed, PayloadTooLarge
from service.registry import RESOURCE_TYPES
from service.storage.repository import parse_etag

# R4: "process any DELETE interactions, then POST, then PUT or PATCH, then GET or HEAD".
PROCESSING_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_PATH = re.compile(
    r"^(?P<type>[A-Z][A-Za-z]+)(?:/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/(?P<vid>\d+))?)?$"
)


@dataclass(frozen=True)
class Entry:
    """One request of the Bundle, its position kept for responses and error paths."""

    index: int
    method: str
    resource_type: str
    resource_id: str | None
    version: str | None
    query: str | None
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: int | None

    @property
    def path(self) -> str:
        return f"Bundle.entry[{self.index}]"

    @property
    def interaction(self) -> str:
        """What the entry asks for, named as the registry names interactions."""
        if self.method == "POST":
            return "create"
        if self.method in ("PUT", "DELETE"):
            plain = "update" if self.method == "PUT" else "delete"
            return f"conditional-{plain}" if self.query else plain
        if self.version is not None:
            return "vread"
        return "read" if self.resource_id is not None else "search-type"


def check_served(entry: Entry) -> None:
    """Refuse (405, at the entry's request) an interaction its type does not serve."""
    if not RESOURCE_TYPES[entry.resource_type].supports(entry.interaction):
        raise MethodNotAllowed(
            f"{entry.interaction} is not supported on {entry.resource_type}",
            expression=(f"{entry.path}.request",),
        )


def _fail(index: int, element: str, message: str) -> BadRequest:
    return BadRequest(message, expression=(f"Bundle.entry[{index}].{element}",))


def _entry(index: int, raw: Any) -> Entry:
    if not isinstance(raw, dict):
        raise BadRequest("A Bundle entry must be an object", expression=(f"Bundle.entry[{index}]",))
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _fail(index, "request", "Every entry of a transaction or batch needs a request")
    method = request.get("method")
    if method not in PROCESSING_ORDER:
        raise _fail(index, "request.method", f"Unsupported method {method!r}")
    url = request.get("url")
    if not isinstance(url, str) or not url:
        raise _fail(index, "request.url", "The request needs a url")
    path, _, query = url.lstrip("/").partition("?")
    match = _PATH.match(path)
    if match is None or match["type"] not in RESOURCE_TYPES:
        raise _fail(index, "request.url", f"'{url}' names no resource type served here")
    resource_type, resource_id, version = match["type"], match["id"], match["vid"]
    resource = raw.get("resource")
    if method in ("POST", "PUT") and not isinstance(resource, dict):
        raise _fail(index, "resource", f"A {method} entry needs a resource")
    if isinstance(resource, dict):
        _text(index, resource, "resource.id")  # read to plan the writes, before any model
    if method == "PATCH":
        raise _fail(index, "request.method", "PATCH in bundles is not supported; use PUT")
    if method in ("PUT", "DELETE") and resource_id is None and not query:
        raise _fail(index, "request.url", f"{method} needs Type/id or search criteria")
    if method == "PUT" and resource_id is not None and (resource or {}).get("id") is None:
        raise _fail(index, "resource.id", f"A PUT's resource needs its id ('{resource_id}')")
    if method == "POST" and (resource_id is not None or query):
        raise _fail(index, "request.url", "POST takes the resource type alone")
    if_match = _text(index, request, "request.ifMatch")
    try:
        version_matched = None if if_match is None else parse_etag(if_match)
    except BadRequest as error:
        raise _fail(index, "request.ifMatch", error.issues[0].diagnostics) from error
    return Entry(
        index=index,
        method=method,
        resource_type=resource_type,
        resource_id=resource_id,
        version=version,
        query=query or None,
        resource=resource if isinstance(resource, dict) else None,
        full_url=_text(index, raw, "fullUrl"),
        if_none_exist=_text(index, request, "request.ifNoneExist"),
        if_match=version_matched,
    )


def _text(index: int, holder: dict[str, Any], element: str) -> str | None:
    """An optional string element; any other JSON type is refused, not ignored (an ``ifMatch``
    of ``3`` dropped silently would let the write through unguarded)."""
    value = holder.get(element.rpartition(".")[2])
    if value is None or isinstance(value, str):
        return value
    raise _fail(index, element, f"{element.rpartition('.')[2]} must be a string")


def read_bundle(body: dict[str, Any], max_entries: int) -> tuple[str, list[Entry]]:
    """The Bundle's type (``transaction`` or ``batch``) and its entries in Bundle order."""
    if body.get("resourceType") != "Bundle":
        raise BadRequest("POST to the base takes a Bundle", expression=("resourceType",))
    kind = body.get("type")
    if kind not in ("transaction", "batch"):
        raise BadRequest(
            f"Bundle.type {kind!r} cannot be processed; send a transaction or a batch",
            expression=("Bundle.type",),
        )
    raw_entries = body.get("entry") or []
    if not isinstance(raw_entries, list):
        raise BadRequest("Bundle.entry must be a list", expression=("Bundle.entry",))
    if len(raw_entries) > max_entries:
        raise PayloadTooLarge(
            f"The Bundle has {len(raw_entries)} entries; the limit is {max_entries}",
            expression=("Bundle.entry",),
        )
    return kind, [_entry(i, raw) for i, raw in enumerate(raw_entries)]
