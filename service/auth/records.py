"""Whether one record lies inside what a token covers, and the write hook that enforces it.

Search applies a token's restrictions as SQL criteria; a single record (a direct read, the
version a write replaces, the body a write stores) is checked here instead, against the same
criteria, using the index rows the record would get. Restriction values may name reference
and token parameters and ``_id`` (that is what SMART v2 restrictions and the patient
compartment use); anything else is treated as not matching, so it denies rather than allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.auth.access import Access, current_access
from service.auth.scopes import Criteria
from service.errors import Forbidden
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


def record_matches(
    resource_type: str,
    resource_id: str,
    body: dict[str, Any],
    alternatives: list[Criteria],
    base_url: str,
) -> bool:
    """Whether the record meets every pair of at least one alternative (comma = any value)."""
    rows = extract(resource_type, body, base_url)
    return any(
        all(
            any(_value_matches(resource_type, resource_id, name, v, rows) for v in value.split(","))
            for name, value in criteria
        )
        for criteria in alternatives
    )


class WriteGuard(WriteHook):
    """A write hook refusing (403, nothing written) a write outside the token's reach.

    It checks what the write replaces, as read inside the write, and what it stores, for
    plain, conditional and patch writes alike: a ``patient/`` token can neither change
    another patient's record nor move one of its own records out of its compartment.
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
        checks = []
        if previous is not None and live_before:
            checks.append(previous.body)
        if written.body is not None:
            checks.append(written.body)
        for body in checks:
            if not record_matches(stored.type, stored.id, body, alternatives, self.base_url):
                raise Forbidden(
                    f"The access token does not allow {action} of {stored.reference} "
                    "(outside its patient compartment or query restriction)"
                )
