"""SMART scopes into grants: v1 and v2 permissions, query restrictions, the compartment."""

from __future__ import annotations

import pytest

from service.auth.access import FULL_ACCESS, Access
from service.auth.scopes import parse_scope
from service.errors import Forbidden


@pytest.mark.parametrize(
    ("text", "actions"),
    [
        ("system/CareTeam.read", ("read", "search")),
        ("user/*.write", ("create", "update", "delete")),
        ("system/*.*", ("read", "search", "create", "update", "delete")),
        ("patient/CarePlan.cruds", ("create", "read", "update", "delete", "search")),
        ("system/CareTeam.rs", ("read", "search")),
        ("system/CareTeam.s", ("search",)),
    ],
)
def test_scope_permissions(text: str, actions: tuple[str, ...]) -> None:
    scope = parse_scope(text)
    assert scope is not None and scope.actions == actions


@pytest.mark.parametrize(
    "text",
    [
        "openid",
        "launch/patient",
        "system/CareTeam.sr",
        "system/careteam.rs",
        "system/CareTeam.read?x=1",
        "admin/*.*",
        "system/CareTeam.",
    ],
)
def test_non_resource_or_malformed_scopes_grant_nothing(text: str) -> None:
    assert parse_scope(text) is None


def test_v2_query_restriction_and_alternatives() -> None:
    access = Access.from_scopes(
        "system/CareTeam.rs?category=a system/CareTeam.rs?category=b",
        client_id="c",
        user=None,
        patient=None,
    )
    assert access.restrictions("CareTeam") == [("category", ("a", "b"))]
    assert not access.allows("CarePlan", "search")
    with pytest.raises(Forbidden):
        access.restrictions("CarePlan")


def test_patient_compartment_per_type() -> None:
    access = Access.from_scopes("patient/*.rs", client_id="c", user=None, patient="p1")
    assert access.restrictions("CareTeam") == [("patient", ("Patient/p1",))]
    assert access.restrictions("Patient") == [("_id", ("p1",))]
    assert access.restrictions("Practitioner") == []
    assert not access.covers_all("search")
    unrestricted = Access.from_scopes(
        "patient/*.rs system/*.rs", client_id="c", user=None, patient="p1"
    )
    assert unrestricted.restrictions("CareTeam") == []
    assert FULL_ACCESS.restrictions("AuditEvent") == []
