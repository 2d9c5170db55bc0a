"""``make bench``: the whole issue-7 benchmark, end to end, in one process that cleans up.

Fresh PostgreSQL database → migrate → ``keyworker serve --workers 2`` (auth on) → a client and
tokens from the built-in server → load the population over HTTP (workload 5) → start the floor
→ workloads 1-4 with wrk, floor and service interleaved round by round so a noisy neighbour hurts
both alike → workload 6 (gaps, with RSS sampling) → workload 7 (history) → workers' RSS → JSON
under ``bench/results/`` and a Markdown table (printed, and written to ``bench/results/latest.md``).

Exit status: 0 when every workload ran and at most ``--max-failure-ratio`` of its requests failed
(timings never fail a run: the table's pass/fail column is for people); 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from bench import processes, report
from bench.generate import Config, Population
from bench.load import Client, Loader, LoadResult, Tokens, register_client, write_update_targets
from bench.workloads import PageResult, WrkSummary, page_through, wrk

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WRK_WORKLOADS = {"read": "read.lua", "accountable": "accountable.lua", "search": "search.lua"}
WRK_WORKLOADS["crud"] = "crud.lua"
ANALYZE_EVERY_S = 30.0
# The gaps report streams its Bundle: ask for the whole population's in one response (the
# service's default cap, KEYWORKER_GAPS_MAX_COUNT); ``next`` links are still followed.
GAPS_COUNT = 100_000


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Keyworker FHIR benchmark (issue 7)")
    p.add_argument("--patients", type=int, default=100_000, help="population size")
    p.add_argument("--seed", type=int, default=7, help="population seed")
    p.add_argument("--duration", type=float, default=20.0, help="seconds per wrk run")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up per workload")
    p.add_argument("--runs", type=int, default=3, help="wrk runs per workload (median reported)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk threads")
    p.add_argument("--workers", type=int, default=2, help="service and floor worker processes")
    p.add_argument("--auth", choices=["builtin", "none"], default="builtin")
    p.add_argument("--ingest-concurrency", type=int, default=4, help="bundles in flight")
    p.add_argument("--update-targets", type=int, default=1000, help="teams the CRUD mix PUTs")
    p.add_argument(
        "--admin-url",
        default=os.environ.get(
            "KEYWORKER_BENCH_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        ),
        help="PostgreSQL URL allowed to CREATE/DROP DATABASE",
    )
    p.add_argument("--max-failure-ratio", type=float, default=0.01)
    p.add_argument("--results", type=Path, default=RESULTS, help="where JSON and latest.md go")
    p.add_argument("--keep-database", action="store_true", help="do not drop it (debugging)")
    return p.parse_args(argv)


class Run:
    """One benchmark run: owns its servers and its database until ``close()``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="keyworker-bench-"))
        self.targets = self.work / "targets"
        self.targets.mkdir()
        self.database = f"keyworker_bench_{os.getpid()}"
        self.database_url = processes.database_url(args.admin_url, self.database)
        self.bin = Path(sys.executable).parent
        self.servers: list[processes.Server] = []
        self.created = False
        self.data: dict[str, Any] = {}
        self.problems: list[str] = []

    # Set-up ----------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "DATABASE_URL": self.database_url,
            "KEYWORKER_LOG_LEVEL": "WARNING",
            "FLOOR_DATABASE_URL": self.database_url,
        }

    def start_service(self) -> processes.Server:
        asyncio.run(processes.create_database(self.args.admin_url, self.database))
        self.created = True
        subprocess.run([str(self.bin / "keyworker"), "db", "upgrade"], env=self.env(), check=True)
        port = processes.free_port()
        argv = [str(self.bin / "keyworker"), "serve", "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--workers", str(self.args.workers)]
        if self.args.auth == "none":
            argv.append("--insecure-no-auth")
        base = f"http://127.0.0.1:{port}"
        server = processes.start(
            "service", argv, self.env(), self.work / "service.log", f"{base}/fhir/metadata"
        )
        self.servers.append(server)
        return server

    def start_floor(self) -> processes.Server:
        port = processes.free_port()
        argv = [str(self.bin / "python"), "-m", "uvicorn", "bench.floor:app", "--host"]
        argv += ["127.0.0.1", "--port", str(port), "--workers", str(self.args.workers)]
        argv += ["--no-access-log", "--log-level", "warning", "--app-dir", str(ROOT)]
        base = f"http://127.0.0.1:{port}"
        server = processes.start(
            "floor", argv, self.env(), self.work / "floor.log", f"{base}/fhir/CareTeam/none"
        )
        self.servers.append(server)
        return server

    def client(self) -> Client | None:
        if self.args.auth == "none":
            return None
        return register_client(str(self.bin / "keyworker"), self.env())

    # Workloads -------------------------------------------------------------------------------

    def wrk_rounds(self, service: str, floor: str, tokens: Tokens) -> dict[str, WrkSummary]:
        """Warm each workload up, then run floor and workloads 1-4 in rounds; keep every run."""
        a = self.args
        plan = {"floor": ("read.lua", floor), **{k: (v, service) for k, v in WRK_WORKLOADS.items()}}
        summaries = {name: WrkSummary(script) for name, (script, _) in plan.items()}

        def once(name: str, seconds: float, record: bool) -> None:
            script, url = plan[name]
            token = None if name == "floor" else tokens.fresh()
            return_run = wrk(
                script,
                url,
                seconds=seconds,
                connections=a.connections,
                threads=a.threads,
                targets=self.targets,
                token=token,
            )
            if record:
                summaries[name].runs.append(return_run)
                self.log(
                    f"  {name:12s} {return_run.rps:9.1f} req/s  p50 {return_run.p50_ms:7.2f} ms"
                    f"  p99 {return_run.p99_ms:7.2f} ms  failed {return_run.failed}"
                    + (f"  first: {return_run.first_error[:160]}" if return_run.failed else "")
                )

        for name in plan:
            try:
                if a.warmup > 0:
                    once(name, a.warmup, record=False)
            except Exception as error:
                summaries[name].error = str(error)[:400]
        for round_number in range(a.runs):
            self.log(f"round {round_number + 1}/{a.runs}")
            for name in plan:
                if summaries[name].error:
                    continue
                try:
                    once(name, a.duration, record=True)
                except Exception as error:
                    summaries[name].error = str(error)[:400]
        return summaries

    async def load_keeping_statistics(self, loader: Loader, population: Population) -> LoadResult:
        """The load, with an ANALYZE every ``ANALYZE_EVERY_S`` while it runs.

        A stand-in for autovacuum, which production PostgreSQL runs and this machine's does
        not (``autovacuum = off``): without statistics the planner takes the growing tables
        for empty, and plans for them go bad as the load goes on.
        """

        async def keep_statistics() -> None:
            while True:
                await asyncio.sleep(ANALYZE_EVERY_S)
                await processes.analyze(self.database_url)

        keeper = asyncio.create_task(keep_statistics())
        try:
            return await loader.load(population)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)

    def execute(self) -> None:
        a = self.args
        started = datetime.datetime.now(datetime.UTC)
        config = Config(a.patients, a.seed)
        population = Population(config)
        meta: dict[str, Any] = {
            "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "patients": a.patients,
            "seed": a.seed,
            "duration": a.duration,
            "warmup": a.warmup,
            "runs": a.runs,
            "connections": a.connections,
            "threads": a.threads,
            "workers": a.workers,
            "auth": a.auth,
            "cpus": os.cpu_count(),
            "resources": 0,
            "git": _git_revision(),
        }
        self.data["meta"] = meta
        self.log(f"database {self.database}; starting the service (auth {a.auth})")
        service = self.start_service()
        fhir = service.url.removesuffix("/metadata")
        tokens = Tokens(fhir.removesuffix("/fhir"), self.client())

        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
        self.log(f"loading {a.patients:,} patients through transaction bundles")
        try:
            loader = Loader(fhir, tokens, self.targets, a.ingest_concurrency)
            loaded = asyncio.run(self.load_keeping_statistics(loader, population))
        except Exception as error:
            self.data["ingest"] = {"error": str(error)[:400]}
            raise
        meta["resources"] = loaded.resources
        meta["population"] = asdict(population.stats)
        self.data["ingest"] = {
            **asdict(loaded),
            "resources_per_second": round(loaded.resources_per_second, 1),
        }
        self.log(
            f"ingest: {loaded.resources:,} resources in {loaded.seconds:.1f} s "
            f"= {loaded.resources_per_second:,.0f}/s"
        )
        asyncio.run(processes.analyze(self.database_url))
        updates = asyncio.run(
            write_update_targets(fhir, tokens, self.targets, a.update_targets, a.seed)
        )
        self.log(f"{updates} update targets fetched; starting the floor")
        floor = self.start_floor()

        summaries = self.wrk_rounds(fhir, floor.url.split("/fhir")[0], tokens)
        for name, summary in summaries.items():
            self.data[name] = summary.to_json()

        self.log("workload 6: $accountability-gaps over everything")
        gaps = page_through(
            f"{fhir}/$accountability-gaps?_count={GAPS_COUNT}", tokens.headers, service
        )
        self.data["gaps"] = _page_json(gaps)
        self.log(f"  {gaps.entries:,} issues in {gaps.seconds:.2f} s {gaps.error}")

        self.log("workload 7: _history?_since= for everything")
        instant = quote(since.strftime("%Y-%m-%dT%H:%M:%SZ"), safe="")
        history = page_through(
            f"{fhir}/_history?_since={instant}&_count=1000", tokens.headers, service
        )
        self.data["history"] = _page_json(history)
        self.log(f"  {history.entries:,} entries in {history.seconds:.2f} s {history.error}")

        self.data["workers_rss_end"] = [processes.rss_bytes(p) for p in service.workers()]
        self.data["service_log_tail"] = service.tail(20)

    def verdict(self) -> list[str]:
        """Why this run must fail: a workload that did not run, or too many failed requests."""
        problems = list(self.problems)
        for name in ("floor", *WRK_WORKLOADS):
            summary = self.data.get(name)
            if summary is None:
                problems.append(f"{name}: did not run")
            elif summary["error"] or not summary["requests"]:
                problems.append(f"{name}: could not run: {summary['error']}")
            elif summary["failures"] > self.args.max_failure_ratio * summary["requests"]:
                problems.append(f"{name}: {summary['failures']} of {summary['requests']} failed")
            elif summary["failures"]:
                print(f"WARNING: {name}: {summary['failures']} non-2xx responses", file=sys.stderr)
        for name in ("gaps", "history"):
            result = self.data.get(name)
            if result is None or result.get("error"):
                problems.append(f"{name}: {'did not run' if result is None else result['error']}")
        return problems

    def close(self) -> None:
        for server in reversed(self.servers):
            server.stop()
        if self.created and not self.args.keep_database:
            try:
                asyncio.run(processes.drop_database(self.args.admin_url, self.database))
            except Exception as error:
                print(f"could not drop {self.database}: {error}", file=sys.stderr)
        shutil.rmtree(self.work, ignore_errors=True)


def _page_json(result: PageResult) -> dict[str, Any]:
    return {**asdict(result), "per_second": round(result.per_second, 1)}


def _git_revision() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True)
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def write(results: Path, data: dict[str, Any]) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    stamp = data["meta"]["started"].replace(":", "").replace("-", "")
    path = results / f"{stamp}-{data['meta']['patients']}.json"
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    (results / "latest.md").write_text(report.markdown(data))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 1
    if args.duration > 240 and args.auth == "builtin":
        print("--duration over 240 s would outlive a 300 s access token", file=sys.stderr)
        return 1
    run = Run(args)
    failed = False
    try:
        run.execute()
    except Exception:
        traceback.print_exc()
        for server in run.servers:
            print(f"--- {server.name} log (tail) ---\n{server.tail()}", file=sys.stderr)
        run.problems.append("the run stopped early (traceback above)")
        failed = True
    finally:
        run.close()
    if "meta" in run.data:
        path = write(args.results, run.data)
        print()
        print(report.markdown(run.data))
        print(f"results: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    problems = run.verdict()
    if problems:
        print("\nBENCHMARK FAILED:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
