"""Bundles assembled around stored resource bytes, which are spliced in without parsing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from service.media import fhir_json
from service.search.dates import instant
from service.storage.repository import Stored

_STATUS = {"POST": "201 Created", "PUT": "200 OK", "DELETE": "204 No Content"}


def _history_entry(stored: Stored, base_url: str) -> dict[str, Any]:
    entry: dict[str, Any] = {"fullUrl": f"{base_url}/{stored.reference}"}
    if not stored.deleted:
        entry["resource"] = orjson.Fragment(stored.content)
    status = "201 Created" if stored.version == 1 else _STATUS.get(stored.method, "200 OK")
    entry["request"] = {
        "method": stored.method,
        "url": stored.type if stored.method == "POST" else stored.reference,
    }
    entry["response"] = {
        "status": status,
        "etag": stored.etag,
        "lastModified": instant(stored.last_updated),
    }
    return entry


def history_bundle(
    versions: Sequence[Stored], base_url: str, links: dict[str, str], moment: int
) -> bytes:
    return fhir_json(
        {
            "resourceType": "Bundle",
            "type": "history",
            "meta": {"lastUpdated": instant(moment)},
            "link": [{"relation": r, "url": u} for r, u in links.items()],
            "entry": [_history_entry(v, base_url) for v in versions],
        }
    )


def response_bundle(
    kind: str,
    results: Sequence[tuple[str, Stored | None, dict[str, Any] | None, bytes | None]],
    base_url: str,
    *,
    minimal: bool,
    moment: int,
) -> bytes:
    """A ``transaction-response`` or ``batch-response``: one entry per request, in order;
    a search's entry carries its searchset Bundle (``found``)."""
    entries = []
    named: set[tuple[str, int]] = set()  # bdl-7: a fullUrl once per version
    for status, stored, outcome, found in results:
        entry: dict[str, Any] = {}
        if found is not None and not minimal:
            entry["resource"] = orjson.Fragment(found)
        response: dict[str, Any] = {"status": status}
        if stored is not None:
            response["etag"] = stored.etag
            response["lastModified"] = instant(stored.last_updated)
            if status.startswith("201"):
                response["location"] = f"{stored.reference}/_history/{stored.version}"
            if not stored.deleted and (stored.reference, stored.version) not in named:
                named.add((stored.reference, stored.version))
                entry["fullUrl"] = f"{base_url}/{stored.reference}"
                if not minimal:
                    entry["resource"] = orjson.Fragment(stored.content)
        if outcome is not None:
            response["outcome"] = outcome
        entry["response"] = response
        entries.append(entry)
    return fhir_json(
        {
            "resourceType": "Bundle",
            "type": f"{kind}-response",
            "meta": {"lastUpdated": instant(moment)},
            "entry": entries,
        }
    )
