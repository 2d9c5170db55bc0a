"""The service's FastAPI application class: what it adds to FastAPI, whatever routes and
middleware ``service.app`` gives it."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp

from service.answered_errors import AnsweredErrors
from service.openapi_docs import add_components


class Service(FastAPI):
    """FastAPI with ``AnsweredErrors`` around its whole middleware stack, and in its OpenAPI
    document the schemas and answers its routes' documentation refers to
    (``service.openapi_docs``)."""

    def build_middleware_stack(self) -> ASGIApp:
        return AnsweredErrors(super().build_middleware_stack())

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            add_components(super().openapi())
        return super().openapi()
