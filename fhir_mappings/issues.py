"""A problem found in a resource, located by a FHIRPath expression.

Shared by the domain (which finds problems) and the service (which reports them in an
OperationOutcome), so both speak of the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Issue:
    """One ``OperationOutcome.issue``: what went wrong, and where."""

    diagnostics: str
    code: str = "invalid"
    severity: str = "error"
    expression: Sequence[str] = field(default_factory=tuple)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "severity": self.severity,
            "code": self.code,
            "diagnostics": _r4_string(self.diagnostics),
        }
        located = [_r4_string(e) for e in self.expression if e.strip()]
        if located:  # a blank name (``?=x``) locates nothing, and is no R4 string
            out["expression"] = located
        return out


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _r4_string(text: str) -> str:
    """Text an issue quotes from a request (a parameter's name, a value) as an R4 string
    can hold it: a control character, which R4 strings never contain, as its ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def fhirpath(resource_type: str, location: Sequence[str | int]) -> str:
    """Render a location such as ``("participant", 0, "member")`` as FHIRPath."""
    out = resource_type
    for step in location:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out
