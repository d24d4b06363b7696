# syntax=docker/dockerfile:1.7
# One image per service of the workspace, built from the repository root:
#   docker build --build-arg SERVICE=payments-svc --build-arg PORT=8001 -t billing/payments-svc .
# SERVICE is the service's directory, which is also its package and its command. The process role is
# the container's command: `migrate` (alembic upgrade head, then exit), `api`, `worker` or `all`
# (checkout-web: `serve`), e.g. `docker run billing/payments-svc worker`. docker-compose.yml builds
# and runs them all. Dependencies come from uv.lock only (`--frozen`), as uv's Docker guide advises.

# Base images by tag. A release build pins them by digest as well (`python:3.11-slim-bookworm@sha256:...`),
# resolved by its registry at release time; the uv image's tag is the uv version the Makefile pins.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---- builder: the service's virtual environment in /app/.venv -----------------------------------
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
# The image's own Python (never a download), bytecode compiled at install, files copied out of uv's
# cache (a cache mount cannot be hard-linked into the image).
ENV UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
ARG SERVICE
RUN test -n "${SERVICE}" || { echo "--build-arg SERVICE=<service directory> is required" >&2; exit 1; }

# 1. Third-party dependencies alone, so this layer is rebuilt only when uv.lock or a pyproject changes.
#    uv reads the whole workspace (every member's pyproject.toml) but installs the service's packages.
COPY uv.lock pyproject.toml ./
COPY libs/contracts/pyproject.toml libs/contracts/
COPY libs/runtime/pyproject.toml libs/runtime/
COPY libs/client/pyproject.toml libs/client/
COPY gateway/pyproject.toml gateway/
COPY payments-svc/pyproject.toml payments-svc/
COPY providers-svc/pyproject.toml providers-svc/
COPY checkout-web/pyproject.toml checkout-web/
COPY webhook-dispatcher/pyproject.toml webhook-dispatcher/
COPY reconciliation-svc/pyproject.toml reconciliation-svc/
COPY embedded/pyproject.toml embedded/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "${SERVICE}"

# 2. The code: the shared libraries and this service, installed editable on purpose: a service finds
#    its alembic.ini and migrations/ beside its src/ (SERVICE_ROOT in each __main__.py), so the tree
#    stays at /app/<service>/ in the runtime image, where the environment's .pth files point. (Their
#    build backend, hatchling, is the one build-time download uv.lock does not pin; it builds only
#    these editable installs, whose code is what was copied.)
COPY libs/ libs/
COPY ${SERVICE}/ ${SERVICE}/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "${SERVICE}" \
    && python -m compileall -q libs "${SERVICE}/src" \
    && ln -s "/app/.venv/bin/${SERVICE}" /app/.venv/bin/service

# ---- runtime: the same base image (the environment's interpreter path must match), no uv, no root --
FROM ${PYTHON_IMAGE} AS runtime
ARG SERVICE
# The port of the service's API role: the health check's default (HEALTHCHECK_PORT) and the documented one.
ARG PORT=8000
# A fixed, unprivileged UID/GID, numeric so that an orchestrator can verify runAsNonRoot.
RUN groupadd --system --gid 10001 billing \
    && useradd --system --uid 10001 --gid billing --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin billing
WORKDIR /app
# Owned by root and read-only for the service: it writes nothing to its image (logs go to stdout).
COPY --from=builder /app/.venv /app/.venv
COPY --from=builder /app/libs /app/libs
COPY --from=builder /app/${SERVICE} /app/${SERVICE}
COPY ops/docker/healthcheck.py /usr/local/lib/billing/healthcheck.py
# Every service listens on all the container's interfaces (their settings default to loopback, right
# on a shared host, useless in a container); each reads only its own prefix.
ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BILLING_SERVICE=${SERVICE} \
    HEALTHCHECK_PORT=${PORT} \
    GATEWAY_HOST=0.0.0.0 \
    PAYMENTS_HOST=0.0.0.0 \
    PROVIDERS_HOST=0.0.0.0 \
    WEBHOOKS_HOST=0.0.0.0 \
    RECONCILIATION_HOST=0.0.0.0 \
    CHECKOUT_HOST=0.0.0.0
USER 10001:10001
EXPOSE ${PORT}
# Alive, not ready: /readyz depends on PostgreSQL and RabbitMQ, and a container restarted for their
# outage would not help. The start period covers migrations-free start-up (imports, pools).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "/usr/local/lib/billing/healthcheck.py"]
# The role is the command: `docker run <image> api` (see the top of this file). SIGTERM stops a
# process gracefully (in-flight requests finish, billing_runtime.running.serve).
ENTRYPOINT ["/app/.venv/bin/service"]
STOPSIGNAL SIGTERM
