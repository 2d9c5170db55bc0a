"""A problem found in a resource, located by a FHIRPath expression.

Shared by the domain (which finds problems) and the service (which reports them in an
OperationOutcome), so both speak of the same thing.
"""

from __future__ import annotations

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
            "diagnostics": self.diagnostics,
        }
        if self.expression:
            out["expression"] = list(self.expression)
        return out


def fhirpath(resource_type: str, location: Sequence[str | int]) -> str:
    """Render a location such as ``("participant", 0, "member")`` as FHIRPath."""
    out = resource_type
    for step in location:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out
