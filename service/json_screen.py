"""The JSON half of the input screen: one walk of each parsed request body, before any model.

``service.media.read_body`` parses every JSON body a request sends (a Bundle's entries with it)
and hands it here: nesting deeper than ``Settings.max_json_depth`` (which would exhaust the
model's recursion), a string longer than ``Settings.max_string_length``, a control character
other than tab, line feed and carriage return in a string or a name (FHIR's string type does
not allow one; PostgreSQL text cannot hold a NUL),
and a ``null`` element (FHIR JSON has none; only a primitive array may hold one, to line up
with its ``_name`` array of extensions) are refused with a 400 naming the element by
FHIRPath. ``service.input_screen`` screens the path, the query and form bodies.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fhir_mappings.issues import fhirpath
from service.errors import BadRequest

NUL = "\x00"
# What R4's string pattern ``[ \r\n\t\S]+`` leaves out: the C0 controls but tab, LF and CR.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
# How JSON can spell one: a \u00XX escape (\u0041 too, which a walk then clears), \b or \f.
_CONTROL_ESCAPES = (b"\\u00", b"\\b", b"\\f")
_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{0,63}")


@dataclass(frozen=True)
class JsonLimits:
    """How deep and how long a JSON body may be (``Settings.max_json_depth`` and
    ``Settings.max_string_length``)."""

    max_depth: int
    max_string: int


class _Refused(Exception):
    """A problem deep in a body; each level it passes on the way out adds its step."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind
        self.steps: list[str | int] = []
        self.character = ""  # the control character found, named for the client


def screen_json(body: Any, raw: bytes, limits: JsonLimits) -> None:
    """Refuse (400) a parsed JSON body that is too deep, holds a string too long, or holds
    a control character in a string or a name; the issue's expression is where
    (``Bundle.entry[0]...``).

    Every write passes here, so only what the raw bytes leave possible is looked for: a
    control character can only come from an escape (raw ones are not JSON), no string is
    longer than the body, and nothing nests deeper than the body has opening brackets.
    Most bodies need no walk at all, most others a walk over their objects and arrays alone;
    the full walk over every value (a type test each, a search and a length per string) runs
    for the rest, and it is the one that names the element, on the way out of a refusal.
    """
    escaped = any(escape in raw for escape in _CONTROL_ESCAPES)
    if not escaped and b"null" not in raw and len(raw) <= limits.max_string:
        if raw.count(b"{") + raw.count(b"[") <= limits.max_depth:
            return
        if not (type(body) is dict or type(body) is list) or not _too_deep(body, limits.max_depth):
            return
    try:
        if type(body) is str:
            _check_string(body, limits.max_string)
        elif type(body) is dict or type(body) is list:
            _walk(body, limits.max_depth, limits.max_string)
    except _Refused as refused:
        reason, code = {
            "depth": (f"Objects and arrays nest deeper than {limits.max_depth} here", "structure"),
            "control": (
                f"A control character ({refused.character}) is not allowed in a FHIR string "
                "or name",
                "value",
            ),
            "long": (f"A string is longer than {limits.max_string} characters", "too-long"),
            "null": ("An element may not be null in FHIR JSON: leave it out", "structure"),
        }[refused.kind]
        raise BadRequest(reason, code=code, expression=(_expression(body, refused),)) from None


def _too_deep(value: dict[str, Any] | list[Any], depth_left: int) -> bool:
    if depth_left <= 0:
        return True
    for item in value.values() if type(value) is dict else value:
        if (type(item) is dict or type(item) is list) and _too_deep(item, depth_left - 1):
            return True
    return False


def _expression(body: Any, refused: _Refused) -> str:
    named = body.get("resourceType") if type(body) is dict else None
    root = named if type(named) is str and _TYPE_NAME.fullmatch(named) else ""
    steps = [printable(s) if type(s) is str else s for s in reversed(refused.steps)]
    return fhirpath(root, steps).removeprefix(".") or "$this"


def _walk(value: dict[str, Any] | list[Any], depth_left: int, longest: int) -> None:
    if depth_left <= 0:
        raise _Refused("depth")
    items = value.items() if type(value) is dict else enumerate(value)
    for key, item in items:
        kind = type(item)
        if kind is str:
            if len(item) > longest or _CONTROL.search(item):
                _refuse(item, key)
        elif kind is dict or kind is list:
            try:
                _walk(item, depth_left - 1, longest)
            except _Refused as refused:
                refused.steps.append(key)
                raise
        elif item is None and type(key) is str:
            null = _Refused("null")
            null.steps.append(key)
            raise null
        if type(key) is str and (len(key) > longest or _CONTROL.search(key)):
            _refuse(key, key)


def _check_string(text: str, longest: int) -> None:
    if len(text) > longest or _CONTROL.search(text):
        _refuse(text, None)


def _refuse(text: str, key: str | int | None) -> None:
    control = _CONTROL.search(text)
    refused = _Refused("control" if control else "long")
    if control:
        code = ord(control.group())
        refused.character = "NUL" if code == 0 else f"U+{code:04X}"
    if key is not None:
        refused.steps.append(key)
    raise refused


def printable(text: str) -> str:
    """``text`` fit to quote back to the client: a control character shown as ``%XX``."""
    return _CONTROL.sub(lambda found: f"%{ord(found.group()):02X}", text)
