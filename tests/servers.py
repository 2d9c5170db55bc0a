"""Real ``keyworker`` processes for end-to-end tests: the console script run as an operator
runs it, and ``serve`` started on a free loopback port and stopped afterwards."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT = 20.0


def environment(database_url: str) -> dict[str, str]:
    """This process's environment pointed at ``database_url``, with no public base URL set."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KEYWORKER_PUBLIC_BASE_URL", "KEYWORKER_DATABASE_URL")
    }
    env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def keyworker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script (as ``python -m service.cli``) to completion."""
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def keyworker_ok(env: dict[str, str], *args: str) -> str:
    done = keyworker(env, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _wait_until_healthy(process: subprocess.Popen[bytes], root: str, stderr: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last = "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the server exited with {process.returncode} before answering /healthz:\n"
                + stderr.read_text(errors="replace")
            )
        try:
            answer = httpx.get(f"{root}/healthz", timeout=1.0)
            if answer.status_code == 200:
                return
            last = f"{answer.status_code} {answer.text}"
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.1)
    pytest.fail(
        f"the server did not answer /healthz within {STARTUP_TIMEOUT:.0f} s ({last}):\n"
        + stderr.read_text(errors="replace")
    )


@contextmanager
def serving(env: dict[str, str], logs: Path, *flags: str) -> Iterator[tuple[str, Path]]:
    """``keyworker serve`` on a free port: yields (root URL, path of its stderr log)."""
    port = free_port()
    root = f"http://127.0.0.1:{port}"
    stderr_path = logs / "server.stderr"
    with stderr_path.open("wb") as stderr_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), *flags],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr_file,
        )
    try:
        _wait_until_healthy(process, root, stderr_path)
        yield root, stderr_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
