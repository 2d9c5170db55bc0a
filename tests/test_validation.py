"""The suite's own R4 check (tests/validation.py): a test that receives an invalid FHIR body
fails, whichever client received it, naming the request and the rule; valid bodies (absolute
references, extensions and profiles the validator has no definition of) and plain OAuth JSON
pass.

Run as a pytest session of its own (a subprocess), so the failures it provokes are its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.servers import PROJECT_ROOT

SESSION = """
import asyncio
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import aiohttp
import httpx
import pytest
import requests

FHIR = "application/fhir+json"
BODIES = {
    "/patient": (FHIR, {"resourceType": "Patient", "id": "p1", "active": True}),
    "/extended": (FHIR, {
        "resourceType": "Patient",
        "meta": {"profile": ["http://example.org/StructureDefinition/not-known-here"]},
        "extension": [{"url": "http://example.org/not-known-here", "valueString": "x"}],
        "generalPractitioner": [
            {"reference": "https://gp.example/fhir/Practitioner/1"},
            {"reference": "https://gp.example/directory/dr-who"},
        ],
    }),
    "/token": ("application/json", {"access_token": "x", "token_type": "Bearer"}),
    "/empty-entry": ("application/json", {"resourceType": "Bundle", "type": "searchset",
                                          "entry": []}),
    "/gender": (FHIR, {"resourceType": "Patient", "gender": "cat"}),
    "/ctm-1": (FHIR, {"resourceType": "CareTeam", "participant": [{
        "member": {"reference": "PractitionerRole/r1"},
        "onBehalfOf": {"reference": "Organization/o1"},
    }]}),
    "/not-a-resource": (FHIR, {"hello": "world"}),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        content_type, body = BODIES[self.path]
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="session")
def root():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_valid_bodies_pass(root):
    for path in ("/patient", "/extended", "/token"):
        assert httpx.get(root + path).status_code == 200


def test_httpx_empty_array(root):
    assert httpx.get(root + "/empty-entry").status_code == 200


def test_async_httpx_invariant(root):
    async def fetch():
        async with httpx.AsyncClient() as client:
            return await client.get(root + "/ctm-1")

    assert asyncio.run(fetch()).status_code == 200


def test_required_binding(root):
    assert httpx.get(root + "/gender").status_code == 200


def test_aiohttp_not_a_resource(root):
    async def fetch():
        async with aiohttp.ClientSession() as session:
            async with session.get(root + "/not-a-resource") as response:
                return await response.json(content_type=None)

    assert asyncio.run(fetch()) == {"hello": "world"}


def test_requests_empty_array(root):
    assert requests.get(root + "/empty-entry").status_code == 200
"""


def test_invalid_bodies_fail_the_test_that_received_them(tmp_path: Path) -> None:
    (tmp_path / "test_session.py").write_text(SESSION)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "COLUMNS": "200"}
    plugins = ["-p", "tests.validation", "-p", "no:cacheprovider"]
    done = subprocess.run(
        [sys.executable, "-m", "pytest", *plugins, "-q", "-rf", "test_session.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "5 failed, 1 passed" in out, out
    tests = (
        "httpx_empty_array",
        "async_httpx_invariant",
        "required_binding",
        "aiohttp_not_a_resource",
    )
    for test in tests:
        assert f"FAILED test_session.py::test_{test} - Failed: 1 FHIR response(s)" in out, out
    assert "FAILED test_session.py::test_requests_empty_array - Failed: 1 FHIR" in out, out
    assert "/empty-entry -> 200\n  error at Bundle.entry" in out, out
    assert "/ctm-1 -> 200\n  error at CareTeam.participant" in out, out
    assert "ctm-1" in out, out
    assert '/gender -> 200\n  error at Patient.gender: Code "cat" is not in the required' in out, (
        out
    )
    assert "/not-a-resource -> 200\n  fatal at (body): not a FHIR resource" in out, out
    assert "7 response bodies checked" in out, out  # /token is not FHIR: not checked
