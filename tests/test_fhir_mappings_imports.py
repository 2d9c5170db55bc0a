"""``fhir_mappings`` is the pure domain: it imports no web framework, database or service code.

The arrow points one way (``service → fhir_mappings → fhir.resources``); this walks every
module's imports with ``ast`` so a stray import fails here rather than in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

import fhir_mappings

FORBIDDEN = ("service", "fastapi", "starlette", "sqlalchemy", "alembic", "httpx", "asyncpg")
ROOT = Path(fhir_mappings.__file__).parent


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_fhir_mappings_imports_nothing_from_the_service_side() -> None:
    modules = sorted(ROOT.rglob("*.py"))
    assert len(modules) > 10
    offending = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in modules
        for name in _imports(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offending == []


def test_only_the_model_module_imports_fhir_resources() -> None:
    importers = {
        path.name
        for path in ROOT.rglob("*.py")
        if any(name.split(".")[0] == "fhir" for name in _imports(path))
    }
    assert importers <= {"model.py"}


def test_every_served_type_validates_with_the_per_class_null_check() -> None:
    """``null_elements.install`` only counts for classes built after it: an import of
    ``fhir.resources`` ahead of ``fhir_mappings.model`` would quietly bring back fhir-core's
    slower check (same answers, a quarter more CPU a write), so say so here."""
    from fhir_mappings import model, null_elements
    from service.registry import RESOURCE_TYPES

    slow = [
        name for name in RESOURCE_TYPES if not null_elements.installed_for(model.model_class(name))
    ]
    assert slow == []
