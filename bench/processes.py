"""Starting, watching and stopping the processes a benchmark run owns.

Why its own module: a benchmark that leaves servers or databases behind poisons the next run on
a shared machine, so every process started here is in its own session and is stopped by its
process group id (never by name), and the database is dropped, also when the run fails.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx


def free_port() -> int:
    """A TCP port nothing listens on right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One process tree (a uvicorn master and its workers), its log and its URL."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    url: str

    def workers(self) -> list[int]:
        """The worker pids: the master's children that run ``spawn_main`` (not the tracker)."""
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        workers = []
        for child in children:
            try:
                cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline:
                workers.append(int(child))
        return workers or [pid]

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL whatever is still there after 10 s."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start(name: str, argv: list[str], env: Mapping[str, str], log: Path, url: str) -> Server:
    """Start ``argv`` in a new session with stdout+stderr to ``log``; wait until ``url`` answers."""
    handle = log.open("wb")
    process = subprocess.Popen(
        argv, env=dict(env), stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    handle.close()
    server = Server(name, process, log, url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.tail()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"{name} did not answer {url} within 60 s:\n{server.tail()}")


def rss_bytes(pid: int) -> int:
    """Resident set size from /proc (0 when the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class RssSampler:
    """Samples every worker's RSS on a thread while a workload runs; keeps the peaks."""

    server: Server
    interval: float = 0.05
    peak_worker: int = 0
    peak_total: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    def _sample(self) -> None:
        sizes = [rss_bytes(pid) for pid in self.server.workers()]
        if sizes:
            self.peak_worker = max(self.peak_worker, max(sizes))
            self.peak_total = max(self.peak_total, sum(sizes))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database name replaced."""
    return admin_url.rsplit("/", 1)[0] + "/" + name


async def create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def analyze(url: str) -> None:
    """Refresh the planner's statistics, as an operator does after a bulk load.

    Autovacuum would get there on its own, minutes later; until it does, the planner takes
    freshly loaded index tables for empty and picks plans that are wrong at any size.
    """
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()
