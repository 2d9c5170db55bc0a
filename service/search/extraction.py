"""Search-index rows derived from a resource's JSON: a pure function of the stored truth.

Called on every write inside the write's transaction, and by ``keyworker reindex``. Values are
recognised by their FHIR datatype's shape (CodeableConcept, Coding, Identifier, Period, ...)
so one parameter definition serves every element it names.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from service.search.dates import MAX_US, MIN_US, date_range
from service.search.parameters import META_PARAMETERS, SEARCH_PARAMETERS, SearchParam
from service.search.phonetic import sounds

Row = dict[str, Any]
# A versioned reference (Provenance.target: ``CareTeam/x/_history/2``) indexes as its resource.
# Types and ids are at most 64 characters (as the resource table holds them): a longer
# reference names nothing here and is indexed as a URL, whole. Values are never cut short:
# the index tables hold them whole (``service.db.tables``).
_RELATIVE = re.compile(
    r"^(?:(?P<base>.+)/)?(?P<type>[A-Z][A-Za-z]{1,63})/(?P<id>[A-Za-z0-9\-.]{1,64})"
    r"(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_WHERE = re.compile(r"where\((\w+)='([^']*)'\)")
_STRING_PARTS = [
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
]


def normalise(text: str) -> str:
    """Case- and accent-insensitive form used by the default string search."""
    if text.isascii():  # most text: nothing to decompose, and lower() is casefold() here
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def values_at(node: Any, path: str) -> list[Any]:
    """Every value at a dotted path, flattening lists; ``name[x]`` matches any choice type,
    and a ``where(element='value')`` step keeps the values whose element has that value.

    The list may be the body's own (a one-element path to a list): read it, don't change it.
    """
    steps = _steps(path)
    if len(steps) == 1 and steps[0].plain:  # most parameters: one element
        child = node.get(path) if isinstance(node, dict) else None
        return [] if child is None else child if isinstance(child, list) else [child]
    nodes = [node]
    for step in steps:
        if step.where is not None:
            element, wanted = step.where
            nodes = [n for n in nodes if isinstance(n, dict) and n.get(element) == wanted]
            continue
        found: list[Any] = []
        for current in nodes:
            if not isinstance(current, dict):
                continue
            children: list[Any]
            if step.choice:
                children = [v for k, v in current.items() if _is_choice(k, step.name)]
            else:
                child = current.get(step.name)
                children = [] if child is None else [child]
            for value in children:
                found.extend(value if isinstance(value, list) else [value])
        if not found:  # most paths end early: an element the record does not have
            return found
        nodes = found
    return nodes


@dataclass(frozen=True)
class _Step:
    """One step of a path: an element (``choice``: ``name[x]``, any of its types), or a
    ``where(element='value')`` filter."""

    name: str
    choice: bool = False
    where: tuple[str, str] | None = None

    @property
    def plain(self) -> bool:
        return not self.choice and self.where is None


@cache
def _steps(path: str) -> tuple[_Step, ...]:
    """A path's steps, read once."""
    steps = []
    for step in path.split("."):
        match = _WHERE.fullmatch(step)
        if match is not None:
            steps.append(_Step(step, where=(match.group(1), match.group(2))))
        elif step.endswith("[x]"):
            steps.append(_Step(step[:-3], choice=True))
        else:
            steps.append(_Step(step))
    return tuple(steps)


def _is_choice(key: str, prefix: str) -> bool:
    return key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper()


def split_reference(reference: str, base_url: str) -> tuple[str | None, str | None, str | None]:
    """(type, id, absolute url) of a reference; our own absolute URLs count as local."""
    if reference.startswith(base_url + "/"):
        reference = reference[len(base_url) + 1 :]
    match = _RELATIVE.match(reference)
    if match is None:
        return None, None, reference
    absolute = reference if match.group("base") else None
    return match.group("type"), match.group("id"), absolute


def token_values(value: Any) -> Iterator[tuple[str | None, str | None, str | None]]:
    """(system, code, text) triples of a code, Coding, CodeableConcept, Identifier or boolean."""
    if isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str):
        yield None, value, None
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "code" not in value and "value" not in value):
            for coding in value.get("coding", []):
                yield coding.get("system"), coding.get("code"), coding.get("display")
            if "text" in value:
                yield None, None, value["text"]
        elif "code" in value:
            yield value.get("system"), value.get("code"), value.get("display")
        elif "value" in value:
            text = (
                value.get("type", {}).get("text") if isinstance(value.get("type"), dict) else None
            )
            yield value.get("system"), str(value["value"]), text


def string_values(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for part in _STRING_PARTS:
            item = value.get(part)
            for text in item if isinstance(item, list) else [item]:
                if isinstance(text, str):
                    yield text


def date_values(value: Any) -> Iterator[tuple[int, int]]:
    """Ranges of a date/dateTime/instant, Period or Timing; malformed text is skipped."""
    try:
        if isinstance(value, str):
            yield date_range(value)
        elif isinstance(value, dict) and ("start" in value or "end" in value):
            low = date_range(value["start"])[0] if "start" in value else MIN_US
            high = date_range(value["end"])[1] if "end" in value else MAX_US
            yield low, high
        elif isinstance(value, dict):
            events = [date_range(e) for e in value.get("event", [])]
            if events:
                yield min(e[0] for e in events), max(e[1] for e in events)
            bounds = value.get("repeat", {}).get("boundsPeriod")
            if bounds:
                yield from date_values(bounds)
    except ValueError:
        return


def _reference_rows(param: SearchParam, value: Any, base_url: str) -> Iterator[tuple[str, Row]]:
    """Rows of a Reference, or of a canonical (a plain string: ``instantiatesCanonical``)."""
    if isinstance(value, str):
        value = {"reference": value}
    if not isinstance(value, dict):
        return
    if isinstance(value.get("reference"), str):
        target_type, target_id, url = split_reference(value["reference"], base_url)
        if target_type is None or not param.targets or target_type in param.targets:
            yield (
                "reference",
                {
                    "param": param.name,
                    "target_type": target_type,
                    "target_id": target_id,
                    "url": url,
                },
            )
    identifier = value.get("identifier")
    if isinstance(identifier, dict):
        for system, code, _ in token_values(identifier):
            yield "token", {"param": f"{param.name}:identifier", "system": system, "code": code}


def _token_rows(param: SearchParam, value: Any) -> Iterator[tuple[str, Row]]:
    for system, code, text in token_values(value):
        if code is not None:
            yield "token", {"param": param.name, "system": system, "code": code}
        if text:
            yield "token_text", {"param": param.name, "text": normalise(text)}
    if isinstance(value, dict) and "value" in value and isinstance(value.get("type"), dict):
        for coding in value["type"].get("coding", []):
            yield (
                "token",
                {
                    "param": f"{param.name}:of-type",
                    "system": coding.get("system"),
                    "code": f"{coding.get('code')}|{value['value']}",
                },
            )


def _composite_rows(param: SearchParam, value: Any, base_url: str) -> Iterator[tuple[str, Row]]:
    reference_part, token_part = param.components
    for ref in values_at(value, reference_part.path):
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            continue
        target_type, target_id, _ = split_reference(ref["reference"], base_url)
        for concept in values_at(value, token_part.path):
            for system, code, _ in token_values(concept):
                if code is not None:
                    yield (
                        "composite",
                        {
                            "param": param.name,
                            "target_type": target_type,
                            "target_id": target_id,
                            "system": system,
                            "code": code,
                        },
                    )


def _rows_for(param: SearchParam, value: Any, base_url: str) -> Iterator[tuple[str, Row]]:
    if param.type == "reference":
        yield from _reference_rows(param, value, base_url)
    elif param.type == "token":
        yield from _token_rows(param, value)
    elif param.type == "string":
        for text in string_values(value):
            norm = sounds(normalise(text)) if param.phonetic else normalise(text)
            yield "string", {"param": param.name, "norm": norm, "exact": text}
    elif param.type == "uri":
        if isinstance(value, str):
            yield "token", {"param": param.name, "system": None, "code": value}
    elif param.type == "date":
        for low, high in date_values(value):
            yield "date", {"param": param.name, "low": low, "high": high}
    elif param.type == "composite":
        yield from _composite_rows(param, value, base_url)


@cache
def _indexed(resource_type: str) -> tuple[SearchParam, ...]:
    """The parameters a record of the type is indexed for: its own and those of ``meta``."""
    return (*META_PARAMETERS, *SEARCH_PARAMETERS.get(resource_type, ()))


def extract(resource_type: str, body: dict[str, Any], base_url: str) -> dict[str, list[Row]]:
    """Index rows by table kind (``token``, ``string``, ...), without duplicates.

    Every row of one kind is built with the same keys in the same order, so its values
    alone tell duplicates apart (cheaper than sorting its items: this runs on every write).
    """
    rows: dict[str, list[Row]] = {}
    seen: set[tuple[str, tuple[Any, ...]]] = set()
    for param in _indexed(resource_type):
        for path in param.paths:
            values = values_at(body, path)
            if param.presence:  # one value, whatever the element holds
                values = [any(v is not False for v in values)]
            for value in values:
                for kind, row in _rows_for(param, value, base_url):
                    key = (kind, tuple(row.values()))
                    if key not in seen:
                        seen.add(key)
                        rows.setdefault(kind, []).append(row)
    return rows
