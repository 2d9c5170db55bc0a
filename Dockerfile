# Keyworker FHIR service image.
#
# Build:  docker build -t keyworker-fhir .
# Run:    docker run -p 8080:8080 -v keyworker-data:/data keyworker-fhir
#
# Two stages on the same base image: the builder installs the project into a virtualenv at
# /opt/venv; the runtime copies only that venv (no compilers, no source tree, no pip cache).
# Both stages must use the same Python build because a venv is not relocatable between them.

FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH="/opt/venv/bin:$PATH"

RUN python -m venv /opt/venv

WORKDIR /src
# Only what the wheel needs: pyproject.toml names README.md as the long description, and
# setuptools packages `service` and `fhir_mappings` (with their package data).
COPY pyproject.toml README.md ./
COPY service ./service
COPY fhir_mappings ./fhir_mappings

# Same install step as the README's production instructions (non-editable).
RUN pip install .


FROM python:3.11-slim AS runtime

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DATABASE_URL=sqlite+aiosqlite:////data/keyworker.sqlite3

# Unprivileged service account with a fixed numeric uid/gid so that orchestrators can verify
# runAsNonRoot and volume ownership can be set predictably.
RUN groupadd --system --gid 10001 keyworker \
    && useradd --system --uid 10001 --gid keyworker --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin keyworker \
    && install -d -o keyworker -g keyworker -m 0750 /data

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
# Default SQLite database lives here (see DATABASE_URL). For PostgreSQL, set e.g.
# DATABASE_URL=postgresql+asyncpg://user:pw@db/keyworker and the volume simply stays empty.
VOLUME ["/data"]

USER 10001:10001

EXPOSE 8080

# python:3.11-slim has no curl/wget, so probe with the standard library. urlopen raises on
# connection errors and non-2xx responses, which exits non-zero (= unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).close()"]

# Migrations are deliberately NOT chained into CMD: ENTRYPOINT stays the bare console script,
# so `docker run IMAGE <subcommand>` runs any CLI subcommand, and with several replicas only
# one process applies migrations. Operators run `keyworker db upgrade` as an init step before
# starting (or upgrading) the server, e.g. a Kubernetes initContainer, a one-shot compose
# service, or by hand:
#   docker run --rm -v keyworker-data:/data keyworker-fhir db upgrade
# Optional demo data: `keyworker load-demo` (docker run ... keyworker-fhir load-demo).
# To listen on another port, override CMD and adjust EXPOSE/HEALTHCHECK to match.
ENTRYPOINT ["keyworker"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
