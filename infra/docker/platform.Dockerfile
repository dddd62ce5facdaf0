# The fraudops project installed from its lock file: runs the Prefect worker (training and
# monitoring flows) and the Evidently UI of the team-server stack.
# Build context: the repository root (docker build -f infra/docker/platform.Dockerfile .);
# platform.Dockerfile.dockerignore next to this file keeps everything else (.venv, .git, .env,
# infra/) out of the context. No secrets at build time: settings come from FRAUDOPS_* at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    DO_NOT_TRACK=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false

RUN pip install --no-cache-dir "uv>=0.5,<1" \
    && groupadd --gid 1034 fraudops \
    && useradd --uid 1034 --gid 1034 --create-home --shell /usr/sbin/nologin fraudops

WORKDIR /app
# Dependencies first (cached while only the code changes), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY src ./src
COPY pipelines ./pipelines
COPY services ./services
COPY monitoring ./monitoring
RUN uv sync --locked --no-dev \
    && mkdir -p /data \
    && chown 1034:1034 /data

# uid/gid 1034 is also the user of the images `bentoml containerize` builds, so the service and
# this image can share the /data volume (prediction log, labels, reports, Evidently workspace).
# FRAUDOPS_REPO is where pipelines/prefect.yaml's pull step runs the flows from.
ENV PATH=/app/.venv/bin:$PATH \
    FRAUDOPS_HOME=/data \
    FRAUDOPS_REPO=/app

USER 1034:1034
# 8080: `prefect worker start --with-healthcheck`; 8000: `evidently ui`
EXPOSE 8080 8000

CMD ["fraudops", "--help"]
