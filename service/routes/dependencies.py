"""Typed FastAPI dependencies shared by the routers.

They are ``async`` so FastAPI calls them on the event loop: a plain ``def`` dependency is
sent through its thread pool on every request, which costs more than the lookup itself.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from service.interactions import Interactions
from service.paging import Cursors
from service.settings import Settings


async def _interactions(request: Request) -> Interactions:
    interactions: Interactions = request.app.state.interactions
    return interactions


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _cursors(request: Request) -> Cursors:
    cursors: Cursors = request.app.state.cursors
    return cursors


InteractionsDep = Annotated[Interactions, Depends(_interactions)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CursorsDep = Annotated[Cursors, Depends(_cursors)]
