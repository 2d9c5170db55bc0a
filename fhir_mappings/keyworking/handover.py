"""``$handover``: hand a keyworking role from one member to another at a date, as a new CareTeam.

The old participant's period ends the day before the handover date and the new participant's
starts on it, so two accountable professionals never overlap (the rule would refuse that).
``date`` is a day; a dateTime is read as its day. The result is a whole new CareTeam body that
the caller writes through the normal update path, so validation, index and rules all run.
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from fhir_mappings.keyworking import moments
from fhir_mappings.keyworking.projection import reference
from fhir_mappings.keyworking.terminology import ROLES, role_of


class HandoverRefused(Exception):
    """``from`` does not hold the role at the date (a conflict with the record, 409)."""


class BadHandover(ValueError):
    """The Parameters are malformed (400)."""


@dataclass(frozen=True)
class Handover:
    role: str
    source: str
    target: str
    date: datetime.date
    reason: str | None


def _value(parameter: Mapping[str, Any]) -> Any:
    return next((v for k, v in parameter.items() if k.startswith("value")), None)


def parse(body: Any) -> Handover:
    if not isinstance(body, Mapping) or body.get("resourceType") != "Parameters":
        raise BadHandover("$handover takes a Parameters resource")
    values = {p.get("name"): p for p in body.get("parameter") or () if isinstance(p, Mapping)}
    missing = [n for n in ("role", "from", "to", "date") if n not in values]
    if missing:
        raise BadHandover("$handover needs the parameters " + ", ".join(missing))
    role_value = _value(values["role"])
    if isinstance(role_value, str):
        role = role_value if role_value in ROLES else None
    elif isinstance(role_value, Mapping):
        concept = role_value if "coding" in role_value else {"coding": [role_value]}
        role = role_of([concept])
    else:
        role = None
    if role is None:
        raise BadHandover("'role' is not a keyworking role (a code or a Coding)")
    source = reference(_value(values["from"]))
    target = reference(_value(values["to"]))
    if source is None or target is None:
        raise BadHandover("'from' and 'to' are valueReference with a literal reference")
    try:
        day = datetime.date.fromisoformat(str(_value(values["date"]))[:10])
    except ValueError as error:
        raise BadHandover("'date' is not a FHIR date") from error
    reason = _value(values["reason"]) if "reason" in values else None
    return Handover(role, source, target, day, reason if isinstance(reason, str) else None)


def apply(care_team: Mapping[str, Any], handover: Handover) -> dict[str, Any]:
    """The next version of ``care_team``; HandoverRefused when ``from`` does not hold the role."""
    first_day = moments.bounds(handover.date.isoformat())[0]
    participants = care_team.get("participant") or []
    team_start, team_end = moments.period_bounds(care_team.get("period"))
    for index, participant in enumerate(participants):
        start, end = moments.period_bounds(participant.get("period"))
        start = team_start if start is None else start
        end = team_end if end is None else end
        if (
            reference(participant.get("member")) == handover.source
            and role_of(participant.get("role") or ()) == handover.role
            and moments.covers(start, end, first_day)
        ):
            return _replaced(care_team, index, handover)
    raise HandoverRefused(
        f"{handover.source} does not hold the role {handover.role} in this CareTeam on "
        f"{handover.date.isoformat()}"
    )


def _replaced(care_team: Mapping[str, Any], index: int, handover: Handover) -> dict[str, Any]:
    updated = copy.deepcopy(dict(care_team))
    updated.pop("meta", None)
    old = updated["participant"][index]
    period = dict(old.get("period") or {})
    successor: dict[str, Any] = {
        "role": copy.deepcopy(old.get("role") or []),
        "member": {"reference": handover.target},
        "period": {"start": handover.date.isoformat()},
    }
    if "end" in period:
        successor["period"]["end"] = period["end"]
    period["end"] = (handover.date - datetime.timedelta(days=1)).isoformat()
    old["period"] = period
    updated["participant"].insert(index + 1, successor)
    return updated
