"""Runtime configuration, read from environment variables by pydantic-settings.

Settings are built by the caller (``Settings()`` in the CLI, explicit values in tests) and
passed to ``create_app``; nothing reads the environment at import time.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = PROJECT_ROOT / "var" / "keyworker.sqlite3"


def normalise_database_url(url: str) -> str:
    """Accept the plain URLs operators copy from their provider and pick the async driver."""
    for plain, async_form in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("sqlite:///", "sqlite+aiosqlite:///"),
    ):
        if url.startswith(plain):
            return async_form + url[len(plain) :]
    return url


class Settings(BaseSettings):
    """Every knob the service has; the README lists them with their environment names."""

    model_config = SettingsConfigDict(env_prefix="KEYWORKER_", extra="ignore")

    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}",
        validation_alias=AliasChoices("DATABASE_URL", "KEYWORKER_DATABASE_URL"),
    )
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str | None = Field(
        default=None,
        description="The FHIR base URL clients see (behind a proxy); default http://HOST:PORT/fhir",
    )
    max_body_bytes: int = 16 * 1024 * 1024
    default_page_size: int = 50
    max_page_size: int = 1000
    insecure_no_auth: bool = False
    log_level: str = "INFO"
    db_pool_size: int = 10

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return normalise_database_url(value)

    @property
    def fhir_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        return f"http://{self.host}:{self.port}/fhir"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
