# MLflow tracking server and model registry of the team-server stack.
# Build context: infra/docker (nothing is copied in; no secrets at build time).
# Backend store, artifact destination and S3 credentials come from the environment at run time
# (see infra/docker-compose.yml and infra/k8s/mlflow.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    DO_NOT_TRACK=true

RUN pip install --no-cache-dir "mlflow[auth]==3.17.*" "psycopg2-binary>=2.9,<3" "boto3>=1.34,<2" \
    && groupadd --gid 1035 mlflow \
    && useradd --uid 1035 --gid 1035 --create-home --shell /usr/sbin/nologin mlflow

USER 1035:1035
WORKDIR /home/mlflow
EXPOSE 5000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://localhost:5000/health', timeout=4)"]

# the compose file and the Kubernetes manifest start it with --app-name basic-auth
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
