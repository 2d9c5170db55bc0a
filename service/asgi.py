"""The entry point uvicorn imports in each worker process."""

from __future__ import annotations

from fastapi import FastAPI

from service.app import create_app
from service.settings import Settings


def app_factory() -> FastAPI:
    return create_app(Settings())
