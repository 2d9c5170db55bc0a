"""Onboarding keyworking assignments from CSV through the transaction path.

The file becomes one transaction Bundle (``fhir_mappings.assignment_csv``) and runs exactly
as an integration engine's Bundle would: validation, reference resolution, keyworking rules
and Provenance all apply, and either everything is written or nothing is. A file with any bad
row writes nothing unless the caller asks to skip bad rows.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

from fhir_mappings import assignment_csv
from fhir_mappings.issues import Issue
from service.bundle_entries import read_bundle
from service.composition import build_interactions
from service.db.engine import Database
from service.errors import FhirError, Unprocessable
from service.interactions import Interactions
from service.settings import Settings
from service.transactions import BundleProcessor, EntryResult


@dataclass
class ImportReport:
    rows: int
    skipped: list[assignment_csv.BadRow] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)  # "Patient created" -> n

    def issues(self) -> list[Issue]:
        summary = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items()))
        found = [
            Issue(
                f"Imported {self.rows} rows: {summary or 'nothing to do'}",
                "informational",
                "information",
            )
        ]
        found += [
            Issue(f"line {b.line} skipped: {b.reason}", "invalid", "warning") for b in self.skipped
        ]
        return found


def _what(result: EntryResult) -> str:
    kind = result.stored.type if result.stored else "entry"
    if result.status.startswith("201"):
        return f"{kind} created"
    return f"{kind} updated" if result.changed else f"{kind} unchanged"


async def import_assignments(
    interactions: Interactions, text: str, *, skip_bad_rows: bool, max_entries: int
) -> ImportReport:
    parsed = assignment_csv.parse(text)
    if parsed.bad and not skip_bad_rows:
        raise Unprocessable(
            issues=[Issue(f"line {b.line}: {b.reason}", "invalid") for b in parsed.bad]
        )
    report = ImportReport(len(parsed.rows), skipped=parsed.bad)
    if not parsed.rows:
        return report
    _, entries = read_bundle(assignment_csv.bundle(parsed.rows), max_entries)
    for result in await BundleProcessor(interactions).transaction(entries):
        report.outcomes[_what(result)] += 1
    return report


async def run_import(settings: Settings, text: str, *, skip_bad_rows: bool) -> int:
    """The ``keyworker import`` command: prints the report; exit status 1 on refusal."""
    database = Database(settings.database_url)
    try:
        interactions = build_interactions(settings, database)
        try:
            report = await import_assignments(
                interactions,
                text,
                skip_bad_rows=skip_bad_rows,
                max_entries=settings.max_bundle_entries,
            )
        except FhirError as error:
            for issue in error.issues:
                print(f"refused: {issue.diagnostics}", file=sys.stderr)
            print("nothing was written", file=sys.stderr)
            return 1
        for issue in report.issues():
            print(issue.diagnostics)
        return 0
    finally:
        await database.dispose()
