# syntax=docker/dockerfile:1
# The service's image: `docker compose up` (docker-compose.yml) runs it with PostgreSQL and Redis.

# --- build: the locked dependencies, then the project, into /app/.venv -----------------------
FROM python:3.11-slim AS build
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN pip install --no-cache-dir uv==0.13.8
WORKDIR /app
# the dependencies first, in a layer of their own: a change to the code does not reinstall them
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY service ./service
RUN uv sync --frozen --no-dev

# --- runtime: the interpreter, the environment and what the service reads; no build tools ----
FROM python:3.11-slim AS runtime
RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin contentapi
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY service ./service
COPY migrations ./migrations
COPY seed ./seed
COPY schema ./schema
# var/ holds the embedded SQLite database when no CONTENT_API_DATABASE_URL is given
RUN mkdir -p /app/var && chown contentapi:contentapi /app/var
ENV PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    CONTENT_API_HOST=0.0.0.0 \
    CONTENT_API_PORT=8000
USER contentapi
EXPOSE 8000
# liveness only: /healthz never asks the database (a load balancer asks /readyz)
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/.venv/bin/contentapi", "healthcheck"]
CMD ["/app/.venv/bin/contentapi", "serve"]
