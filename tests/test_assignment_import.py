"""CSV onboarding: one transaction per file, every bad row named, idempotent re-runs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.assignment_import import import_assignments
from service.errors import Unprocessable
from tests.servers import environment, keyworker, keyworker_ok

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "assignments.csv"
NHS = "https://fhir.nhs.uk/Id/nhs-number"
StateFn = Callable[[], Awaitable[dict[str, int]]]


async def _import(app_state: Any, text: str, *, skip: bool = False) -> Any:
    return await import_assignments(
        app_state.interactions, text, skip_bad_rows=skip, max_entries=5000
    )


async def test_sample_file_creates_everything_once(
    client: httpx.AsyncClient, app_state: Any, db_state: StateFn
) -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    report = await _import(app_state, text)
    assert report.rows == 8
    assert report.outcomes == {
        "Patient created": 3,
        "Practitioner created": 5,
        "PractitionerRole created": 5,
        "Organization created": 3,
        "CareTeam created": 3,
    }
    bundle = (await client.get(f"/CareTeam?subject:identifier={NHS}|9990002010")).json()
    team = bundle["entry"][0]["resource"]
    roles = [p["role"][0]["coding"][0]["code"] for p in team["participant"]]
    assert roles == ["accountable-professional", "keyworker", "keyworker"]
    assert team["participant"][1]["period"] == {"start": "2024-02-01", "end": "2025-01-31"}
    member = team["participant"][2]["member"]["reference"]
    role = (await client.get(f"/{member}")).json()
    assert {"system": "email", "value": "declan.byrne@leeds.gov.uk", "use": "work"} in role[
        "telecom"
    ]
    practitioner = (await client.get(f"/{role['practitioner']['reference']}")).json()
    assert practitioner["name"][0]["family"] == "Byrne"

    before = await db_state()
    again = await _import(app_state, text)
    assert set(again.outcomes) == {
        f"{t} unchanged" for t in ("Patient", "Practitioner", "PractitionerRole", "Organization")
    } | {"CareTeam unchanged"}
    assert await db_state() == before


BAD_ROWS = (
    "9990002003,Smith,Ann,1950-01-01,S1,Jones,Bob,,B86001,Surgery,,,keyworker,2025-01-01,\n"
    "9990002002,Smith,Ann,1950-01-01,S1,Jones,Bob,,B86001,Surgery,,,boss,2025-01-01,\n"
    "9990002002,Smith,Ann,1950-13-01,S1,Jones,Bob,,B86001,Surgery,not-an-email,,keyworker,"
    "2025-01-01,2024-01-01\n"
)


async def test_bad_rows_are_named_and_nothing_is_written(
    client: httpx.AsyncClient, app_state: Any, db_state: StateFn
) -> None:
    text = SAMPLE.read_text(encoding="utf-8") + BAD_ROWS
    before = await db_state()
    with pytest.raises(Unprocessable) as refused:
        await _import(app_state, text)
    messages = [i.diagnostics for i in refused.value.issues]
    assert messages[0].startswith("line 10: nhs_number '9990002003' fails the NHS number check")
    assert messages[1].startswith("line 11: keyworking_role 'boss'")
    assert "birth_date '1950-13-01'" in messages[2] and "email" in messages[2]
    assert "end is before start" in messages[2]
    assert len(messages) == 3
    assert await db_state() == before

    skipped = await _import(app_state, text, skip=True)
    assert skipped.rows == 8
    assert [b.line for b in skipped.skipped] == [10, 11, 12]
    assert any("line 11 skipped" in i.diagnostics for i in skipped.issues())
    assert (await client.get(f"/Patient?identifier={NHS}|9990002029")).json()["entry"]


async def test_a_header_without_required_columns_is_refused(app_state: Any) -> None:
    with pytest.raises(Unprocessable) as refused:
        await _import(app_state, "nhs_number,patient_family\n9990002002,Adeyemi\n")
    assert refused.value.issues[0].diagnostics.startswith("line 1: header lacks columns:")


def test_the_cli_imports_and_exits_non_zero_on_bad_rows(tmp_path: Path) -> None:
    env = environment(f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}")
    keyworker_ok(env, "db", "upgrade")
    done = keyworker(env, "import", str(SAMPLE))
    assert done.returncode == 0, done.stderr
    assert "3 Patient created" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text(SAMPLE.read_text(encoding="utf-8") + BAD_ROWS, encoding="utf-8")
    refused = keyworker(env, "import", str(bad))
    assert refused.returncode == 1
    assert "line 10" in refused.stderr and "nothing was written" in refused.stderr
    partial = keyworker(env, "import", "--skip-bad-rows", str(bad))
    assert partial.returncode == 0, partial.stderr
    assert "3 Patient unchanged" in partial.stdout and "line 12 skipped" in partial.stdout
