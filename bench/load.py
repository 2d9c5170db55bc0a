"""Access tokens, and loading the population through the service's transaction endpoint.

Why over HTTP: issue 7 makes loading the ingest measurement (workload 5), so it must go through
exactly what an integration engine would use: 100-entry transaction Bundles with bearer tokens.
The loader also writes the target files the wrk scripts pick from (ids and NHS numbers that
really exist), because only the service knows the ids it assigned.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import time
from asyncio import FIRST_COMPLETED
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.generate import TEAM_NAME, Batch, Population

SCOPE = "system/*.cruds"
FHIR_JSON = "application/fhir+json"


@dataclass
class Client:
    client_id: str
    client_secret: str


def register_client(keyworker: str, env: dict[str, str]) -> Client:
    """``keyworker clients add``: a confidential client for the benchmark, as in production."""
    argv = [keyworker, "clients", "add", "--name", "bench", "--scopes", SCOPE, "--secret"]
    done = subprocess.run([*argv, "--json"], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            "could not register a client with `keyworker clients add` (is the built-in "
            f"authorization server there? use --auth none without it):\n{done.stderr[-2000:]}"
        )
    for line in reversed(done.stdout.splitlines()):
        if line.strip().startswith("{"):
            answer = json.loads(line)
            return Client(answer["client_id"], answer["client_secret"])
    raise RuntimeError(f"`keyworker clients add --json` printed no JSON:\n{done.stdout[-2000:]}")


@dataclass
class Tokens:
    """Hands out a bearer token, fetching a fresh one before the current one expires.

    Tokens live at most 300 s; a 100,000-patient load or a long wrk run outlives one, so every
    caller asks for ``current()`` at each step rather than keeping a token.
    """

    server: str
    client: Client | None
    margin: float = 60.0
    _token: str = ""
    _expires: float = 0.0
    fetched: int = 0

    def current(self) -> str | None:
        if self.client is None:
            return None
        if time.monotonic() < self._expires - self.margin:
            return self._token
        return self.fresh()

    def fresh(self) -> str | None:
        """A new token now (wrk runs get one each, so none expires mid-run)."""
        if self.client is None:
            return None
        response = httpx.post(
            f"{self.server}/auth/token",
            auth=(self.client.client_id, self.client.client_secret),
            data={"grant_type": "client_credentials", "scope": SCOPE},
            timeout=30,
        )
        if response.status_code != 200:
            raise RuntimeError(f"token request failed: {response.status_code} {response.text}")
        answer = response.json()
        self._token = str(answer["access_token"])
        self._expires = time.monotonic() + float(answer.get("expires_in", 300))
        self.fetched += 1
        return self._token

    def headers(self) -> dict[str, str]:
        token = self.current()
        return {"Authorization": f"Bearer {token}"} if token else {}


@dataclass
class LoadResult:
    """Workload 5: what was sent, how long it took, and per-phase timings."""

    resources: int = 0
    bundles: int = 0
    seconds: float = 0.0
    phases: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def resources_per_second(self) -> float:
        return self.resources / self.seconds if self.seconds else 0.0


def _id_from_location(location: str) -> str:
    # "CareTeam/abc/_history/1" or an absolute URL ending the same way.
    parts = location.split("/_history/")[0].rstrip("/").split("/")
    return parts[-1]


class Loader:
    """Sends a Population's bundles with bounded concurrency, phase by phase."""

    def __init__(self, fhir: str, tokens: Tokens, targets: Path, concurrency: int) -> None:
        self.fhir = fhir
        self.tokens = tokens
        self.targets = targets
        self.concurrency = concurrency
        self.result = LoadResult()
        self._files = {
            name: (targets / name).open("w")
            for name in ("careteams.txt", "nhs.txt", "patients.txt")
        }

    async def load(self, population: Population) -> LoadResult:
        # A connection per bundle, not a few kept alive: the service's workers share one
        # listening socket, and a handful of keep-alive connections accepted by one worker
        # left the other idle for the whole load (seen: 87% CPU against 0.6%).
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=0)
        async with httpx.AsyncClient(timeout=300, limits=limits) as http:
            started = time.perf_counter()
            phase, phase_started, phase_resources = "", started, 0
            pending: set[asyncio.Task[None]] = set()
            for batch in population.batches():
                if batch.phase != phase:
                    # References point at earlier phases: let each phase commit before the next.
                    await self._drain(pending)
                    self._close_phase(phase, phase_started, phase_resources)
                    phase, phase_started, phase_resources = batch.phase, time.perf_counter(), 0
                while len(pending) >= self.concurrency:
                    done, pending = await asyncio.wait(pending, return_when=FIRST_COMPLETED)
                    for task in done:
                        task.result()  # re-raises a refused bundle
                pending.add(asyncio.create_task(self._send(http, batch)))
                phase_resources += len(batch.bundle["entry"])
                self.result.resources += len(batch.bundle["entry"])
                self.result.bundles += 1
            await self._drain(pending)
            self._close_phase(phase, phase_started, phase_resources)
            self.result.seconds = time.perf_counter() - started
        for handle in self._files.values():
            handle.close()
        (self.targets / "roles.txt").write_text(
            "".join(f"{r}\n" for r in population.keyworker_role_ids)
        )
        return self.result

    @staticmethod
    async def _drain(tasks: set[asyncio.Task[None]]) -> None:
        if tasks:
            for task in tasks:
                await task  # re-raises the first failure
            tasks.clear()

    def _close_phase(self, phase: str, started: float, resources: int) -> None:
        if phase:
            seconds = time.perf_counter() - started
            self.result.phases[phase] = {"resources": resources, "seconds": round(seconds, 3)}

    async def _send(self, http: httpx.AsyncClient, batch: Batch) -> None:
        headers = {"Content-Type": FHIR_JSON, "Prefer": "return=minimal", **self.tokens.headers()}
        response = await http.post(self.fhir, content=orjson.dumps(batch.bundle), headers=headers)
        if response.status_code != 200:
            raise RuntimeError(
                f"transaction bundle ({batch.phase}) refused: {response.status_code} "
                f"{response.text[:2000]}"
            )
        if not batch.nhs:
            return
        entries = response.json()["entry"]
        for index, number in enumerate(batch.nhs):
            patient = _id_from_location(entries[3 * index]["response"]["location"])
            team = _id_from_location(entries[3 * index + 1]["response"]["location"])
            self._files["nhs.txt"].write(f"{number}\n")
            self._files["patients.txt"].write(f"{patient}\n")
            self._files["careteams.txt"].write(f"{team}\n")


async def write_update_targets(
    fhir: str, tokens: Tokens, targets: Path, count: int, seed: int
) -> int:
    """Fetch ``count`` stored CareTeams and write them as PUT bodies for the CRUD mix.

    Each body is the team as stored with ``@REV@`` in its name: the wrk script substitutes a
    random number, so every update really changes the resource and nothing else.
    """
    ids = (targets / "careteams.txt").read_text().split()
    chosen = random.Random(seed).sample(ids, min(count, len(ids)))
    semaphore = asyncio.Semaphore(8)

    async def fetch(http: httpx.AsyncClient, team: str) -> str:
        async with semaphore:
            response = await http.get(f"{fhir}/CareTeam/{team}", headers=tokens.headers())
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        body.pop("meta", None)
        body["name"] = f"{TEAM_NAME} (rev @REV@)"
        return f"{team}\t{orjson.dumps(body).decode()}\n"

    async with httpx.AsyncClient(timeout=60) as http:
        lines = await asyncio.gather(*(fetch(http, team) for team in chosen))
    (targets / "updates.tsv").write_text("".join(lines))
    return len(lines)
