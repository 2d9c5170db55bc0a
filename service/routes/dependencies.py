"""Typed FastAPI dependencies shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from service.interactions import Interactions
from service.paging import Cursors
from service.settings import Settings


def _interactions(request: Request) -> Interactions:
    interactions: Interactions = request.app.state.interactions
    return interactions


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _cursors(request: Request) -> Cursors:
    cursors: Cursors = request.app.state.cursors
    return cursors


InteractionsDep = Annotated[Interactions, Depends(_interactions)]
SettingsDep = Annotated[Settings, Depends(_settings)]
CursorsDep = Annotated[Cursors, Depends(_cursors)]
