"""How the write path is assembled: one place, so the API, the demo loader and the CSV
import all validate, derive and record exactly the same way."""

from __future__ import annotations

from collections.abc import Callable

from service.audit.provenance import ProvenanceHook
from service.auth.records import WriteGuard
from service.db.engine import Database
from service.ids import new_id
from service.interactions import Clock, Interactions, system_clock
from service.keyworking.hook import KeyworkingHook
from service.settings import Settings


def build_interactions(
    settings: Settings,
    database: Database,
    *,
    clock: Clock = system_clock,
    ids: Callable[[], str] = new_id,
) -> Interactions:
    base = settings.fhir_base_url
    return Interactions(
        database,
        base,
        clock=clock,
        ids=ids,
        hooks=(
            WriteGuard(base),
            KeyworkingHook(is_sqlite=database.is_sqlite),
            ProvenanceHook(base),
        ),
        placeholders=settings.auto_create_placeholders,
    )
