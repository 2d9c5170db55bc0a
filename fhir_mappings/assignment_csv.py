"""Keyworking assignments from a spreadsheet, as one FHIR transaction Bundle.

Social care providers whose systems do not speak FHIR export one row per assignment: who the
person is, who the professional is and where they work, which keyworking role they hold, and
from when to when. Every row is checked before anything is built, and each bad row is
reported with its line number. The Bundle uses conditional updates keyed on identifiers
(NHS number, ODS code, staff number) and deterministic ``urn:uuid`` full URLs, so importing
the same file twice changes nothing the second time.

Columns (header row required; order free)::

    nhs_number, patient_family, patient_given, birth_date,
    professional_id, professional_family, professional_given, profession_snomed,
    ods_code, organisation_name, email, phone,
    keyworking_role, start, end

``professional_id`` is a staff number, or ``system|value`` for another identifier system.
``profession_snomed`` (optional) is the SNOMED CT profession code shown with the role.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir_mappings.keyworking.nhs_number import NHS_NUMBER, valid
from fhir_mappings.keyworking.terminology import ROLES, SNOMED, role_concept

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
STAFF_NUMBER = "https://keyworker-fhir.org/fhir/Id/staff-number"
ROLE_IDENTIFIER = "https://keyworker-fhir.org/fhir/Id/imported-practitioner-role"
TEAM_IDENTIFIER = "https://keyworker-fhir.org/fhir/Id/imported-care-team"
COLUMNS = [
    "nhs_number",
    "patient_family",
    "patient_given",
    "birth_date",
    "professional_id",
    "professional_family",
    "professional_given",
    "profession_snomed",
    "ods_code",
    "organisation_name",
    "email",
    "phone",
    "keyworking_role",
    "start",
    "end",
]
REQUIRED = [
    "nhs_number",
    "patient_family",
    "birth_date",
    "professional_id",
    "professional_family",
    "ods_code",
    "keyworking_role",
    "start",
]
_NAMESPACE = uuid.UUID("5d0c1f3e-6a53-4f0e-9a55-6b2f4c7a1e10")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9 ()-]{6,20}$")
_ODS_CODE = re.compile(r"^[A-Z0-9]{3,10}$")


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str


@dataclass
class Parsed:
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _row_problems(row: dict[str, str]) -> list[str]:
    problems = [f"{name} is empty" for name in REQUIRED if not row.get(name)]
    if row.get("nhs_number") and not valid(row["nhs_number"]):
        problems.append(f"nhs_number {row['nhs_number']!r} fails the NHS number check")
    if row.get("keyworking_role") and row["keyworking_role"] not in ROLES:
        problems.append(
            f"keyworking_role {row['keyworking_role']!r} is not one of {', '.join(ROLES)}"
        )
    for name in ("birth_date", "start", "end"):
        if row.get(name) and _date(row[name]) is None:
            problems.append(f"{name} {row[name]!r} is not a date (YYYY-MM-DD)")
    start, end = _date(row.get("start", "")), _date(row.get("end", ""))
    if start and end and end < start:
        problems.append("end is before start")
    if row.get("ods_code") and not _ODS_CODE.match(row["ods_code"]):
        problems.append(f"ods_code {row['ods_code']!r} is not an ODS code")
    if row.get("email") and not _EMAIL.match(row["email"]):
        problems.append(f"email {row['email']!r} is not an email address")
    if row.get("phone") and not _PHONE.match(row["phone"]):
        problems.append(f"phone {row['phone']!r} is not a telephone number")
    if row.get("profession_snomed") and not row["profession_snomed"].isdigit():
        problems.append(f"profession_snomed {row['profession_snomed']!r} is not a SNOMED CT id")
    return problems


def parse(text: str) -> Parsed:
    """Rows keyed by column, each with its line number, and every bad row with why."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    parsed = Parsed()
    if missing:
        parsed.bad.append(BadRow(1, "header lacks columns: " + ", ".join(missing)))
        return parsed
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        parsed.bad.append(BadRow(1, "header has unknown columns: " + ", ".join(unknown)))
        return parsed
    try:
        _read_rows(reader, parsed)
    except csv.Error as error:
        # Past a line the csv module cannot read, no row can be trusted (nor skipped alone):
        # the file is refused, or with bad rows skipped nothing of it is imported.
        parsed.rows.clear()
        parsed.bad.append(BadRow(reader.line_num + 1, f"not readable as CSV: {error}"))
    return parsed


def _read_rows(reader: csv.DictReader[str], parsed: Parsed) -> None:
    for row in reader:
        line = reader.line_num
        values = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if None in row:
            parsed.bad.append(BadRow(line, "more fields than the header names"))
            continue
        problems = _row_problems(values)
        if problems:
            parsed.bad.append(BadRow(line, "; ".join(problems)))
        else:
            parsed.rows.append((line, values))


def _identifier(value: str, default_system: str) -> dict[str, str]:
    system, sep, code = value.partition("|")
    return {"system": system, "value": code} if sep else {"system": default_system, "value": value}


def _urn(*parts: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, '|'.join(parts))}"


def _entry(resource: dict[str, Any], key: dict[str, str], full_url: str) -> dict[str, Any]:
    query = f"identifier={key['system']}|{key['value']}"
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "PUT", "url": f"{resource['resourceType']}?{query}"},
    }


def _telecom(row: dict[str, str]) -> list[dict[str, str]]:
    telecom = []
    if row.get("phone"):
        telecom.append({"system": "phone", "value": row["phone"], "use": "work"})
    if row.get("email"):
        telecom.append({"system": "email", "value": row["email"], "use": "work"})
    return telecom


def _name(row: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    name: dict[str, Any] = {"family": row[f"{prefix}_family"]}
    if row.get(f"{prefix}_given"):
        name["given"] = row[f"{prefix}_given"].split()
    return [name]


def bundle(rows: Iterable[tuple[int, dict[str, str]]]) -> dict[str, Any]:
    """One transaction Bundle creating or updating everything the rows describe."""
    entries: dict[str, dict[str, Any]] = {}
    teams: dict[str, dict[str, Any]] = {}
    for _, row in rows:
        ods = {"system": ODS, "value": row["ods_code"]}
        org_url = _urn("Organization", row["ods_code"])
        organisation = {"resourceType": "Organization", "identifier": [ods], "active": True}
        organisation["name"] = row.get("organisation_name") or row["ods_code"]
        entries.setdefault(org_url, _entry(organisation, ods, org_url))

        staff = _identifier(row["professional_id"], STAFF_NUMBER)
        person_url = _urn("Practitioner", staff["system"], staff["value"])
        practitioner = {
            "resourceType": "Practitioner",
            "identifier": [staff],
            "name": _name(row, "professional"),
        }
        entries.setdefault(person_url, _entry(practitioner, staff, person_url))

        role_key = {"system": ROLE_IDENTIFIER, "value": f"{staff['value']}@{row['ods_code']}"}
        role_url = _urn("PractitionerRole", role_key["value"])
        role: dict[str, Any] = {
            "resourceType": "PractitionerRole",
            "identifier": [role_key],
            "active": True,
            "practitioner": {"reference": person_url},
            "organization": {"reference": org_url},
        }
        if row.get("profession_snomed"):
            role["code"] = [{"coding": [{"system": SNOMED, "code": row["profession_snomed"]}]}]
        if _telecom(row):
            role["telecom"] = _telecom(row)
        entries.setdefault(role_url, _entry(role, role_key, role_url))

        nhs = {"system": NHS_NUMBER, "value": row["nhs_number"].replace(" ", "")}
        patient_url = _urn("Patient", nhs["value"])
        patient = {
            "resourceType": "Patient",
            "identifier": [nhs],
            "name": _name(row, "patient"),
            "birthDate": row["birth_date"],
        }
        entries.setdefault(patient_url, _entry(patient, nhs, patient_url))

        team = teams.setdefault(nhs["value"], _team(nhs["value"], patient_url))
        period = {"start": row["start"], **({"end": row["end"]} if row.get("end") else {})}
        # The member is a PractitionerRole, which names its organisation: R4 allows
        # onBehalfOf only for a Practitioner member (ctm-1). The organisations the team's
        # members work for manage it together.
        team["participant"].append(
            {
                "role": [role_concept(row["keyworking_role"])],
                "member": {"reference": role_url},
                "period": period,
            }
        )
        if {"reference": org_url} not in team["managingOrganization"]:
            team["managingOrganization"].append({"reference": org_url})
    for nhs_value, team in teams.items():
        key = {"system": TEAM_IDENTIFIER, "value": nhs_value}
        entries[_urn("CareTeam", nhs_value)] = _entry(team, key, _urn("CareTeam", nhs_value))
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries.values())}


def _team(nhs_value: str, patient_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CareTeam",
        "identifier": [{"system": TEAM_IDENTIFIER, "value": nhs_value}],
        "status": "active",
        "name": "Keyworking arrangement (imported)",
        "subject": {"reference": patient_url},
        "participant": [],
        "managingOrganization": [],
    }
