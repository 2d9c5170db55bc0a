"""End to end with authentication on, as ``make run`` serves it: the real ``keyworker serve``
process (no ``--insecure-no-auth``), the demo client registered by the console script, a
token from ``/auth/token`` over TCP, and no development-mode header anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_end_to_end import (
    INSECURE_HEADER,
    PROJECT_ROOT,
    _environment,
    _free_port,
    _wait_until_healthy,
)

pytestmark = pytest.mark.e2e


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """(server root, demo client) of a freshly migrated SQLite server with auth on."""
    workdir = tmp_path_factory.mktemp("e2e-auth")
    env = _environment(f"sqlite:///{workdir / 'keyworker.sqlite3'}")
    _cli(env, "db", "upgrade")
    _cli(env, "load-demo", "--if-empty")
    demo = json.loads(_cli(env, "clients", "demo", "--file", str(workdir / "demo.json")))
    port = _free_port()
    root = f"http://127.0.0.1:{port}"
    stderr_path: Path = workdir / "server.stderr"
    with stderr_path.open("wb") as stderr_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
        )
    try:
        _wait_until_healthy(process, root, stderr_path)
        yield root, demo
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_make_run_flow_needs_a_token_and_is_not_insecure(
    secured: tuple[str, dict[str, str]],
) -> None:
    root, demo = secured
    refused = httpx.get(f"{root}/fhir/CareTeam/ct-amara-okafor")
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
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
