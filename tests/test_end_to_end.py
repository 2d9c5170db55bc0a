"""End to end: the real ``keyworker serve`` process, driven by a third-party FHIR client.

The server is started exactly as an operator would start it (``python -m service.cli serve
--insecure-no-auth``) on a freshly migrated database, once on SQLite and once on its own
fresh PostgreSQL database, and spoken to over TCP with ``fhirpy`` (and ``httpx`` where the
headers matter). ``KEYWORKER_PUBLIC_BASE_URL`` is unset, so the base URL the server
announces is its default ``http://HOST:PORT/fhir``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhirpy import AsyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, ResourceNotFound

from tests.conftest import POSTGRES_ADMIN_URL, admin
from tests.servers import environment, keyworker_ok, serving

pytestmark = pytest.mark.e2e

ROLES = "https://keyworker-fhir.org/fhir/CodeSystem/keyworking-role"
INSECURE_HEADER = "X-Keyworker-Insecure"


@dataclass(frozen=True)
class Server:
    url: str  # the FHIR base, http://127.0.0.1:PORT/fhir
    root: str  # http://127.0.0.1:PORT
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on its own loop in its own thread (the test loop is not disturbed)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(scope="module")
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, empty database URL of its own (plain form, as an operator would write it).

    Parametrised by conftest's ``backend``, so an unreachable PostgreSQL is handled once, there:
    reported as skipped outside CI, a failure under ``CI=true``.
    """
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'keyworker.sqlite3'}"
        return
    name = f"keyworker_e2e_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    _run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("+asyncpg", "") + f"/{name}"
    finally:
        _run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def server(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = environment(database)
    keyworker_ok(env, "db", "upgrade")
    with serving(env, tmp_path_factory.mktemp("e2e-logs"), "--insecure-no-auth") as running:
        root, stderr_path = running
        yield Server(f"{root}/fhir", root, stderr_path)


def _coding(code: str) -> dict[str, Any]:
    return {"coding": [{"system": ROLES, "code": code}]}


async def test_keyworking_arrangement_round_trip(server: Server) -> None:
    fhir = AsyncFHIRClient(server.url)

    patient = fhir.resource(
        "Patient",
        name=[{"family": "Okafor", "given": ["Amara"]}],
        gender="female",
        birthDate="1961-05-04",
    )
    await patient.save()
    practitioner = fhir.resource(
        "Practitioner", name=[{"family": "Patel", "given": ["Ravi"], "prefix": ["Dr"]}]
    )
    await practitioner.save()
    role = fhir.resource(
        "PractitionerRole",
        active=True,
        practitioner=practitioner.to_reference(),
        telecom=[{"system": "phone", "value": "01632 960123", "use": "work"}],
    )
    await role.save()
    assert patient.id and practitioner.id and role.id

    team = fhir.resource(
        "CareTeam",
        status="active",
        name="Keyworking for Amara Okafor",
        subject=patient.to_reference(),
        period={"start": "2024-01-01"},
        participant=[
            {
                "role": [_coding("accountable-professional")],
                "member": practitioner.to_reference(),
                "period": {"start": "2024-01-01"},
            },
            {
                "role": [_coding("keyworker")],
                "member": role.to_reference(),
                "period": {"start": "2024-02-01"},
            },
        ],
    )
    await team.save()
    assert team.id
    assert team["meta"]["versionId"] == "1"

    read = await fhir.reference("CareTeam", team.id).to_resource()
    assert read["subject"]["reference"] == f"Patient/{patient.id}"
    assert [p["member"]["reference"] for p in read["participant"]] == [
        f"Practitioner/{practitioner.id}",
        f"PractitionerRole/{role.id}",
    ]
    assert read["meta"]["versionId"] == "1"

    read["participant"][1]["period"]["end"] = "2025-01-31"
    read["name"] = "Keyworking for Amara Okafor (rotated yearly)"
    await read.save()
    assert read["meta"]["versionId"] == "2"
    again = await fhir.reference("CareTeam", team.id).to_resource()
    assert again["meta"]["versionId"] == "2"
    assert again["participant"][1]["period"]["end"] == "2025-01-31"

    # An update made against version 1 is refused: someone else already wrote version 2.
    stale = AsyncFHIRClient(server.url, extra_headers={"If-Match": 'W/"1"'})
    outdated = stale.resource("CareTeam", **{**dict(again), "name": "Stale edit"})
    with pytest.raises(MultipleResourcesFound) as refused:  # fhirpy's name for any 412
        await outdated.save()
    assert "OperationOutcome" in str(refused.value)
    async with httpx.AsyncClient(base_url=server.url) as raw:
        answer = await raw.put(
            f"/CareTeam/{team.id}",
            json={**dict(again), "name": "Stale edit"},
            headers={"Content-Type": "application/fhir+json", "If-Match": 'W/"1"'},
        )
        assert answer.status_code == 412, answer.text
        current = await raw.get(f"/CareTeam/{team.id}")
        assert current.json()["meta"]["versionId"] == "2"
        assert current.json()["name"] == "Keyworking for Amara Okafor (rotated yearly)"

    await again.delete()
    with pytest.raises(ResourceNotFound) as gone:
        await fhir.reference("CareTeam", team.id).to_resource()
    assert '"deleted"' in str(gone.value)  # the outcome's issue code for 410
    async with httpx.AsyncClient(base_url=server.url) as raw:
        assert (await raw.get(f"/CareTeam/{team.id}")).status_code == 410

    history = await fhir.execute(f"CareTeam/{team.id}/_history", method="get")
    assert history["resourceType"] == "Bundle"
    assert history["type"] == "history"
    entries = history["entry"]
    assert len(entries) == 3
    assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert entries[1]["resource"]["meta"]["versionId"] == "2"
    assert entries[2]["resource"]["meta"]["versionId"] == "1"
    for entry in entries:
        assert entry["fullUrl"].startswith(f"{server.url}/CareTeam/{team.id}"), entry

    # The people the arrangement named are untouched by its deletion.
    assert (await fhir.reference("Patient", patient.id).to_resource())["id"] == patient.id
    assert (await fhir.reference("PractitionerRole", role.id).to_resource())["id"] == role.id


async def test_insecure_mode_is_announced(server: Server) -> None:
    assert "INSECURE" in server.stderr()
    async with httpx.AsyncClient(base_url=server.root) as raw:
        created = await raw.post(
            "/fhir/Patient",
            json={"resourceType": "Patient", "name": [{"family": "Header"}]},
            headers={"Content-Type": "application/fhir+json"},
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        responses = [
            created,
            await raw.get("/healthz"),
            await raw.get("/readyz"),
            await raw.get("/fhir/metadata"),
            await raw.get(f"/fhir/Patient/{pid}"),
            await raw.get(f"/fhir/Patient/{pid}/_history"),
            await raw.get("/fhir/Patient/no-such-patient"),
            await raw.get("/fhir/Spaceship/1"),
            await raw.post("/fhir/Patient", content=b"{", headers={"Content-Type": "text/plain"}),
            await raw.delete(f"/fhir/Patient/{pid}"),
        ]
    for response in responses:
        assert INSECURE_HEADER in response.headers, (
            response.request.method,
            response.request.url,
            response.status_code,
        )
