"""Generated hostile and careless requests against the real server on PostgreSQL: none may
answer ``5xx``, break the connection, or refuse without an OperationOutcome.

The server runs as ``make run`` serves it (auth on, a token from its own authorization server
for the demo client, ``system/*.cruds``), on a fresh PostgreSQL database loaded with the search
tests' data set, so writes reach stored resources. Every request goes over one keep-alive
connection, as an integration engine's pool would send them, so a response that leaves the
connection broken fails the request after it.

The run is bounded by wall time: ``FUZZ_SECONDS`` (90 by default, for CI) of rounds of
``_ROUND`` examples each. ``make fuzz`` runs it for longer. A failure names the request (its
shrunk form, from Hypothesis), the response and what the server logged while answering it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests.fuzz_requests import Call, Served, calls, short
from tests.servers import PROJECT_ROOT, environment, keyworker_ok, serving
from tests.test_end_to_end import database
from tests.test_search_seed import FHIR, SEED

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.fuzz,
    pytest.mark.parametrize("backend", ["postgresql"], scope="module"),
]
__all__ = ["database"]  # the fresh PostgreSQL database the server runs on

FUZZ_SECONDS = float(os.environ.get("FUZZ_SECONDS", "90"))
_ROUND = 100  # examples per Hypothesis run; runs repeat until the time is spent
_TIMEOUT = httpx.Timeout(30.0)
_TOKEN_REFRESH_S = 240  # the built-in server's tokens live 300 s
SERVICE = PROJECT_ROOT / "service"
_CHAINING = ("Traceback", "The above exception", "During handling")


class DemoToken(httpx.Auth):
    """A ``client_credentials`` token for the demo client, fetched again before it expires."""

    def __init__(self, root: str, client: dict[str, str]) -> None:
        self.root = root
        self.client = client
        self.token = ""
        self.fetched = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if time.monotonic() - self.fetched > _TOKEN_REFRESH_S:
            issued = httpx.post(
                f"{self.root}/auth/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client["client_id"], self.client["client_secret"]),
            )
            assert issued.status_code == 200, issued.text
            self.token = issued.json()["access_token"]
            self.fetched = time.monotonic()
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@dataclass
class Target:
    """The running server: one keep-alive client to it, and its log."""

    http: httpx.Client
    served: Served
    log: Path
    previous: Call | None = None  # the request before, which a broken connection may owe to

    def send(self, call: Call) -> None:
        """Send ``call``; fail, naming it, on a 5xx, a broken connection or a bare 4xx."""
        logged = self.log.stat().st_size
        before, self.previous = self.previous, call
        try:
            response = self.http.request(
                call.method,
                call.target(),
                headers=[(k.encode(), v.encode("utf-8", "surrogatepass")) for k, v in call.headers],
                content=call.body,
            )
        except httpx.TransportError as error:
            pytest.fail(
                f"{call!r}\n-> {error!r}\non the connection the request before left:\n"
                f"{before!r}\n{self.logged_since(logged)}"
            )
        status = response.status_code
        if status >= 500:
            pytest.fail(
                f"{call!r}\n-> {status} {short(response.text)}\n{self.logged_since(logged)}"
            )
        if status >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            outcome = isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
            assert outcome, f"{call!r}\n-> {status} {short(response.text)}"

    def logged_since(self, offset: int) -> str:
        with self.log.open("rb") as log:
            log.seek(offset)
            return "server log:\n" + summary(log.read().decode("utf-8", "replace"))


def summary(log: str) -> str:
    """The warnings and errors in ``log`` (JSON lines), each traceback cut to the service's own
    frames and the exception lines: what a reader needs to find the fault."""
    shown = []
    for line in log.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            shown.append(line[:300])
            continue
        if record.get("level") in ("DEBUG", "INFO"):
            continue
        shown.append(f"{record.get('level')} {record.get('message')} {record.get('path', '')}")
        for frame in str(record.get("exception", "")).splitlines():
            ours = f'"{SERVICE}' in frame
            raised = frame[:1] not in ("", " ") and not frame.startswith(_CHAINING)
            shown += [f"  {frame.strip()[:300]}"] if ours or raised else []
    return "\n".join(shown)


@pytest.fixture(scope="module")
def target(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    workdir = tmp_path_factory.mktemp("fuzz")
    env = environment(database)
    keyworker_ok(env, "db", "upgrade")
    demo = json.loads(keyworker_ok(env, "clients", "demo", "--file", str(workdir / "demo.json")))
    with serving(env, workdir) as (root, log):
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        auth = DemoToken(root, demo)
        with httpx.Client(
            base_url=f"{root}/fhir", auth=auth, limits=limits, timeout=_TIMEOUT
        ) as http:
            for resource in SEED:
                stored = http.put(
                    f"/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR
                )
                assert stored.status_code == 201, stored.text
            capability = http.get("/metadata").json()
            definitions = http.get("/OperationDefinition").json()
            served = Served.read(capability, [e["resource"] for e in definitions["entry"]])
            yield Target(http, served, log)


def test_no_generated_request_gets_a_server_error(target: Target) -> None:
    deadline = time.monotonic() + FUZZ_SECONDS
    failed: list[Call] = []  # once one fails, shrinking runs whatever the time

    @settings(
        max_examples=_ROUND,
        deadline=None,
        phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(call=calls(target.served))
    def round_of_requests(call: Call) -> None:
        if failed or time.monotonic() < deadline:
            try:
                target.send(call)
            except BaseException:
                failed.append(call)
                raise

    while time.monotonic() < deadline:
        round_of_requests()
    assert target.http.get("/metadata").status_code == 200
