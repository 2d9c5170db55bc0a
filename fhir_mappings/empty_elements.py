"""FHIR JSON has no empty elements: the one rule for every resource this service writes out.

R4's JSON format (https://hl7.org/fhir/R4/json.html) allows no empty object, no empty array
and no ``null`` property: an element is either there with content or left out. Answers are
built from plain dicts in many places, where "nothing to list" naturally comes out as ``[]``,
so rather than guard each place, everything served goes through ``without_empty``: generated
answers when they are serialised (``service.media.fhir_json``), stored resources once, on
write, before they are validated (docs/adr/0002-no-empty-elements.md).

A primitive's extensions line up with its values by position (``"given": ["a", "b"],
"_given": [null, {...}]``): in such an array an emptied item becomes ``null`` rather than
going, and the array goes only when nothing but ``null`` is left.

R4 JSON has no empty string either. In answers the service builds, an empty string is left
out like an empty array (``strings``); in a resource being written it is the client's value,
and the model refuses it (400) as before, naming the element.
"""

from __future__ import annotations

from itertools import islice
from typing import Any

import orjson


def without_empty(value: Any, *, strings: bool = False) -> Any:
    """``value`` with every empty object, empty array and null property (and with
    ``strings``, empty string) left out, at every depth (an object or array that only held
    empty ones goes too). What holds nothing empty comes back as the same object, so the
    common case copies nothing."""
    if type(value) is dict:
        return _object(value, strings)
    if type(value) is list:
        return _array(value, False, strings)
    return value


def normalised(resource: dict[str, Any]) -> dict[str, Any]:
    """``without_empty`` for a resource being written. Most hold nothing empty, which their
    compact JSON shows in a few microseconds (``_may_hold_empty``), where the walk takes
    several times that; the rest are walked."""
    try:
        raw = orjson.dumps(resource)
    except orjson.JSONEncodeError:
        return _object(resource, False)  # not JSON's to judge: the walk decides
    return _object(resource, False) if _may_hold_empty(raw) else resource


def _may_hold_empty(raw: bytes) -> bool:
    """Whether JSON text may hold an empty array, object or string, or a null: False proves
    it holds none; True may also come of a string that quotes one."""
    return b"[]" in raw or b"{}" in raw or b'""' in raw or b"null" in raw


def _object(value: dict[str, Any], strings: bool) -> dict[str, Any]:
    kept: dict[str, Any] | None = None
    for position, (key, item) in enumerate(value.items()):
        kind = type(item)
        new: Any
        if kind is dict:
            new = _object(item, strings)
        elif kind is list:
            new = _array(item, key[:1] == "_", strings)
        elif item is None or (strings and kind is str and not item):
            new = None
        else:  # a value: kept as it is
            if kept is not None:
                kept[key] = item
            continue
        if new is item and new:  # a container holding nothing empty
            if kept is not None:
                kept[key] = item
            continue
        if kept is None:
            kept = dict(islice(value.items(), position))
        if new:  # what is left of a container, unless nothing
            kept[key] = new
    return value if kept is None else kept


def _array(value: list[Any], aligned: bool, strings: bool) -> list[Any]:
    """An array's items without empty objects or arrays. A ``null`` item stays (a primitive
    array may hold one, lined up with an extension); in a ``_name`` array (``aligned``) an
    emptied item becomes ``null``, to keep the others in their places."""
    kept: list[Any] | None = None
    for position, item in enumerate(value):
        kind = type(item)
        new: Any
        if kind is dict:
            new = _object(item, strings)
        elif kind is list:
            new = _array(item, False, strings)
        elif strings and kind is str and not item:
            new = None
        else:  # a value, or null: kept as it is
            if kept is not None:
                kept.append(item)
            continue
        if new is item and new:
            if kept is not None:
                kept.append(item)
            continue
        if kept is None:
            kept = value[:position]
        if new:
            kept.append(new)
        elif aligned:
            kept.append(None)
    result = value if kept is None else kept
    if aligned and all(item is None for item in result):
        return []
    return result
