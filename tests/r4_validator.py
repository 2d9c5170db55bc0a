"""The independent R4 validator: @medplum/core's ``validateResource`` in one long-lived Node
process (tests/validator/validate.mjs, installed from its lock file by ``make test``).

One process for the whole session, spoken to a line at a time, so that checking a response
costs the validation itself and not a Node start. Started as soon as the session starts, so
that loading the R4 definitions overlaps collection; waited for on first use.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

VALIDATOR_DIR = Path(__file__).parent / "validator"
INSTALLED = VALIDATOR_DIR / "node_modules" / "@medplum" / "core"


class ValidatorUnavailable(RuntimeError):
    """The validator could not be started or stopped answering."""


class R4Validator:
    """Issues an R4 receiver would raise about one JSON document; none when it is valid."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None or not INSTALLED.is_dir():
            raise ValidatorUnavailable(
                "Node 20 and `npm ci` in tests/validator are needed: run `make test`"
            )
        # Kept for the process's whole life (closed in close()): what it said if it stops.
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(
            [node, "validate.mjs"],
            cwd=VALIDATOR_DIR,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._lock = threading.Lock()  # one question and its answer at a time
        self._ready = False
        self.version = str(json.loads((INSTALLED / "package.json").read_bytes())["version"])
        self.waited = 0.0  # seconds the first question waited for the definitions to load

    def _answer(self) -> bytes:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self._stderr.seek(0)
            problem = self._stderr.read().decode(errors="replace")
            raise ValidatorUnavailable(f"the validator stopped: {problem.strip()[-2000:]}")
        return line

    def issues(self, document: bytes) -> list[dict[str, Any]]:
        """The validator's issues with ``document`` (one JSON text): severity, path, message."""
        assert self._process.stdin is not None
        # JSON has no raw line break inside a string, so outside strings one is only space.
        line = document.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n"
        with self._lock:
            if not self._ready:
                waiting = time.perf_counter()
                ready = self._answer()
                assert ready == b"ready\n", ready
                self.waited = time.perf_counter() - waiting
                self._ready = True
            try:
                self._process.stdin.write(line)
                self._process.stdin.flush()
            except BrokenPipeError:
                self._answer()  # raises with what the validator said before it stopped
            answer = self._answer()
        found: list[dict[str, Any]] = json.loads(answer)
        return found

    def close(self) -> None:
        if self._process.stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # it may have stopped already
                self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._stderr.close()
