"""Running the workloads: wrk for the request/response ones, a pager for the bulk ones.

Why wrk and not a Python client: a Python load generator on the same two cores would be the
bottleneck and would measure itself. wrk is C, cheap per request, and its Lua scripts
(``bench/wrk/``) pick random real targets and count every non-2xx response.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.processes import RssSampler, Server

WRK_DIR = Path(__file__).parent / "wrk"


@dataclass
class WrkRun:
    """One wrk run's figures (latencies in milliseconds)."""

    requests: int
    seconds: float
    ok: int
    failed: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    first_error: str = ""

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@dataclass
class WrkSummary:
    """A workload's runs and their medians; failures are summed, never medianed away."""

    script: str
    runs: list[WrkRun] = field(default_factory=list)
    error: str = ""

    @property
    def ran(self) -> bool:
        return bool(self.runs) and sum(r.requests for r in self.runs) > 0

    @property
    def requests(self) -> int:
        return sum(r.requests for r in self.runs)

    @property
    def failures(self) -> int:
        return sum(r.failed + r.socket_errors for r in self.runs)

    @property
    def failure_ratio(self) -> float:
        return self.failures / self.requests if self.requests else 1.0

    def median(self, name: str) -> float:
        values = [float(getattr(r, name)) for r in self.runs]
        return statistics.median(values) if values else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "error": self.error,
            "rps": round(self.median("rps"), 1),
            "p50_ms": round(self.median("p50_ms"), 3),
            "p90_ms": round(self.median("p90_ms"), 3),
            "p99_ms": round(self.median("p99_ms"), 3),
            "requests": self.requests,
            "failures": self.failures,
            "runs": [{**asdict(r), "rps": round(r.rps, 1)} for r in self.runs],
        }


def wrk(
    script: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int,
    targets: Path,
    token: str | None,
    base: str = "/fhir",
) -> WrkRun:
    """Run wrk once and parse the BENCH_RESULT line its ``done()`` prints."""
    env = {
        **os.environ,
        "BENCH_WRK_DIR": str(WRK_DIR),
        "BENCH_TARGETS": str(targets),
        "BENCH_TOKEN": token or "",
        "BENCH_BASE": base,
    }
    argv = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_DIR / script),
        url,
    ]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=seconds + 120)
    result: dict[str, Any] | None = None
    first_error = ""
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
        elif line.startswith("BENCH_ERROR "):
            first_error = line.removeprefix("BENCH_ERROR ")[:500]
    if done.returncode != 0 or result is None:
        raise RuntimeError(f"wrk {script} failed ({done.returncode}): {done.stderr[-1500:]}")
    latency = result["latency_us"]
    return WrkRun(
        requests=int(result["requests"]),
        seconds=result["duration_us"] / 1e6,
        ok=int(result["ok"]),
        failed=int(result["non2xx"]),
        socket_errors=sum(int(v) for v in result["socket_errors"].values()),
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        first_error=first_error,
    )


@dataclass
class PageResult:
    """A paged bulk read: how many entries, how long, peak RSS, and what went wrong if it did."""

    entries: int = 0
    pages: int = 0
    seconds: float = 0.0
    peak_worker_rss: int = 0
    peak_total_rss: int = 0
    status: int = 0
    error: str = ""
    types: dict[str, int] = field(default_factory=dict)

    @property
    def ran(self) -> bool:
        return not self.error

    @property
    def per_second(self) -> float:
        return self.entries / self.seconds if self.seconds else 0.0


def page_through(
    first_url: str, headers: Callable[[], dict[str, str]], server: Server, limit_s: float = 1800
) -> PageResult:
    """Follow ``next`` links from ``first_url`` to the end, sampling the workers' RSS meanwhile."""
    result = PageResult()
    url: str | None = first_url
    started = time.perf_counter()
    with RssSampler(server) as sampler, httpx.Client(timeout=300) as http:
        while url is not None:
            response = http.get(url, headers={"Accept": "application/fhir+json", **headers()})
            result.status = response.status_code
            if response.status_code != 200:
                result.error = f"{response.status_code} {response.text[:400]}"
                break
            bundle = response.json()
            result.pages += 1
            for entry in bundle.get("entry", []):
                result.entries += 1
                kind = entry.get("resource", {}).get("resourceType", "(deleted)")
                result.types[kind] = result.types.get(kind, 0) + 1
            url = next((x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None)
            if time.perf_counter() - started > limit_s:
                result.error = f"gave up after {limit_s:.0f} s"
                break
        result.seconds = time.perf_counter() - started
    result.peak_worker_rss = sampler.peak_worker
    result.peak_total_rss = sampler.peak_total
    return result
