"""End to end with authentication on, as ``make run`` serves it: the real ``keyworker serve``
process (no ``--insecure-no-auth``), the demo client registered by the console script, a
token from ``/auth/token`` over TCP, and no development-mode header anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.servers import environment, keyworker_ok, serving
from tests.test_end_to_end import INSECURE_HEADER

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """(server root, demo client) of a freshly migrated SQLite server with auth on."""
    workdir = tmp_path_factory.mktemp("e2e-auth")
    env = environment(f"sqlite:///{workdir / 'keyworker.sqlite3'}")
    keyworker_ok(env, "db", "upgrade")
    keyworker_ok(env, "load-demo", "--if-empty")
    demo = json.loads(keyworker_ok(env, "clients", "demo", "--file", str(workdir / "demo.json")))
    with serving(env, workdir) as (root, _):
        yield root, demo


def test_make_run_flow_needs_a_token_and_is_not_insecure(
    secured: tuple[str, dict[str, str]],
) -> None:
    root, demo = secured
    refused = httpx.get(f"{root}/fhir/CareTeam/ct-amara-okafor")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="keyworker"'
    issued = httpx.post(
        f"{root}/auth/token",
        data={"grant_type": "client_credentials"},
        auth=(demo["client_id"], demo["client_secret"]),
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    served = httpx.get(
        f"{root}/fhir/CareTeam/ct-amara-okafor", headers={"Authorization": f"Bearer {token}"}
    )
    assert served.status_code == 200, served.text
    smart = httpx.get(f"{root}/fhir/.well-known/smart-configuration").json()
    assert smart["token_endpoint"] == f"{root}/auth/token"
    for response in (refused, issued, served):
        assert INSECURE_HEADER not in response.headers
