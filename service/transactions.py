"""Transaction and batch Bundles: many interactions in one request.

A transaction runs every entry in one database transaction, in R4's processing order, with
``urn:uuid:`` full URLs and conditional references (``Patient?identifier=…``) resolved and
rewritten in every resource first; any failure rolls everything back and answers with the
failing entry's OperationOutcome, located at ``Bundle.entry[i]``. The write hooks (keyworking
rules, Provenance) run inside that transaction, so a rule holds across the bundle.
A batch runs each entry on its own and reports each entry's outcome.
https://hl7.org/fhir/R4/http.html#transaction

Reads and searches (GET or HEAD entries) run as their plain requests do, under the same
reach (``reach``, ``search``: the caller's scopes and confinement; a record out of reach is
404 in its entry). A transaction reads (and vreads) inside its database transaction, after
its writes, so they see them. Its searches run after the transaction has committed, the last
of all, as the plain search would then (they see its writes too): one that fails is
answered in its own entry, since the writes before it can no longer be undone.

Ingest speed: a transaction's plain creates (a POST that no If-None-Exist matched, a PUT to
an id not in use, neither with a conditional reference) are written together, one statement
per table (``Interactions.create_all``), each run of consecutive ones in processing order as
one batch; everything else runs entry by entry. A batch checks what the entries would have
checked one by one, and the keyworking rule sees the whole batch at once, so when a batch is
refused the transaction is rolled back and run again entry by entry: that run finds the
entry at fault and answers exactly as it always did. A refusal costs a second run; an
accepted bundle is written in a few dozen statements instead of several hundred.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy.exc import DBAPIError

from fhir_mappings.issues import Issue
from service.bundle_entries import PROCESSING_ORDER, Entry, check_served
from service.errors import Conflict, FhirError, PreconditionFailed, Unprocessable
from service.interactions import Creation, Interactions, Transaction
from service.registry import RESOURCE_TYPES
from service.storage import repository
from service.storage.repository import Stored

_CONDITIONAL_REFERENCE = re.compile(r"^[A-Z][A-Za-z]+\?.+")
_REFERENCE_VALUE = re.compile(rb'"reference":"((?:[^"\\]|\\.)*)"')
# PostgreSQL deadlock and serialisation failures: the transaction may simply be run again.
_RETRYABLE = ("40P01", "40001")
_ATTEMPTS = 3


@dataclass
class _Plan:
    """What the first pass fixed: which resource each entry writes, and what already exists."""

    identities: dict[str, str] = field(default_factory=dict)  # fullUrl -> Type/id
    assigned: dict[int, str] = field(default_factory=dict)  # entry index -> id it writes
    found: dict[int, Stored] = field(default_factory=dict)  # conditional creates that matched


class _Unbatched(Exception):
    """A batch of creates was refused: run the transaction again, entry by entry."""


@dataclass(frozen=True)
class EntryResult:
    status: str
    stored: Stored | None = None
    outcome: dict[str, Any] | None = None
    changed: bool = True
    found: bytes | None = None  # a search's searchset Bundle


async def _reaches_all(_: Entry) -> None:
    return None


async def _no_search(entry: Entry) -> bytes:
    raise Unprocessable(
        f"Searches are not run in this Bundle ({entry.resource_type})", code="not-supported"
    )


class BundleProcessor:
    def __init__(
        self,
        interactions: Interactions,
        permitted: Callable[[Entry], None] = lambda _: None,
        *,
        reach: Callable[[Entry], Awaitable[None]] = _reaches_all,
        search: Callable[[Entry], Awaitable[bytes]] = _no_search,
    ) -> None:
        self.interactions = interactions
        self.permitted = permitted  # raises for an entry the caller may not run
        self.reach = reach  # raises (404) for a record a read entry may not see
        self.search = search  # a search entry's searchset Bundle, as the plain search

    def _admitted(self, entry: Entry) -> None:
        """Refuse an entry as its plain request would be: an interaction its type does not
        serve (405), then one the caller may not run (``permitted``)."""
        check_served(entry)
        self.permitted(entry)

    async def transaction(self, entries: list[Entry]) -> list[EntryResult]:
        searches = [e for e in entries if e.interaction == "search-type"]
        for entry in searches:  # refused before anything is written, as any entry is
            try:
                self._admitted(entry)
            except FhirError as error:
                raise _located(error, entry) from error
        inside = [e for e in entries if e.interaction != "search-type"]
        written: list[EntryResult] = []
        if inside:
            try:
                written = await self._transaction(inside, batched=True)
            except _Unbatched:
                written = await self._transaction(inside, batched=False)
        results = {e.index: r for e, r in zip(inside, written, strict=True)}
        for entry in searches:
            results[entry.index] = await self._answered(entry)
        return [results[e.index] for e in entries]

    async def _transaction(self, entries: list[Entry], *, batched: bool) -> list[EntryResult]:
        collision: DBAPIError | None = None
        for _ in range(_ATTEMPTS):
            try:
                async with self.interactions.database.write() as connection:
                    return await self._all_or_nothing(Transaction(connection), entries, batched)
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
                self._admitted(entry)
            except FhirError as error:
                results.append(_failed(error, entry))
                continue
            results.append(await self._answered(entry))
        return results

    async def _answered(self, entry: Entry) -> EntryResult:
        """The entry run on its own, a refusal answered in its entry."""
        try:
            return await self._run(entry, None, _Plan())
        except FhirError as error:
            return _failed(error, entry)

    async def _all_or_nothing(
        self, tx: Transaction, entries: list[Entry], batched: bool
    ) -> list[EntryResult]:
        plan = _Plan()
        matches = await (self._matches(tx, entries) if batched else self._each_match(tx, entries))
        for entry in entries:
            self._identify(tx, entry, plan, matches.get(entry.index))
        results: dict[int, EntryResult] = {}
        ordered = sorted(entries, key=lambda e: (PROCESSING_ORDER[e.method], e.index))
        creations = await self._creations(tx, ordered, plan) if batched else {}
        batch: list[tuple[int, Creation]] = []
        for entry in ordered:
            if entry.index in creations:
                batch.append((entry.index, creations[entry.index]))
                continue
            await self._create_all(tx, batch, results)
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
        await self._create_all(tx, batch, results)
        return [results[entry.index] for entry in entries]

    async def _creations(
        self, tx: Transaction, ordered: list[Entry], plan: _Plan
    ) -> dict[int, Creation]:
        """The entries that are plain creates, as the creations they write (urn:uuid
        references rewritten): see the module's docstring for which qualify."""
        puts = {
            (e.resource_type, plan.assigned[e.index])
            for e in ordered
            if e.method == "PUT" and e.index in plan.assigned
        }
        taken = await repository.existing(tx.connection, puts, with_deleted=True)
        creations: dict[int, Creation] = {}
        for entry in ordered:
            resource_id = plan.assigned.get(entry.index)
            key = (entry.resource_type, resource_id or "")
            if (
                resource_id is None
                or entry.resource is None
                or entry.index in plan.found
                or entry.if_match is not None
                or key in taken
            ):
                continue
            raw, references = _references(entry.resource)
            if any(_CONDITIONAL_REFERENCE.match(reference) for reference in references):
                continue
            taken.add(key)  # a second write of the same resource runs after the first
            resolved = {r: plan.identities[r] for r in references if r in plan.identities}
            body = _rewritten(raw, resolved) if resolved else entry.resource
            make = Creation.post if entry.method == "POST" else Creation.put
            creations[entry.index] = make(entry.resource_type, resource_id, body)
        return creations

    async def _create_all(
        self, tx: Transaction, batch: list[tuple[int, Creation]], results: dict[int, EntryResult]
    ) -> None:
        """Write the batch gathered so far (and empty it); a refusal runs it all again."""
        if not batch:
            return
        try:
            stored = await self.interactions.create_all([c for _, c in batch], tx)
        except FhirError as error:
            raise _Unbatched from error
        for (index, _), written in zip(batch, stored, strict=True):
            results[index] = EntryResult("201 Created", written)
        batch.clear()

    async def _each_match(self, tx: Transaction, entries: list[Entry]) -> dict[int, Stored]:
        """What each conditional create or update matches, entry by entry in Bundle order
        (the first refused entry, for permission or its criteria, is the one reported)."""
        matches: dict[int, Stored] = {}
        for entry in entries:
            try:
                self._admitted(entry)
                criteria = _criteria(entry)
                if criteria is not None:
                    match = await self.interactions.single_match(
                        tx.connection, entry.resource_type, criteria
                    )
                    if match is not None:
                        matches[entry.index] = match[1]
            except FhirError as error:
                raise _located(error, entry) from error
        return matches

    async def _matches(self, tx: Transaction, entries: list[Entry]) -> dict[int, Stored]:
        """``_each_match`` with every entry's criteria looked up together; a refusal runs the
        transaction again entry by entry, to report the entry at fault."""
        try:
            for entry in entries:
                self._admitted(entry)
            conditional = [(e, c) for e in entries if (c := _criteria(e)) is not None]
            found = await self.interactions.single_matches(
                tx.connection, [(e.resource_type, c) for e, c in conditional]
            )
        except FhirError as error:
            raise _Unbatched from error
        return {e.index: m[1] for (e, _), m in zip(conditional, found, strict=True) if m}

    def _identify(self, tx: Transaction, entry: Entry, plan: _Plan, match: Stored | None) -> None:
        """Fix which resource each entry writes, before any entry runs."""
        rtype = entry.resource_type
        resource_id = entry.resource_id
        if entry.method == "POST" and match is not None:
            plan.found[entry.index] = match
            resource_id = match.id
        elif entry.method == "PUT" and entry.query:
            body_id = (entry.resource or {}).get("id")
            resource_id = match.id if match is not None else body_id
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
                if rtype not in RESOURCE_TYPES:
                    problems.append(_not_searchable(reference, rtype))
                    return reference
                matches = await self.interactions.matching(tx.connection, rtype, query)
                if len(matches) != 1:
                    problems.append(_unresolved(reference, len(matches)))
                    return reference
                cache[reference] = matches[0][1].reference
            return cache[reference]

        raw, targets = _references(entry.resource)
        resolved = {
            ref: identities.get(ref) or await conditional(ref)
            for ref in targets
            if ref in identities or _CONDITIONAL_REFERENCE.match(ref)
        }
        if problems:
            raise problems[0]
        if not resolved:
            return entry
        return replace(entry, resource=_rewritten(raw, resolved))

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
            if entry.resource_id is None:
                return EntryResult("200 OK", changed=False, found=await self.search(entry))
            await self.reach(entry)
            if entry.version is not None:
                stored = await service.vread(rtype, entry.resource_id, entry.version, within=tx)
            else:
                stored = await service.read(rtype, entry.resource_id, within=tx)
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


def _failed(error: FhirError, entry: Entry) -> EntryResult:
    return EntryResult(f"{error.status}", outcome=_located(error, entry).outcome())


def _unresolved(reference: str, count: int) -> FhirError:
    if count > 1:
        return PreconditionFailed(f"Conditional reference '{reference}' matches {count} resources")
    return Unprocessable(f"Conditional reference '{reference}' matches no resource")


def _not_searchable(reference: str, resource_type: str) -> FhirError:
    """A conditional reference to a type not hosted here: there is nothing to search."""
    return Unprocessable(
        f"Conditional reference '{reference}' cannot resolve: {resource_type} is not hosted "
        "here; send a literal or identifier reference to another system's record"
    )


def _criteria(entry: Entry) -> str | None:
    """The search criteria of a conditional create (If-None-Exist) or update, if any."""
    if entry.method == "POST":
        return entry.if_none_exist or None
    if entry.method == "PUT":
        return entry.query or None
    return None


def _references(resource: dict[str, Any]) -> tuple[bytes, list[str]]:
    """The resource's JSON, and the string value of every ``reference`` key in it.

    Found by one regular-expression scan of the compact JSON rather than a walk of the
    nested dicts (several times faster, and every entry of a bundle goes through it): outside
    string values the JSON has no spaces, and inside them every quote is escaped, so
    ``"reference":"`` can only be such a key. Values with escapes are decoded as JSON.
    """
    raw = orjson.dumps(resource)
    return raw, [_json_string(m.group(1)) for m in _REFERENCE_VALUE.finditer(raw)]


def _json_string(content: bytes) -> str:
    return str(orjson.loads(b'"' + content + b'"')) if b"\\" in content else content.decode()


def _rewritten(raw: bytes, resolved: dict[str, str]) -> dict[str, Any]:
    """The resource (as ``_references`` gave its JSON) with references replaced."""

    def swap(match: re.Match[bytes]) -> bytes:
        target = resolved.get(_json_string(match.group(1)))
        return match.group(0) if target is None else b'"reference":' + orjson.dumps(target)

    rewritten: dict[str, Any] = orjson.loads(_REFERENCE_VALUE.sub(swap, raw))
    return rewritten


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
