"""Against a real external identity provider: oidc-provider (OpenID Certified), installed
from ``tests/idp/package-lock.json`` and started on 127.0.0.1. The service trusts it through
``KEYWORKER_TRUSTED_ISSUERS``, finds its keys through discovery, and serves its tokens."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.authkit import bearer, mint, secure_client
from tests.conftest import BASE
from tests.servers import free_port

AppFactory = Callable[..., Awaitable[httpx.AsyncClient]]
IDP_DIR = Path(__file__).parent / "idp"


@pytest.fixture(scope="session")
def idp_issuer() -> Iterator[str]:
    """The issuer URL of a running oidc-provider whose tokens are for the test audience."""
    node = shutil.which("node")
    if node is None or not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise pytest.UsageError("Node 20 and `npm ci` in tests/idp are needed: run `make test`")
    process = subprocess.Popen(
        [node, "server.mjs", str(free_port()), BASE],
        cwd=IDP_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("ready "):
            raise RuntimeError(f"oidc-provider did not start: {line!r}")
        yield line.removeprefix("ready ")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


async def _token(issuer: str, client_id: str, scope: str) -> str:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{issuer}/token",
            data={"grant_type": "client_credentials", "scope": scope},
            auth=(client_id, f"{client_id}-secret"),
        )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def _team(patient: str) -> dict[str, object]:
    return {
        "resourceType": "CareTeam",
        "status": "active",
        "subject": {"reference": f"Patient/{patient}"},
    }


async def test_external_idp_tokens_are_served_and_confined(
    app_factory: AppFactory, database_url: str, idp_issuer: str
) -> None:
    client = await secure_client(app_factory, trusted_issuers=idp_issuer)
    admin = bearer(await mint(database_url, "system/*.cruds"))
    for patient in ("idp-patient", "someone-else"):
        body = {"resourceType": "Patient", "id": patient}
        assert (
            await client.put(f"/Patient/{patient}", json=body, headers=admin)
        ).status_code == 201
        team = {**_team(patient), "id": f"ct-{patient}"}
        assert (
            await client.put(f"/CareTeam/ct-{patient}", json=team, headers=admin)
        ).status_code == 201

    backend = bearer(
        await _token(idp_issuer, "backend-service", "system/CareTeam.cruds system/Patient.rs")
    )
    assert len((await client.get("/CareTeam", headers=backend)).json()["entry"]) == 2
    assert (
        await client.post("/CareTeam", json=_team("someone-else"), headers=backend)
    ).status_code == 201
    patient_body = {"resourceType": "Patient", "id": "idp-patient", "active": False}
    assert (
        await client.put("/Patient/idp-patient", json=patient_body, headers=backend)
    ).status_code == 403

    patient_app = bearer(await _token(idp_issuer, "patient-app", "patient/*.rs"))
    listed = (await client.get("/CareTeam", headers=patient_app)).json()
    assert [e["resource"]["id"] for e in listed["entry"]] == ["ct-idp-patient"]
    assert (await client.get("/CareTeam/ct-someone-else", headers=patient_app)).status_code == 404
    assert (
        await client.post("/CareTeam", json=_team("idp-patient"), headers=patient_app)
    ).status_code == 403


async def test_external_idp_token_for_another_audience_or_untrusted_issuer_is_401(
    app_factory: AppFactory, idp_issuer: str
) -> None:
    token = bearer(await _token(idp_issuer, "backend-service", "system/*.rs"))
    elsewhere = await secure_client(
        app_factory, trusted_issuers=idp_issuer, audience="https://other/fhir"
    )
    assert (await elsewhere.get("/Patient", headers=token)).status_code == 401
    untrusted = await secure_client(app_factory)
    response = await untrusted.get("/Patient", headers=token)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
