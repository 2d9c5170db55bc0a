"""FHIR date, dateTime and instant values as closed ranges of epoch microseconds.

FHIR date search is range arithmetic: ``2024`` means the whole year, ``2024-03-05T10:00Z``
the whole minute. Every stored and searched date becomes (low, high), both inclusive, and
within the years 0001 to 9999 that every instant of the service lies in. Dates without a
time are UTC days; a value with a time must carry its zone, as R4's dateTime requires, since
which instant it names would otherwise be a guess.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -62135596800 * 1_000_000  # 0001-01-01T00:00:00Z
MAX_US = 253402300799 * 1_000_000 + 999_999  # 9999-12-31T23:59:59.999999Z

_PATTERN = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2})(?::(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def to_us(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def instant(value: int) -> str:
    """Render stored microseconds as a FHIR instant (millisecond precision, UTC).

    Every request renders one (its AuditEvent's time) and every write another; the date
    and time to the second come from a small cache, since requests arrive many to a second
    (under 1 us against 3.7 a call).
    """
    seconds, micros = divmod(value, 1_000_000)
    return f"{_to_the_second(seconds)}.{micros // 1000:03d}Z"


@lru_cache(maxsize=64)
def _to_the_second(seconds: int) -> str:
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(timespec="seconds")[:19]


@lru_cache(maxsize=4096)
def date_range(text: str) -> tuple[int, int]:
    """The inclusive (low, high) microsecond range a FHIR date/dateTime/instant denotes.

    Cached: index extraction meets the same dates again and again (a population's periods
    start on a few hundred days), and searches repeat their date values.
    """
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a FHIR date, dateTime or instant")
    parts = match.groupdict()
    if parts["hour"] and not parts["zone"]:
        raise ValueError(f"'{text}' has a time but no time zone (Z or +hh:mm), which R4 requires")
    year = int(parts["year"])
    month = int(parts["month"] or 1)
    day = int(parts["day"] or 1)
    hour = int(parts["hour"] or 0)
    minute = int(parts["minute"] or 0)
    second = int(parts["second"] or 0)
    fraction = parts["fraction"] or ""
    micro = int((fraction + "000000")[:6]) if fraction else 0
    zone = parts["zone"]
    tz: timezone = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(timedelta(minutes=sign * (int(zone[1:3]) * 60 + int(zone[4:6]))))
    start = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    try:
        end = to_us(_end(start, parts, fraction)) - 1
    except (OverflowError, ValueError):  # nothing follows the year 9999
        end = MAX_US
    # A zone can move the first or last moments past either end of the years: held within.
    return _within(to_us(start)), _within(end)


def _within(value: int) -> int:
    return min(max(value, MIN_US), MAX_US)


def _end(start: datetime, parts: dict[str, str | None], fraction: str) -> datetime:
    """The first instant after the precision ``parts`` gives ``start``."""
    if fraction:
        end = start + timedelta(microseconds=10 ** max(0, 6 - len(fraction)))
    elif parts["second"]:
        end = start + timedelta(seconds=1)
    elif parts["minute"]:
        end = start + timedelta(minutes=1)
    elif parts["hour"]:
        end = start + timedelta(hours=1)
    elif parts["day"]:
        end = start + timedelta(days=1)
    elif parts["month"]:
        end = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        end = start.replace(year=start.year + 1)
    return end
