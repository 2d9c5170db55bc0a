"""The official HL7 R4 examples of the served types load unchanged and read back losslessly.

The examples come from the npm package ``hl7.fhir.r4.examples`` (4.0.1, pinned by
``tests/hl7-examples/package-lock.json``, installed by ``make test``). They are loaded as an
integration engine would: by PUT, one at a time, each after the examples it points at. Some
point at hosted records that no example defines (``Patient/100``, ...) and two point at each
other, so they load with ``KEYWORKER_AUTO_CREATE_PLACEHOLDERS=true``, which creates an empty,
tagged placeholder for such a target; without it such a reference is 422 at its element.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.placeholders import TAG

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
DbState = Callable[[], Awaitable[dict[str, int]]]
Key = tuple[str, str]

PACKAGE = Path(__file__).parent / "hl7-examples" / "node_modules" / "hl7.fhir.r4.examples"
SERVED = (
    "CareTeam",
    "CarePlan",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "RelatedPerson",
)
FHIR = {"Content-Type": "application/fhir+json"}
_LOCAL = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/.+)?$")


@cache
def examples() -> tuple[dict[str, Any], ...]:
    """Every example of a served type in the package (files named ``{type}-{id}.json``)."""
    if not (PACKAGE / "package.json").is_file():
        raise pytest.UsageError("`npm ci` in tests/hl7-examples is needed: run `make test`")
    found = (
        json.loads(path.read_text(encoding="utf-8"))
        for rtype in SERVED
        for path in sorted(PACKAGE.glob(f"{rtype}-*.json"))
    )
    return tuple(r for r in found if r.get("resourceType") in SERVED)


def _key(resource: dict[str, Any]) -> Key:
    return resource["resourceType"], resource["id"]


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """(reference, FHIRPath of its Reference element) of every reference in ``node``."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node["reference"], path
        for name, value in node.items():
            yield from _references(value, f"{path}.{name}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _references(item, f"{path}[{index}]")


def hosted_targets(resource: dict[str, Any]) -> list[tuple[Key, str]]:
    """The records of a served type the resource points at (itself excepted), each with the
    element that names it."""
    found = []
    for reference, path in _references(resource, resource["resourceType"]):
        match = _LOCAL.match(reference)
        if match and match["type"] in SERVED and (match["type"], match["id"]) != _key(resource):
            found.append(((match["type"], match["id"]), path))
    return found


def dependency_order(resources: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """Each resource after those it points at; a cycle is broken where it is met."""
    by_key = {_key(r): r for r in resources}
    order: list[dict[str, Any]] = []
    seen: set[Key] = set()

    def visit(key: Key) -> None:
        if key in seen:  # done already, or on the way to it: a cycle, broken here
            return
        seen.add(key)
        for target, _ in hosted_targets(by_key[key]):
            if target in by_key:
                visit(target)
        order.append(by_key[key])

    for key in sorted(by_key):
        visit(key)
    return order


def _without_server_meta(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {
        k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")
    }
    rest = {k: v for k, v in resource.items() if k != "meta"}
    return {**rest, "meta": meta} if meta else rest


async def _put(client: httpx.AsyncClient, resource: dict[str, Any]) -> httpx.Response:
    rtype, rid = _key(resource)
    return await client.put(f"/{rtype}/{rid}", json=resource, headers=FHIR)


async def test_every_example_loads_unchanged_and_reads_back_losslessly(
    app_factory: AppFactory,
) -> None:
    client = await app_factory(auto_create_placeholders=True)
    loaded = dependency_order(examples())
    assert len(loaded) == 67
    assert {r["resourceType"] for r in loaded} == set(SERVED)
    targeted: set[Key] = set()  # what the examples loaded so far point at
    for resource in loaded:
        response = await _put(client, resource)
        expected = 200 if _key(resource) in targeted else 201  # a placeholder, replaced
        assert response.status_code == expected, f"{_key(resource)}: {response.text}"
        targeted.update(target for target, _ in hosted_targets(resource))

    for resource in loaded:
        read = await client.get("/{}/{}".format(*_key(resource)))
        assert read.status_code == 200, read.text
        assert _without_server_meta(read.json()) == _without_server_meta(resource)

    # pat1 and pat2 point at each other: pat2, loaded first, made pat1 a placeholder, which
    # pat1's own PUT replaced (200, version 2, the tag gone as the lossless read shows).
    pat1 = (await client.get("/Patient/pat1")).json()
    assert pat1["meta"]["versionId"] == "2"
    placeholders = sorted(targeted - {_key(r) for r in loaded})
    assert placeholders == [
        ("Patient", "1"),
        ("Patient", "100"),
        ("Practitioner", "13"),
        ("Practitioner", "14"),
        ("Practitioner", "21B"),
    ]
    for rtype, rid in placeholders:
        read = await client.get(f"/{rtype}/{rid}")
        assert read.status_code == 200, read.text
        body = read.json()
        assert set(body) == {"resourceType", "id", "meta"}
        assert body["meta"]["tag"] == [TAG]


async def test_without_placeholders_a_missing_target_is_422_at_its_element(
    client: httpx.AsyncClient, db_state: DbState
) -> None:
    """Loaded the same way with placeholders off (the default), every example whose hosted
    targets are all stored loads, and every other is refused whole, naming its references."""
    stored: set[Key] = set()
    refused: list[Key] = []
    for resource in dependency_order(examples()):
        unresolved = [(t, path) for t, path in hosted_targets(resource) if t not in stored]
        if not unresolved:
            response = await _put(client, resource)
            assert response.status_code == 201, f"{_key(resource)}: {response.text}"
            stored.add(_key(resource))
            continue
        refused.append(_key(resource))
        before = await db_state()
        response = await _put(client, resource)
        assert response.status_code == 422, f"{_key(resource)}: {response.text}"
        issues = response.json()["issue"]
        paths = {path for _, path in unresolved}
        for issue in issues:
            assert issue["code"] == "not-found"
            assert set(issue["expression"]) <= paths, issue
        for (rtype, rid), _ in unresolved:
            assert any(f"{rtype}/{rid}" in i["diagnostics"] for i in issues), (rtype, rid)
        assert await db_state() == before
    assert refused == [  # the rest, 61, loaded
        ("CarePlan", "gpvisit"),
        ("CarePlan", "integrate"),
        ("CarePlan", "preg"),
        ("Patient", "infant-mom"),
        ("Patient", "pat2"),
        ("Patient", "pat1"),
    ]
