"""Instants for keyworking periods: epoch microseconds, half-open ``[start, end)``.

A period ``{"start": "2026-01-01", "end": "2026-06-30"}`` covers all of 30 June: a FHIR date
denotes the whole day (month, year), so an end is the end of what it names. ``None`` is an
open bound. Values without a zone are read as UTC, as the rest of the service does.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def micros(moment: datetime.datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def to_datetime(value: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=value)


@lru_cache(maxsize=4096)
def bounds(text: str) -> tuple[int, int]:
    """The half-open range a FHIR date or dateTime names; ValueError when it is neither.

    Cached: the rules, the projection and its readers parse the same few hundred dates
    (participants' start and end days) over and over, a bulk load most of all.
    """
    parts = text.split("-")
    if "T" not in text and 1 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
        year, month, day = (int(p) for p in [*parts, "1", "1"][:3])
        first = datetime.datetime(year, month, day, tzinfo=datetime.UTC)
        if len(parts) == 3:
            after = first + datetime.timedelta(days=1)
        elif len(parts) == 2:
            after = (first + datetime.timedelta(days=32)).replace(day=1)
        else:
            after = first.replace(year=year + 1)
        return micros(first), micros(after)
    moment = datetime.datetime.fromisoformat(text)
    return micros(moment), micros(moment) + 1


def period_bounds(period: Mapping[str, Any] | None) -> tuple[int | None, int | None]:
    """(start, end) of a FHIR Period; ValueError for an unreadable date."""
    period = period or {}
    start = period.get("start")
    end = period.get("end")
    return (
        bounds(start)[0] if isinstance(start, str) else None,
        bounds(end)[1] if isinstance(end, str) else None,
    )


def covers(start: int | None, end: int | None, at: int) -> bool:
    return (start is None or start <= at) and (end is None or at < end)


def overlap(a: tuple[int | None, int | None], b: tuple[int | None, int | None]) -> bool:
    """Whether two half-open ranges share an instant."""
    a_start, a_end = a
    b_start, b_end = b
    return (a_end is None or b_start is None or b_start < a_end) and (
        b_end is None or a_start is None or a_start < b_end
    )


def day(value: int) -> str:
    return to_datetime(value).date().isoformat()


def period_json(start: int | None, end: int | None) -> dict[str, str]:
    """A FHIR Period for a half-open range that starts and ends on day boundaries (or not)."""
    out: dict[str, str] = {}
    if start is not None:
        out["start"] = _render(start, closing=False)
    if end is not None:
        out["end"] = _render(end, closing=True)
    return out


@lru_cache(maxsize=4096)
def _render(value: int, *, closing: bool) -> str:
    """Cached as ``bounds`` is: answers show the same few hundred period edges again and again."""
    moment = to_datetime(value)
    if moment.time() == datetime.time(0):
        shown = moment - datetime.timedelta(days=1) if closing else moment
        return shown.date().isoformat()
    if closing:
        moment -= datetime.timedelta(microseconds=1)
    return moment.isoformat().replace("+00:00", "Z")


def instant(value: int) -> str:
    """A FHIR instant (UTC) for epoch microseconds."""
    return to_datetime(value).isoformat().replace("+00:00", "Z")
