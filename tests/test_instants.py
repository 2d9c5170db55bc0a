"""Property: the instants the server renders (``meta.lastUpdated``, AuditEvent and Provenance
times) are what Python's own ISO formatting gives, truncated to milliseconds, for every
microsecond FHIR can express, and they read back as the millisecond they name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from service.search.dates import MAX_US, MIN_US, date_range, instant

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _expected(micros: int) -> str:
    moment = _EPOCH + timedelta(microseconds=micros)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@given(st.integers(min_value=MIN_US, max_value=MAX_US))
def test_an_instant_is_iso_8601_utc_to_the_millisecond(micros: int) -> None:
    assert instant(micros) == _expected(micros)
    low, high = date_range(instant(micros))
    assert low == micros - micros % 1000
    assert high == low + 999


def test_the_edges_of_the_range_and_of_the_epoch() -> None:
    assert instant(MIN_US) == "0001-01-01T00:00:00.000Z"
    assert instant(MAX_US) == "9999-12-31T23:59:59.999Z"
    assert instant(-1) == "1969-12-31T23:59:59.999Z"
    assert instant(0) == "1970-01-01T00:00:00.000Z"
    assert instant(1_733_300_000_123_456) == "2024-12-04T08:13:20.123Z"
