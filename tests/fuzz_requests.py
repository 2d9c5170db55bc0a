"""Requests a hostile or careless client sends, built from what the server advertises.

Types, interactions, search parameters, includes and operations are read from the running
server (its CapabilityStatement and OperationDefinitions), so whatever it serves tomorrow is
fuzzed without editing this file. A ``Call`` is one HTTP request under the FHIR base; its repr
is what a failure report shows, long values shortened to their first characters and length.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

from tests.fuzz_values import (
    HUGE_NUMBERS,
    Json,
    hostile_text,
    ids,
    long_text,
    odd_dates,
    references,
    resources,
    wrong_types,
)
from tests.test_assignment_import import SAMPLE

FHIR_JSON = "application/fhir+json"
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", "xx")
MODIFIERS = {
    "string": ("exact", "contains", "missing", "text"),
    "token": ("text", "not", "of-type", "missing", "in", "below", "identifier"),
    "reference": ("identifier", "missing", "Patient", "Practitioner", "below", "Nothing"),
    "date": ("missing", "exact"),
    "composite": ("missing",),
    "uri": ("below", "above", "missing"),
}
CONTROLS = {
    "_count": st.one_of(
        st.integers(-5, 2000).map(str), st.sampled_from(["1e3", "99999999999999999999", "x"])
    ),
    "_total": st.sampled_from(["none", "estimate", "accurate", "x", ""]),
    "_summary": st.sampled_from(["true", "false", "count", "data", "text", "x"]),
    "_format": st.sampled_from(["json", "application/fhir+json", "xml", "text/html", "x"]),
    "_pretty": st.sampled_from(["true", "false", "x"]),
    "_cursor": st.one_of(hostile_text, st.text("ABCDEFabcdef0123456789-_=", max_size=60)),
    "_elements": st.lists(st.sampled_from(["id", "name", "meta", "x", "*", ""]), max_size=4).map(
        ",".join
    ),
}
CONTENT_TYPES = (
    FHIR_JSON,
    "application/json",
    "application/fhir+json; charset=utf-8",
    "application/fhir+json; charset=latin-1",
    "application/fhir+xml",
    "text/plain",
    "multipart/form-data",
)
URL_LIMIT = 65_000  # httpx sends no longer URL (h11 and browsers refuse far shorter ones)
IF_MATCH = ('W/"1"', 'W/"2"', '"1"', '"2"', "W/2", "2", "*", 'W/"99999999999999999999"', 'W/""')
CSV_HEADER, CSV_ROW, *_ = SAMPLE.read_text(encoding="utf-8").splitlines()


@dataclass(frozen=True)
class Call:
    """One request under the FHIR base."""

    method: str
    path: str  # "/Patient/x", already percent-encoded
    params: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def target(self) -> str:
        """Path and query, every byte of the text sent (lone surrogates too, as UTF-8)."""
        if not self.params:
            return self.path
        return f"{self.path}?{query(self.params)}"

    def __repr__(self) -> str:
        body = "" if self.body is None else f"\n  body ({len(self.body)} bytes): {short(self.body)}"
        headers = "".join(f"\n  {k}: {short(v)}" for k, v in self.headers)
        return f"{self.method} {short(self.target(), 600)}{headers}{body}"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Hypothesis reports a failing example with this (its own would print every byte)."""
        printer.text(repr(self))


def short(value: str | bytes, keep: int = 400) -> str:
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    shown = ascii(text[:keep])
    return shown if len(text) <= keep else f"{shown}... ({len(text)} characters)"


def _encode(text: str, safe: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def query(params: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{_encode(k, ':._$')}={_encode(v, ':/$|,')}" for k, v in params)


def segment(text: str) -> str:
    return _encode(text, "")


def _header_safe(text: str) -> str:
    """What an HTTP header can carry: no control characters, no edge whitespace."""
    return "".join(c for c in text if c == "\t" or " " <= c != "\x7f").strip() or "x"


header_text = hostile_text.map(_header_safe)


def dumps(value: Json, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Served:
    """What the server says it serves."""

    interactions: dict[str, frozenset[str]]  # type -> interaction codes
    search: dict[str, dict[str, str]]  # type -> parameter name -> parameter type
    includes: dict[str, tuple[str, ...]]
    revincludes: dict[str, tuple[str, ...]]
    operations: tuple[dict[str, Json], ...]  # OperationDefinition resources

    @classmethod
    def read(cls, capability: dict[str, Json], definitions: Sequence[dict[str, Json]]) -> Served:
        rest = capability["rest"][0]["resource"]
        return cls(
            interactions={r["type"]: frozenset(i["code"] for i in r["interaction"]) for r in rest},
            search={
                r["type"]: {p["name"]: p["type"] for p in r.get("searchParam", [])} for r in rest
            },
            includes={r["type"]: tuple(r.get("searchInclude", [])) for r in rest},
            revincludes={r["type"]: tuple(r.get("searchRevInclude", [])) for r in rest},
            operations=tuple(definitions),
        )

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """Strategies built from it show it in their own repr: its types are enough."""
        printer.text(f"Served({', '.join(self.types)})")

    @property
    def types(self) -> list[str]:
        return sorted(self.interactions)

    @property
    def writable(self) -> list[str]:
        return [name for name in self.types if "create" in self.interactions[name]]

    def references_of(self, resource_type: str) -> list[str]:
        kinds = self.search.get(resource_type, {})
        return [name for name, kind in kinds.items() if kind == "reference"]


def listed(values: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """One value, or several joined by commas (FHIR's OR)."""
    return st.one_of(values, st.lists(values, min_size=2, max_size=4).map(",".join))


def search_values(served: Served, kind: str) -> st.SearchStrategy[str]:
    """Values for a parameter of FHIR search type ``kind``: plausible, then hostile."""
    token = st.one_of(
        st.sampled_from(["active", "true", "keyworker", "9434765919", "MRN-1"]),
        st.tuples(hostile_text, hostile_text).map("|".join),
        st.sampled_from(["|", "||", "|x", "https://fhir.nhs.uk/Id/nhs-number|"]),
    )
    dates = st.tuples(st.sampled_from(("", *PREFIXES)), odd_dates).map("".join)
    by_kind: dict[str, st.SearchStrategy[str]] = {
        "token": token,
        "date": dates,
        "reference": references(served.types),
        "string": st.one_of(st.sampled_from(["Smith", "Mü", "o'b", "%", "_"]), hostile_text),
        "composite": st.tuples(references(served.types), token).map("$".join),
        "number": st.tuples(st.sampled_from(PREFIXES), st.integers().map(str)).map("".join),
    }
    return listed(st.one_of(by_kind.get(kind, hostile_text), hostile_text))


@st.composite
def search_pair(draw: st.DrawFn, served: Served, resource_type: str) -> tuple[str, str]:
    """A parameter of ``resource_type`` (plain, modified, chained, reverse-chained or a result
    control) with a value fit for it, or hostile."""
    params = served.search.get(resource_type) or {"_id": "token"}
    name = draw(st.sampled_from(sorted(params)))
    kind = params[name]
    form = draw(st.sampled_from(["plain", "modifier", "chain", "has", "control", "include"]))
    if form == "modifier":
        modifier = draw(st.one_of(st.sampled_from(MODIFIERS.get(kind, ("x",))), hostile_text))
        name = f"{name}:{modifier}"
        if modifier == "missing":
            return name, draw(st.sampled_from(["true", "false", "x"]))
    elif form == "chain" and served.references_of(resource_type):
        via = draw(st.sampled_from(served.references_of(resource_type)))
        target = draw(st.sampled_from(served.types))
        chained = served.search.get(target) or {"_id": "token"}
        name = draw(st.sampled_from(sorted(chained)))
        kind = chained[name]
        typed = draw(st.sampled_from(["", f":{target}"]))
        name = f"{via}{typed}.{name}"
    elif form == "has":
        source = draw(st.sampled_from(served.types))
        via = draw(st.one_of(st.sampled_from(served.references_of(source) or ["x"]), hostile_text))
        theirs = served.search.get(source) or {"_id": "token"}
        name = draw(st.sampled_from(sorted(theirs)))
        kind = theirs[name]
        name = f"_has:{source}:{via}:{name}"
    elif form == "control":
        control = draw(st.sampled_from([*sorted(CONTROLS), "_sort"]))
        if control == "_sort":
            keys = st.tuples(st.sampled_from(["", "-"]), st.sampled_from([*params, "x"]))
            return control, draw(st.lists(keys.map("".join), min_size=1, max_size=3).map(",".join))
        return control, draw(CONTROLS[control])
    elif form == "include":
        which = draw(st.sampled_from(["_include", "_revinclude"]))
        advertised = (served.includes if which == "_include" else served.revincludes).get(
            resource_type, ()
        )
        iterate = draw(st.sampled_from(["", ":iterate", ":x"]))
        value = draw(st.one_of(st.sampled_from([*advertised, "*"]), hostile_text))
        return f"{which}{iterate}", value
    return name, draw(search_values(served, kind))


def search_params(served: Served, resource_type: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    return st.lists(search_pair(served, resource_type), max_size=5)


@st.composite
def searches(draw: st.DrawFn, served: Served) -> Call:
    """``GET /T?...``, ``POST /T/_search`` with a form, or a history page."""
    resource_type = draw(st.sampled_from(served.types))
    params = tuple(draw(search_params(served, resource_type)))
    how = draw(st.sampled_from(["get", "get", "post", "history", "system-history"]))
    if how == "post" or len(query(params)) > URL_LIMIT // 2:
        form = (("Content-Type", "application/x-www-form-urlencoded"),)
        return Call("POST", f"/{resource_type}/_search", (), form, query(params).encode())
    if how in ("history", "system-history"):
        paging = st.sampled_from(["_since", "_at", "_count", "_cursor"])
        params = tuple(draw(st.lists(st.tuples(paging, search_values(served, "date")))))
        path = f"/{resource_type}/_history" if how == "history" else "/_history"
        return Call("GET", path, params)
    return Call("GET", f"/{resource_type}", params)


@st.composite
def reads(draw: st.DrawFn, served: Served) -> Call:
    resource_type = draw(st.one_of(st.sampled_from(served.types), hostile_text))
    path = f"/{segment(resource_type)}/{segment(draw(ids(resource_type)))}"
    tail = draw(st.sampled_from(["", "/_history", "/_history/1", "/_history/x", "/_history/0"]))
    return Call("GET", path + tail)


@st.composite
def bodies(draw: st.DrawFn, value: Json) -> bytes:
    """``value`` as JSON, or as the broken text a careless client sends instead."""
    text = dumps(value, draw(st.booleans()))
    broken = draw(st.integers(0, 9))
    if broken == 0:
        return draw(
            st.sampled_from(
                [
                    b"",
                    b"{",
                    text[: len(text) // 2],
                    b"\xef\xbb\xbf" + text,
                    b"\xff\xfe" + text,
                    b"[" + text + b"]",
                    b'{"resourceType":"Patient","resourceType":"CareTeam"}',
                    b'{"resourceType":"Patient","id":1e999999}',
                    b"null",
                ]
            )
        )
    return text


@st.composite
def writes(draw: st.DrawFn, served: Served) -> Call:
    """Create (plain or conditional), update (with ``If-Match`` variants, or conditional),
    JSON Patch and delete (plain or conditional), on any type, allowed or not."""
    resource_type = draw(st.one_of(st.sampled_from(served.writable), st.sampled_from(served.types)))
    resource = draw(resources(resource_type, served.types))
    kind = draw(st.sampled_from(["create", "update", "conditional", "patch", "delete"]))
    headers = [("Content-Type", draw(st.sampled_from(CONTENT_TYPES[:1] * 6 + CONTENT_TYPES)))]
    if draw(st.booleans()):
        prefer = ["return=minimal", "return=representation", "return=OperationOutcome", "x"]
        headers.append(("Prefer", draw(st.sampled_from(prefer))))
    if kind == "create":
        if draw(st.booleans()):
            headers.append(("If-None-Exist", query(draw(search_params(served, resource_type)))))
        return Call("POST", f"/{resource_type}", (), tuple(headers), draw(bodies(resource)))
    criteria = tuple(draw(search_params(served, resource_type)))
    if kind == "conditional":
        method = draw(st.sampled_from(["PUT", "DELETE"]))
        body = draw(bodies(resource)) if method == "PUT" else None
        return Call(method, f"/{resource_type}", criteria, tuple(headers), body)
    the_id = draw(ids(resource_type))
    path = f"/{resource_type}/{segment(the_id)}"
    if draw(st.booleans()):
        headers.append(("If-Match", draw(st.one_of(st.sampled_from(IF_MATCH), header_text))))
    if kind == "delete":
        return Call("DELETE", path, (), tuple(headers))
    if kind == "patch":
        headers[0] = ("Content-Type", "application/json-patch+json")
        return Call("PATCH", path, (), tuple(headers), draw(bodies(draw(patches(resource)))))
    if draw(st.integers(0, 3)):
        resource["id"] = the_id
    return Call("PUT", path, (), tuple(headers), draw(bodies(resource)))


@st.composite
def patches(draw: st.DrawFn, resource: dict[str, Json]) -> Json:
    """A JSON Patch document: operations on the resource's own paths, with hostile values."""
    paths = [f"/{key}" for key in resource] + ["/name/0/family", "/id", "/meta", "", "/~2", "/-"]
    operation = st.fixed_dictionaries(
        {
            "op": st.sampled_from(["add", "remove", "replace", "move", "copy", "test", "x"]),
            "path": st.one_of(st.sampled_from(paths), hostile_text),
        },
        optional={
            "value": st.one_of(hostile_text, wrong_types, odd_dates),
            "from": st.sampled_from(paths),
        },
    )
    return draw(st.one_of(st.lists(operation, max_size=4), wrong_types))


def _in_parameters(definition: dict[str, Json]) -> list[dict[str, Json]]:
    return [p for p in definition.get("parameter", []) if p.get("use") == "in"]


def _query_value(served: Served, kind: str | None) -> st.SearchStrategy[str]:
    plain: dict[str, st.SearchStrategy[str]] = {
        "dateTime": odd_dates,
        "date": odd_dates,
        "integer": st.one_of(st.integers().map(str), st.sampled_from(["1.5", "-0", "1e3"])),
        "boolean": st.sampled_from(["true", "false", "True", "1", ""]),
        "string": st.one_of(
            references(served.types),
            st.sampled_from(["9434765919", "https://fhir.nhs.uk/Id/nhs-number|9434765919"]),
        ),
    }
    return st.one_of(plain.get(kind or "", hostile_text), hostile_text)


def _parameter_value(served: Served, kind: str | None) -> st.SearchStrategy[dict[str, Json]]:
    """A ``Parameters.parameter`` value[x] of FHIR type ``kind``, plausible or hostile."""
    coding = st.fixed_dictionaries(
        {
            "system": st.one_of(
                st.just("https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"),
                hostile_text,
            ),
            "code": st.one_of(st.sampled_from(["keyworker", "co-keyworker"]), hostile_text),
        }
    )
    values: dict[str, st.SearchStrategy[Json]] = {
        "Coding": coding,
        "Reference": references(served.types).map(lambda r: {"reference": r}),
        "date": odd_dates,
        "dateTime": odd_dates,
        "integer": st.one_of(st.integers(), st.sampled_from(HUGE_NUMBERS)),
        "boolean": st.booleans(),
        "string": hostile_text,
    }
    name = f"value{(kind or 'String')[:1].upper()}{(kind or 'String')[1:]}"
    value = st.one_of(values.get(kind or "", hostile_text), wrong_types)
    return value.map(lambda v: {name: v})


@st.composite
def operations(draw: st.DrawFn, served: Served) -> Call:
    """Any advertised operation, at its level, with its in-parameters (some left out, some
    hostile, some unknown): as a query for GET, as Parameters or CSV for POST."""
    definition = draw(st.sampled_from(served.operations))
    code = definition["code"]
    if definition.get("instance"):
        owner = draw(st.sampled_from(definition.get("resource") or served.types))
        path = f"/{owner}/{segment(draw(ids(owner)))}/${code}"
    elif definition.get("type"):
        path = f"/{draw(st.sampled_from(definition['resource']))}/${code}"
    else:
        path = f"/${code}"
    wanted = [p for p in _in_parameters(definition) if draw(st.integers(0, 4))]
    if not definition.get("affectsState"):
        params = [(p["name"], draw(_query_value(served, p.get("type")))) for p in wanted]
        params += draw(st.lists(st.tuples(hostile_text, hostile_text), max_size=1))
        params += draw(st.lists(search_pair(served, "CareTeam"), max_size=1))
        return Call("GET", path, tuple(params))
    if draw(st.integers(0, 2)) == 0:
        return Call("POST", path, (), (("Content-Type", "text/csv"),), draw(csv_files()))
    parameters = [
        {"name": p["name"], **draw(_parameter_value(served, p.get("type")))} for p in wanted
    ]
    body = {"resourceType": "Parameters", "parameter": parameters}
    return Call("POST", path, (), (("Content-Type", FHIR_JSON),), draw(bodies(body)))


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """An assignments CSV: the example's header and first row, with cells made hostile."""
    cells = CSV_ROW.split(",")
    for _ in range(draw(st.integers(0, 3))):
        column = draw(st.integers(0, len(cells) - 1))
        cells[column] = draw(st.one_of(hostile_text, odd_dates, long_text))
    rows = draw(st.integers(1, 3))
    text = "\n".join([CSV_HEADER] + [",".join(cells)] * rows) + "\n"
    return text.encode("utf-8", "surrogatepass")


@st.composite
def bundles(draw: st.DrawFn, served: Served) -> Call:
    """A transaction or batch whose entries are the other requests here, rewritten as entries
    (with ``urn:uuid`` full URLs, some shared)."""
    calls = draw(st.lists(st.one_of(writes(served), reads(served), searches(served)), max_size=5))
    full_urls = [f"urn:uuid:{uuid.UUID(int=n)}" for n in range(3)]
    entries = []
    for call in calls:
        request: dict[str, Json] = {"method": call.method, "url": call.target().lstrip("/")}
        request.update({_ENTRY_HEADERS[k]: v for k, v in call.headers if k in _ENTRY_HEADERS})
        entry: dict[str, Json] = {"request": request}
        if draw(st.booleans()):
            entry["fullUrl"] = draw(st.sampled_from(full_urls))
        with contextlib.suppress(ValueError):  # a broken body leaves the entry without one
            entry["resource"] = json.loads(call.body or b"")
        entries.append(entry)
    kind = draw(st.one_of(st.sampled_from(["transaction", "batch"]), hostile_text))
    bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
    return Call("POST", "/", (), (("Content-Type", FHIR_JSON),), draw(bodies(bundle)))


_ENTRY_HEADERS = {
    "If-Match": "ifMatch",
    "If-None-Exist": "ifNoneExist",
    "If-None-Match": "ifNoneMatch",
}


def calls(served: Served) -> st.SearchStrategy[Call]:
    """Any request: search, read, write, operation or Bundle, with careless headers; none
    with a URL longer than an HTTP client sends."""
    return (
        st.tuples(
            st.one_of(
                searches(served), reads(served), writes(served), operations(served), bundles(served)
            ),
            st.lists(
                st.tuples(
                    st.sampled_from(["Accept", "Prefer", "If-None-Match", "X-Request-Id"]),
                    st.sampled_from([FHIR_JSON, "application/xml", "*/*", "text/html", "x", ""]),
                ),
                max_size=1,
            ),
        )
        .map(lambda both: _with_headers(*both))
        .filter(lambda call: len(call.target()) < URL_LIMIT)
    )


def _with_headers(call: Call, extra: list[tuple[str, str]]) -> Call:
    return Call(call.method, call.path, call.params, call.headers + tuple(extra), call.body)
