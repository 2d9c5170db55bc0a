"""FastAPI's OpenTelemetry instrumentation is the operator's choice: off by default (looking
for a tracer provider on every request cost 3% of a read), FastAPI's defaults when
``KEYWORKER_OPENTELEMETRY`` is on."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from opentelemetry import trace


@pytest.mark.parametrize(("enabled", "consulted"), [(False, False), (True, True)])
async def test_opentelemetry_is_consulted_only_when_turned_on(
    app_factory: Callable[..., Awaitable[httpx.AsyncClient]],
    monkeypatch: pytest.MonkeyPatch,
    enabled: bool,
    consulted: bool,
) -> None:
    client = await app_factory(opentelemetry=enabled)
    calls: list[Any] = []
    real = trace.get_tracer_provider

    def counting() -> Any:
        calls.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    response = await client.get("/metadata")
    assert response.status_code == 200
    assert bool(calls) is consulted
