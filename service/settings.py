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


def built_in_issuer(fhir_base_url: str) -> str:
    """The built-in authorization server's issuer: ``/auth`` beside ``/fhir``."""
    return fhir_base_url.removesuffix("/fhir") + "/auth"


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
    # Every JSON body is walked once before it is parsed into a model: deeper nesting or a
    # longer string is refused (400) rather than left to exhaust the parser's stack.
    max_json_depth: int = Field(
        default=64, description="Deepest nesting of objects and arrays a JSON body may have"
    )
    max_string_length: int = Field(
        default=1024 * 1024,
        description="Longest string (in characters) a JSON body may hold, as FHIR's string type",
    )
    max_bundle_entries: int = 5000
    default_page_size: int = 50
    max_page_size: int = 1000
    # Search is refused (400 too-costly) past these, so no query runs unbounded.
    search_max_parameters: int = 50
    search_max_values: int = 200
    # Long enough for any stored identifier or name a client may search for again.
    search_max_value_length: int = 8192
    search_max_includes: int = 10
    search_max_included: int = 1000
    search_timeout_ms: int = 10_000  # PostgreSQL cancels a longer search statement
    insecure_no_auth: bool = False
    trusted_issuers: str = Field(
        default="",
        description="Comma-separated external issuer URLs; the built-in issuer is always trusted",
    )
    audience: str | None = Field(
        default=None, description="The aud access tokens must carry; default the FHIR base URL"
    )
    token_algorithms: str = "RS256,RS384,RS512,ES256,ES384"
    signing_key_file: Path | None = Field(
        default=None, description="A private JWK file to sign with instead of database keys"
    )
    jwks_min_refresh_seconds: float = 30.0
    log_level: str = "INFO"
    # FastAPI's own OpenTelemetry spans, metrics and logs. Off unless asked for: with no
    # provider configured they record nothing, yet checking for one on every request was
    # 3% of a read's CPU.
    opentelemetry: bool = False
    db_pool_size: int = Field(
        default=20,
        description=(
            "PostgreSQL connections each worker keeps and the most it opens (half for the "
            "busiest reads, half for the rest; a request beyond them waits for one), so size "
            "it for the concurrent requests a worker serves"
        ),
    )
    caseload_limit: int = Field(
        default=25, description="Key worker caseload above which $accountability-gaps flags it"
    )
    gaps_within_days: int = Field(
        default=28, description="Default $accountability-gaps window for assignments ending"
    )
    gaps_max_count: int = Field(
        default=100_000,
        description="Largest _count of $accountability-gaps: it streams, so a page may be large",
    )
    request_head_timeout_s: float = Field(
        default=10.0,
        description=(
            "Seconds a request's line and headers may take from their first byte (or the "
            "connection opening): later is 408 and the connection closed"
        ),
    )
    request_body_timeout_s: float = Field(
        default=30.0,
        description="Seconds a request body may stall between bytes: longer is 408 and closed",
    )
    gzip_min_bytes: int = Field(
        default=4096,
        description=(
            "Smallest answer compressed (gzip) for a client that asks; smaller ones, a read's "
            "among them, go as they are"
        ),
    )
    cors_origins: str = Field(
        default="",
        description=(
            "Comma-separated origins browser apps may call from (CORS); none by default, "
            "'*' for any"
        ),
    )
    auto_create_placeholders: bool = Field(
        default=False,
        description=(
            "A reference to a hosted resource that never existed creates an empty placeholder "
            "(tagged so, replaced by a later write of its id) instead of being refused (422)"
        ),
    )

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
    def auth_issuer(self) -> str:
        return built_in_issuer(self.fhir_base_url)

    @property
    def token_audience(self) -> str:
        return self.audience or self.fhir_base_url

    @property
    def external_issuers(self) -> list[str]:
        return [i.strip() for i in self.trusted_issuers.split(",") if i.strip()]

    @property
    def cors_origin_list(self) -> list[str]:
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
