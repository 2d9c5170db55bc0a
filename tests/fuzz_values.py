"""Hostile and careless values, and near-valid FHIR resources carrying them.

A resource that is wrong everywhere is refused at its first fault and tests nothing beyond the
parser, so resources start from valid skeletons (the search tests' data set) and change only a
few values: the rest stays valid and the hostile value travels as far into the service (index
writes, reference resolution, keyworking rules) as it can. Shrinking then leads back towards the
valid skeleton, so a failure is reported with the smallest change that causes it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st

from tests.test_search_seed import SEED

Json = Any
Path = tuple[str | int, ...]

# The lengths of the index columns and of what usually follows them, either side of each.
LENGTHS = (64, 255, 256, 510, 511, 512, 513, 1022, 1023, 1024, 4096, 70_000)
ODD_DATES = (
    "9999-12-31",
    "9999-12-31T23:59:59.999Z",
    "0001-01-01",
    "0000-01-01",
    "10000-01-01",
    "-0001-01-01",
    "2024-02-30",
    "2024-13-01",
    "2024-00",
    "2024",
    "2024-01-01T10:00:00",
    "2024-01-01T10:00",
    "2024-01-01T24:00:00Z",
    "2024-01-01T10:00:00+14:00",
    "2024-01-01T10:00:00-99:00",
    "2024-01-01T10:00:00.1234567890Z",
    "1970-01-01T00:00:00Z",
    "20240101",
    "2024-1-1",
    " 2024-01-01",
    "today",
)
ODD_TEXT = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x00" * 8,
    "\x01\x02\x1b[31m\x7f",
    "\ud800",
    "\udfff\ud800",
    "\ufeff",
    "\u202eevil",
    "Zoe\u0301\U0001f600",
    "\U0010ffff",
    "' OR '1'='1' --",
    "'); DROP TABLE resource; --",
    "%00",
    "%",
    "\\",
    "$",
    "|",
    ",",
    "urn:uuid:",
    "null",
    "true",
    "1e309",
    "-0",
    "${jndi:ldap://x}",
    "<script>",
)
HUGE_NUMBERS: tuple[Json, ...] = (
    10**20,
    -(10**20),
    10**400,
    2**63,
    -(2**63) - 1,
    1e308,
    -0.0,
    0.1,
    float("inf"),
    float("nan"),
)
_ID_TEXT = st.text(st.characters(codec="ascii"), min_size=1, max_size=70)


def _repeat(unit: str, length: int) -> str:
    return (unit * length)[:length]


long_text = st.builds(_repeat, st.sampled_from("aé😀|/$,\\%"), st.sampled_from(LENGTHS))
hostile_text = st.one_of(
    st.sampled_from(ODD_TEXT),
    long_text,
    st.text(max_size=30),
    st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=6),
)
odd_dates = st.one_of(
    st.sampled_from(ODD_DATES),
    st.dates().map(str),
    st.datetimes().map(lambda moment: moment.isoformat()),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
)
wrong_types: st.SearchStrategy[Json] = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["true", "false", "0", "1"]),
    st.integers(),
    st.sampled_from(HUGE_NUMBERS),
    st.just([]),
    st.just({}),
    st.just([None]),
    st.just([[]]),
    st.just({"": {}}),
)


def skeletons() -> dict[str, list[dict[str, Json]]]:
    """Valid resources of each type the search tests load, plus the two the server writes."""
    found: dict[str, list[dict[str, Json]]] = {}
    for resource in SEED:
        found.setdefault(resource["resourceType"], []).append(resource)
    found["Provenance"] = [
        {
            "resourceType": "Provenance",
            "target": [{"reference": "CareTeam/ct-1"}],
            "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"reference": "Practitioner/pr-1"}}],
        }
    ]
    found["AuditEvent"] = [
        {
            "resourceType": "AuditEvent",
            "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
            "recorded": "2024-01-01T00:00:00Z",
            "agent": [{"who": {"reference": "Practitioner/pr-1"}, "requestor": True}],
            "source": {"observer": {"display": "fuzz"}},
        }
    ]
    return found


SKELETONS = skeletons()
SEED_IDS: dict[str, list[str]] = {
    rtype: [r["id"] for r in found if "id" in r] for rtype, found in SKELETONS.items()
}


def ids(resource_type: str) -> st.SearchStrategy[str]:
    """Mostly ids that exist (so writes reach stored data), sometimes hostile ones."""
    known = SEED_IDS.get(resource_type) or ["none"]
    return st.one_of(st.sampled_from(known), st.sampled_from(ODD_TEXT), long_text, _ID_TEXT)


def references(types: Sequence[str]) -> st.SearchStrategy[str]:
    """References to any type, existing or not, in every form a careless client writes."""
    typed = st.sampled_from(list(types)).flatmap(lambda t: ids(t).map(lambda i: f"{t}/{i}"))
    return st.one_of(
        typed,
        st.sampled_from(
            [
                "Patient/",
                "/Patient/pat-1",
                "Patient/pat-1/_history/1",
                "Patient/pat-1/_history/x",
                "Patient?identifier=x",
                "http://elsewhere.example/fhir/Patient/pat-1",
                "urn:uuid:00000000-0000-0000-0000-000000000000",
                "#",
                "#missing",
                "Nothing/1",
            ]
        ),
        hostile_text,
    )


def _leaves(value: Json, path: Path = ()) -> list[Path]:
    """Every node below the root (containers included: they are replaced whole)."""
    found = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _leaves(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _leaves(child, (*path, index))
    return found


def _replacement(key: str | int, original: Json, types: Sequence[str]) -> st.SearchStrategy[Json]:
    """A hostile value fit for where it goes: a date where a date was, and so on."""
    choices: list[st.SearchStrategy[Json]] = []
    if key == "reference":
        choices.append(references(types))
    if isinstance(original, str):
        choices.append(hostile_text)
        if original[:1].isdigit() and "-" in original:
            choices.append(odd_dates)
    elif isinstance(original, dict | list):
        choices.append(st.sampled_from([[], {}, [{}], "x"]))
    return st.one_of(*choices, *choices, wrong_types)  # mostly the right JSON type


def _nested(kind: str, depth: int) -> Json:
    """``extension`` or ``contained`` nested ``depth`` deep."""
    inner: Json = {"url": "http://example.org/x", "valueString": "deep"}
    if kind == "contained":
        inner = {"resourceType": "Patient", "id": "c0"}
    for level in range(depth):
        if kind == "contained":
            inner = {"resourceType": "Patient", "id": f"c{level + 1}", "contained": [inner]}
        else:
            inner = {"url": "http://example.org/x", "extension": [inner]}
    return [inner]


def _reaches(value: Json, path: Path) -> bool:
    for step in path:
        in_list = isinstance(value, list) and isinstance(step, int) and step < len(value)
        if not (in_list or (isinstance(value, dict) and step in value)):
            return False
        value = value[step]
    return True


def _put(target: Json, path: Path, value: Json) -> Json:
    """Set a copy of ``value`` at ``path`` (strategies hand out one object for every draw);
    returns what was there."""
    for step in path[:-1]:
        target = target[step]
    previous = target[path[-1]]
    target[path[-1]] = copy.deepcopy(value)
    return previous


@st.composite
def resources(draw: st.DrawFn, resource_type: str, types: Sequence[str]) -> dict[str, Json]:
    """A valid ``resource_type`` skeleton with a few values (mostly one, so the rest stays
    valid and it gets as far as it can) made hostile, and maybe deep
    ``extension``/``contained`` nesting or a different ``resourceType``."""
    base = SKELETONS.get(resource_type) or [{"resourceType": resource_type}]
    resource: dict[str, Json] = copy.deepcopy(draw(st.sampled_from(base)))
    paths = _leaves(resource)
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 0])) if paths else 0):
        path = draw(st.sampled_from(paths))
        if _reaches(resource, path):  # unless an earlier change replaced a container on it
            original = _put(resource, path, None)
            _put(resource, path, draw(_replacement(path[-1], original, types)))
    kind = draw(st.sampled_from(["", "", "", "", "extension", "contained"]))
    if kind:
        depth = draw(st.one_of(st.integers(0, 8), st.sampled_from([64, 100, 150, 200, 256, 300])))
        resource[kind] = _nested(kind, depth)
    if draw(st.integers(0, 19)) == 0:
        resource["resourceType"] = draw(st.one_of(st.sampled_from(list(types)), hostile_text))
    return resource
