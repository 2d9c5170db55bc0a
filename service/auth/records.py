"""Whether one record lies inside what a token covers, and the write hook that enforces it.

Search applies a token's restrictions as SQL criteria; a single record (a direct read, the
version a write replaces, the body a write stores) is checked here instead, against the same
criteria, using the index rows the record would get. Restriction values may name reference
and token parameters and ``_id`` (that is what SMART v2 restrictions and the patient
compartment use); anything else is treated as not matching, so it denies rather than allows.

A record outside the token's reach is answered as one that does not exist (404, as FHIR's
security guidance suggests for compartment-restricted data), so that neither a read nor a
change of it tells whether it exists; 403 is kept for what the token may not do at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.auth.access import Access, Restriction, current_access
from service.auth.scopes import Criteria
from service.errors import Forbidden, NotFound
from service.search.extraction import Row, extract
from service.search.parameters import parameter
from service.write_hooks import WriteHook, Written


def _value_matches(
    resource_type: str, resource_id: str, name: str, value: str, rows: dict[str, list[Row]]
) -> bool:
    if name == "_id":
        return value == resource_id
    param = parameter(resource_type, name)
    if param is None:
        return False
    if param.type == "reference":
        target = tuple(value.split("/", 1)) if "/" in value else (None, value)
        return any(
            r["param"] == name
            and (target[0] in (None, r["target_type"]))
            and target[1] == r["target_id"]
            for r in rows.get("reference", [])
        )
    if param.type == "token":
        system, _, code = value.rpartition("|")
        return any(
            r["param"] == name
            and r["code"] == code
            and ("|" not in value or r["system"] == (system or None))
            for r in rows.get("token", [])
        )
    return False


def _pair_matches(
    resource_type: str,
    resource_id: str,
    pair: Restriction,
    rows: dict[str, list[Row]],
    confining: Restriction | None,
) -> bool:
    """One of the values matches; for the token's confinement to its patient, every patient
    the record links to through that parameter must be among them (as the search applies)."""
    name, values = pair
    if not any(_value_matches(resource_type, resource_id, name, v, rows) for v in values):
        return False
    if pair != confining or name == "_id":
        return True
    links = [r for r in rows.get("reference", []) if r["param"] == name]
    return all(f"{r['target_type']}/{r['target_id']}" in values for r in links)


def record_matches(
    resource_type: str,
    resource_id: str,
    body: dict[str, Any],
    alternatives: list[Criteria],
    base_url: str,
    confining: Restriction | None = None,
) -> bool:
    """Whether the record meets every pair of at least one alternative (any of its values).

    ``confining`` is the caller's confinement to its patient (``Access.compartment``).
    """
    rows = extract(resource_type, body, base_url)
    return any(
        all(_pair_matches(resource_type, resource_id, pair, rows, confining) for pair in criteria)
        for criteria in alternatives
    )


def unknown(reference: str) -> NotFound:
    """What a record out of reach is answered with: the words of one that does not exist."""
    return NotFound(f"{reference} is not known")


class WriteGuard(WriteHook):
    """A write hook refusing (nothing written) a write outside the token's reach.

    It checks what the write replaces, as read inside the write, and what it stores, for
    plain, conditional and patch writes alike: a ``patient/`` token can neither change
    another patient's record (404, as if it did not exist) nor move one of its own records
    out of its compartment or create one outside it (403).
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def check(self, batch: Sequence[Written]) -> None:
        access = current_access.get()
        if not access.unrestricted:
            for written in batch:
                self._check(access, written)

    def _check(self, access: Access, written: Written) -> None:
        stored, previous = written.stored, written.previous
        live_before = previous is not None and not previous.deleted
        action = "delete" if written.body is None else ("update" if live_before else "create")
        alternatives = access.alternatives(stored.type, action)
        if () in alternatives:
            return  # granted without restriction: nothing to check record by record
        if not alternatives:
            raise Forbidden(f"The access token does not allow {action} on {stored.type}")
        confining = access.compartment(stored.type)

        def reaches(body: dict[str, Any], within: list[Criteria]) -> bool:
            return () in within or record_matches(
                stored.type, stored.id, body, within, self.base_url, confining
            )

        refused = Forbidden(
            f"The access token does not allow {action} of {stored.reference} "
            "(outside its patient compartment or query restriction)"
        )
        if previous is not None and live_before and not reaches(previous.body, alternatives):
            if not reaches(previous.body, access.alternatives(stored.type, "read")):
                raise unknown(stored.reference)  # what it may not see, it is not told of
            raise refused
        if written.body is not None and not reaches(written.body, alternatives):
            raise refused
