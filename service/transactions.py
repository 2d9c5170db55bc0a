"""Transaction and batch Bundles: many interactions in one request.

A transaction runs every entry in one database transaction, in R4's processing order, with
``urn:uuid:`` full URLs and conditional references (``Patient?identifier=…``) resolved and
rewritten in every resource first; any failure rolls everything back and answers with the
failing entry's OperationOutcome, located at ``Bundle.entry[i]``. The write hooks (keyworking
rules, Provenance) run per entry inside that transaction, so a rule holds across the bundle.
A batch runs each entry on its own and reports each entry's outcome.
https://hl7.org/fhir/R4/http.html#transaction
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy.exc import DBAPIError

from fhir_mappings.issues import Issue
from service.bundle_entries import PROCESSING_ORDER, Entry
from service.errors import Conflict, FhirError, PreconditionFailed, Unprocessable
from service.interactions import Interactions, Transaction
from service.storage.repository import Stored

_CONDITIONAL_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+\?.+")
# PostgreSQL deadlock and serialisation failures: the transaction may simply be run again.
_RETRYABLE = ("40P01", "40001")
_ATTEMPTS = 3


@dataclass
class _Plan:
    """What the first pass fixed: which resource each entry writes, and what already exists."""

    identities: dict[str, str] = field(default_factory=dict)  # fullUrl -> Type/id
    assigned: dict[int, str] = field(default_factory=dict)  # entry index -> id it writes
    found: dict[int, Stored] = field(default_factory=dict)  # conditional creates that matched


@dataclass(frozen=True)
class EntryResult:
    status: str
    stored: Stored | None = None
    outcome: dict[str, Any] | None = None
    changed: bool = True


class BundleProcessor:
    def __init__(
        self, interactions: Interactions, permitted: Callable[[Entry], None] = lambda _: None
    ) -> None:
        self.interactions = interactions
        self.permitted = permitted  # raises for an entry the caller may not run

    async def transaction(self, entries: list[Entry]) -> list[EntryResult]:
        collision: DBAPIError | None = None
        for _ in range(_ATTEMPTS):
            try:
                async with self.interactions.database.write() as connection:
                    return await self._all_or_nothing(Transaction(connection), entries)
            except DBAPIError as error:
                orig = error.orig
                if getattr(orig, "sqlstate", None) not in _RETRYABLE:
                    raise
                collision = error
        raise Conflict("The transaction kept colliding with concurrent ones; retry") from collision

    async def batch(self, entries: list[Entry]) -> list[EntryResult]:
        results = []
        for entry in entries:
            try:
                self.permitted(entry)
                results.append(await self._run(entry, None, _Plan()))
            except FhirError as error:
                located = _located(error, entry)
                results.append(EntryResult(f"{error.status}", outcome=located.outcome()))
        return results

    async def _all_or_nothing(self, tx: Transaction, entries: list[Entry]) -> list[EntryResult]:
        plan = _Plan()
        for entry in entries:
            try:
                self.permitted(entry)
                await self._identify(tx, entry, plan)
            except FhirError as error:
                raise _located(error, entry) from error
        results: dict[int, EntryResult] = {}
        ordered = sorted(entries, key=lambda e: (PROCESSING_ORDER[e.method], e.index))
        for entry in ordered:
            try:
                if entry.index in plan.found:
                    results[entry.index] = EntryResult(
                        "200 OK", plan.found[entry.index], changed=False
                    )
                else:
                    resolved = await self._resolve_references(tx, entry, plan.identities)
                    results[entry.index] = await self._run(resolved, tx, plan)
            except FhirError as error:
                raise _located(error, entry) from error
        return [results[entry.index] for entry in entries]

    async def _identify(
        self,
        tx: Transaction,
        entry: Entry,
        plan: _Plan,
    ) -> None:
        """Fix which resource each entry writes, before any entry runs."""
        rtype = entry.resource_type
        resource_id = entry.resource_id
        if entry.method == "POST" and entry.if_none_exist:
            match = await self.interactions.single_match(tx.connection, rtype, entry.if_none_exist)
            if match is not None:
                plan.found[entry.index] = match[1]
                resource_id = match[1].id
        elif entry.method == "PUT" and entry.query:
            match = await self.interactions.single_match(tx.connection, rtype, entry.query)
            body_id = (entry.resource or {}).get("id")
            resource_id = match[1].id if match is not None else body_id
        if entry.method in ("POST", "PUT") and resource_id is None:
            resource_id = self.interactions.ids()
        if entry.method in ("POST", "PUT") and resource_id is not None:
            tx.pending.add((rtype, resource_id))
            plan.assigned[entry.index] = resource_id
            if entry.full_url:
                plan.identities[entry.full_url] = f"{rtype}/{resource_id}"

    async def _resolve_references(
        self, tx: Transaction, entry: Entry, identities: dict[str, str]
    ) -> Entry:
        if entry.resource is None:
            return entry
        problems: list[FhirError] = []
        cache: dict[str, str] = {}

        async def conditional(reference: str) -> str:
            if reference not in cache:
                rtype, _, query = reference.partition("?")
                matches = await self.interactions.matching(tx.connection, rtype, query)
                if len(matches) != 1:
                    problems.append(_unresolved(reference, len(matches)))
                    return reference
                cache[reference] = matches[0][1].reference
            return cache[reference]

        targets: list[str] = []
        _collect_references(entry.resource, targets.append)
        resolved = {
            ref: identities.get(ref) or await conditional(ref)
            for ref in targets
            if ref in identities or _CONDITIONAL_REFERENCE.match(ref)
        }
        if problems:
            raise problems[0]
        if not resolved:
            return entry
        return replace(entry, resource=_rewritten(entry.resource, resolved))

    async def _run(self, entry: Entry, tx: Transaction | None, plan: _Plan) -> EntryResult:
        service, rtype = self.interactions, entry.resource_type
        assigned = plan.assigned.get(entry.index)
        if entry.method == "DELETE":
            if entry.query:
                stored = await service.conditional_delete(rtype, entry.query, within=tx)
            else:
                stored = await service.delete(
                    rtype, entry.resource_id or "", if_match=entry.if_match, within=tx
                )
            return EntryResult("204 No Content", stored)
        if entry.method in ("GET", "HEAD"):
            if entry.version is not None:
                stored = await service.vread(
                    rtype, entry.resource_id or "", entry.version, within=tx
                )
            elif entry.resource_id is not None:
                stored = await service.read(rtype, entry.resource_id, within=tx)
            else:
                raise Unprocessable(
                    "Searches inside bundles are not supported; send them as plain requests",
                    code="not-supported",
                )
            return EntryResult("200 OK", stored, changed=False)
        body = entry.resource or {}
        if entry.method == "POST":
            outcome = await service.create(
                rtype,
                body,
                if_none_exist=None if tx else entry.if_none_exist,
                assigned_id=assigned,
                within=tx,
            )
        elif entry.query and tx is None:
            outcome = await service.conditional_update(
                rtype, entry.query, body, if_match=entry.if_match
            )
        else:
            target = assigned or entry.resource_id or ""
            outcome = await service.update(
                rtype, target, {**body, "id": target}, if_match=entry.if_match, within=tx
            )
        status = "201 Created" if outcome.created else "200 OK"
        return EntryResult(status, outcome.stored, changed=outcome.changed)


def _unresolved(reference: str, count: int) -> FhirError:
    if count > 1:
        return PreconditionFailed(f"Conditional reference '{reference}' matches {count} resources")
    return Unprocessable(f"Conditional reference '{reference}' matches no resource")


def _collect_references(node: Any, found: Callable[[str], None]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                found(value)
            else:
                _collect_references(value, found)
    elif isinstance(node, list):
        for item in node:
            _collect_references(item, found)


def _rewritten(node: Any, resolved: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            k: resolved.get(v, v)
            if k == "reference" and isinstance(v, str)
            else _rewritten(v, resolved)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_rewritten(item, resolved) for item in node]
    return node


def _located(error: FhirError, entry: Entry) -> FhirError:
    """The same error, its messages and element paths placed at the entry that failed."""

    def place(expression: str) -> str:
        if expression.startswith("Bundle."):
            return expression
        head, _, rest = expression.partition(".")
        if head == entry.resource_type and rest:
            return f"{entry.path}.resource.{rest}"
        return f"{entry.path}.resource.{expression}"

    issues = [
        Issue(
            f"{entry.path} ({entry.method} {entry.resource_type}): {issue.diagnostics}",
            issue.code,
            issue.severity,
            tuple(place(e) for e in issue.expression),
        )
        for issue in error.issues
    ]
    return type(error)(issues=issues, headers=error.headers)
