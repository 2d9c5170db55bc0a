"""Running a parsed search against the store: one keyset page of matches, and the total.

Pages are ordered by the resource row key, so a page boundary is a single ``pk`` and pages
stay stable while other resources are created or updated between fetches.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from service.db.tables import resource
from service.search.criteria import Criteria
from service.search.sql import where


@dataclass(frozen=True)
class Page:
    rows: list[tuple[int, str, bytes]]  # (pk, id, content)
    more: bool


async def page(
    connection: AsyncConnection,
    criteria: Criteria,
    base_url: str,
    *,
    count: int,
    after: int | None = None,
    before: int | None = None,
) -> Page:
    condition = where(criteria, base_url)
    query = select(resource.c.pk, resource.c.id, resource.c.content).where(condition)
    if after is not None:
        query = query.where(resource.c.pk > after)
    if before is not None:
        query = query.where(resource.c.pk < before)
    order = resource.c.pk.desc() if before is not None else resource.c.pk.asc()
    rows = [
        (r.pk, r.id, bytes(r.content))
        for r in await connection.execute(query.order_by(order).limit(count + 1))
    ]
    more = len(rows) > count
    rows = rows[:count]
    if before is not None:
        rows.reverse()
    return Page(rows, more)


async def total(connection: AsyncConnection, criteria: Criteria, base_url: str) -> int:
    query = select(func.count()).select_from(resource).where(where(criteria, base_url))
    return int(await connection.scalar(query) or 0)
