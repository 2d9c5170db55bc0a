"""Every FHIR response body the suite receives is valid R4, or the test that received it fails.

A pytest plugin (``pytest_plugins`` in conftest.py). Every body received through any client
(tests/response_taps.py) whose content type is FHIR JSON, or plain JSON carrying a
``resourceType``, goes to the independent validator (tests/r4_validator.py): read results,
searches, Bundles, OperationOutcomes, CapabilityStatements alike. The OAuth and discovery
endpoints answer plain JSON with no ``resourceType`` and are not FHIR, so they are not judged.

The validator is configured as a strict receiver: every error of the R4 StructureDefinitions
(cardinality, types, formats, empty values, unknown elements, the error-severity invariants)
rejects a body; warnings do not. A profile named in ``meta.profile`` or an extension URL it has
no definition for is not judged against anything, as a receiver without that IG would: the
body is checked against base R4 only.

A rejected body fails the test that received it, at the end of the test's call (or of its
teardown, for what fixtures receive then), naming the request and the validator's issues. The
terminal summary counts what was checked, the time it took, and each distinct rejection.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.r4_validator import R4Validator, ValidatorUnavailable
from tests.response_taps import Received, tap

FHIR_JSON = {"application/fhir+json", "application/json+fhir"}
_INDEX = re.compile(r"\[\d+\]")
_SHOWN_BODY = 400


@dataclass(frozen=True)
class Rejection:
    """A FHIR body the validator refused, who received it, and why."""

    received: Received
    issues: list[dict[str, Any]]
    test: str

    def describe(self) -> str:
        received = self.received
        lines = [f"{received.method} {received.url} -> {received.status}"]
        lines += [
            f"  {i['severity']} at {i['path'] or '(body)'}: {i['message']}" for i in self.issues
        ]
        lines.append("  body: " + received.body[:_SHOWN_BODY].decode(errors="replace"))
        return "\n".join(lines)

    def kinds(self) -> set[tuple[str, str]]:
        """Each issue as (path without indexes, message): one to-do per rule and place."""
        return {(_INDEX.sub("[]", str(i["path"])), str(i["message"])) for i in self.issues}


def is_fhir(received: Received) -> bool:
    """Whether the body claims to be FHIR JSON: by its content type, or a ``resourceType``."""
    if not received.body.strip():
        return False
    media_type = received.content_type.split(";", 1)[0].strip().lower()
    if media_type in FHIR_JSON:
        return True
    if media_type != "application/json":
        return False
    try:
        document = json.loads(received.body)
    except ValueError:
        return False
    return isinstance(document, dict) and "resourceType" in document


class ResponseValidation:
    """The plugin: validates what the taps see, fails the test, reports the session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Rejection] = []
        self._test = "(outside any test)"
        self.rejected: list[Rejection] = []
        self.checked = 0
        self.seconds = 0.0
        self._validator: R4Validator | None = None
        self._unavailable = ""
        try:
            self._validator = R4Validator()
        except ValidatorUnavailable as problem:
            self._unavailable = str(problem)
        self._untap = tap(self.seen)

    def _issues(self, body: bytes) -> list[dict[str, Any]]:
        if self._validator is None:
            return [{"severity": "fatal", "path": "", "message": self._unavailable}]
        try:
            return self._validator.issues(body)
        except ValidatorUnavailable as problem:
            self._validator.close()
            self._validator, self._unavailable = None, str(problem)
            return self._issues(body)

    def seen(self, received: Received) -> None:
        if not is_fhir(received):
            return
        started = time.perf_counter()
        issues = self._issues(received.body)
        with self._lock:
            self.seconds += time.perf_counter() - started
            self.checked += 1
            if issues:
                rejection = Rejection(received, issues, self._test)
                self._pending.append(rejection)
                self.rejected.append(rejection)

    def _settle(self) -> None:
        with self._lock:
            rejections, self._pending = self._pending, []
        if rejections:
            pytest.fail(
                f"{len(rejections)} FHIR response(s) received are not valid R4 "
                "(the independent validator, tests/validation.py):\n"
                + "\n".join(r.describe() for r in rejections),
                pytrace=False,
            )

    def pytest_runtest_logstart(self, nodeid: str) -> None:
        self._test = nodeid

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self) -> Generator[None, None, None]:
        yield  # a test that failed on its own keeps its failure; teardown adds these
        self._settle()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self) -> Generator[None, None, None]:
        yield
        self._settle()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        validator = self._validator
        terminalreporter.write_sep("-", "FHIR R4 validation of every response received")
        terminalreporter.write_line(
            f"@medplum/core {validator.version if validator else 'unavailable'}: "
            f"{self.checked} response bodies checked in {self.seconds:.1f} s (of which "
            f"{validator.waited if validator else 0:.1f} s waiting for it to start), "
            f"{len(self.rejected)} rejected",
            red=bool(self.rejected),
        )
        kinds: Counter[tuple[str, str]] = Counter()
        example: dict[tuple[str, str], Rejection] = {}
        for rejection in self.rejected:
            for kind in rejection.kinds():
                kinds[kind] += 1
                example.setdefault(kind, rejection)
        for (path, message), count in kinds.most_common():
            first = example[(path, message)]
            terminalreporter.write_line(
                f"  {count} x {path or '(body)'}: {message}  "
                f"(first: {first.received.method} {first.received.url} in {first.test})"
            )

    def pytest_unconfigure(self) -> None:
        self._untap()
        if self._validator is not None:
            self._validator.close()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(ResponseValidation(), "fhir-r4-validation")
