"""Loading the synthetic demo data set through the same write path as the API."""

from __future__ import annotations

import datetime

from sqlalchemy import select

from fhir_mappings.demo import demo_resources
from service.composition import build_interactions
from service.db.engine import Database
from service.db.tables import resource
from service.settings import Settings


async def load_demo(settings: Settings, *, only_if_empty: bool = False) -> int | None:
    """Write every demo resource by id (so re-loading is a no-op); None when skipped."""
    database = Database(settings.database_url)
    try:
        if only_if_empty:
            async with database.read() as connection:
                if await connection.scalar(select(resource.c.pk).limit(1)) is not None:
                    return None
        interactions = build_interactions(settings, database)
        loaded = 0
        for body in demo_resources(datetime.date.today()):
            await interactions.update(body["resourceType"], body["id"], body)
            loaded += 1
        return loaded
    finally:
        await database.dispose()
