"""The team-server stack in infra/: the compose file and the Kubernetes manifests are valid against
their schemas (compose-spec; Kubernetes OpenAPI, strict), wired together (health checks, probes,
selectors, settings names) and hold no secret values. No Docker engine or cluster is needed.
"""

from __future__ import annotations

import ast
import copy
import importlib.metadata
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes_validate import ValidationError
from kubernetes_validate import validate as validate_k8s
from kubernetes_validate.utils import latest_version

from fraudops.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
COMPOSE_FILE = INFRA / "docker-compose.yml"
ENV_EXAMPLE = INFRA / ".env.example"
K8S = INFRA / "k8s"
KUSTOMIZATION = K8S / "kustomization.yaml"
DOCKERFILES = INFRA / "docker"
COMPOSE_SCHEMA = "vendor.compose-spec"  # the compose-spec schema check-jsonschema ships
K8S_VERSION = latest_version()  # newest Kubernetes whose schemas kubernetes-validate ships
DASK_API = "kubernetes.dask.org/v1"

SETTING_NAMES = frozenset("FRAUDOPS_" + name.upper() for name in Settings.model_fields)
LONG_RUNNING = {
    "postgres",
    "minio",
    "mlflow",
    "prefect-server",
    "prefect-worker",
    "redis",
    "service",
    "evidently-ui",
}
SECRET_NAME = re.compile(
    r"password|passwd|token|secret|api_?key|access_?key|private_?key|credential", re.I
)
COMPOSE_REFERENCE = re.compile(r"\$\{[^}]*\}")  # ${VAR}, ${VAR:-default}, ${VAR:?message}
REQUIRED_REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):\?[^}]+\}$")
URL_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:([^/\s@]+)@")
SECRET_LOOKING_TEXT = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
PLACEHOLDER = "change-me"


# --- helpers -------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment, from either the mapping or the list syntax."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "")) == "no"


def check_compose(path: Path) -> subprocess.CompletedProcess[str]:
    """check-jsonschema against the compose-spec schema it vendors (works offline)."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", COMPOSE_SCHEMA, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def kustomization() -> dict[str, Any]:
    return yaml.safe_load(KUSTOMIZATION.read_text())


def k8s_documents() -> list[dict[str, Any]]:
    """Every YAML document of every file listed in the kustomization's resources."""
    docs = []
    for name in kustomization()["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


def k8s_resource(kind: str, name: str) -> dict[str, Any]:
    found = [d for d in k8s_documents() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in k8s_documents():
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]
        elif doc["kind"] == "DaskCluster":
            for role in ("scheduler", "worker"):
                yield f"{doc['metadata']['name']}-{role}", doc["spec"][role]["spec"]


def containers() -> Iterator[tuple[str, dict[str, Any]]]:
    for name, spec in pod_specs():
        for container in spec.get("initContainers", []) + spec["containers"]:
            yield f"{name}/{container['name']}", container


def generator(kind: str, name: str) -> dict[str, Any]:
    key = {"ConfigMap": "configMapGenerator", "Secret": "secretGenerator"}[kind]
    found = [g for g in kustomization().get(key, []) if g["name"] == name]
    assert len(found) == 1, f"kustomization generates no {kind} {name}"
    return found[0]


def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def generated_keys(kind: str, name: str) -> set[str]:
    """Keys of a generated ConfigMap (literals) or Secret (the committed *.example of its envs)."""
    spec = generator(kind, name)
    keys = {literal.split("=", 1)[0] for literal in spec.get("literals", [])}
    for env_file in spec.get("envs", []):
        keys |= set(read_env_file(K8S / f"{env_file}.example"))
    return keys


def unknown_settings(names: Iterable[str]) -> set[str]:
    """FRAUDOPS_* names that no field of fraudops.settings.Settings reads (typos, stale names)."""
    return {name for name in names if name.startswith("FRAUDOPS_") and name not in SETTING_NAMES}


def literal_secrets(env: dict[str, str]) -> set[str]:
    """Names of secret-looking compose variables whose value is not a required ${VAR:?...}."""
    return {k for k, v in env.items() if SECRET_NAME.search(k) and not REQUIRED_REFERENCE.match(v)}


def literal_url_passwords(text: str) -> list[str]:
    """Passwords written literally in user:password@ URLs (${...} references removed first)."""
    return URL_CREDENTIALS.findall(COMPOSE_REFERENCE.sub("", text))


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)
    elif isinstance(node, str):
        yield node


def ignored_by_infra_gitignore() -> set[Path]:
    lines = (INFRA / ".gitignore").read_text().splitlines()
    return {INFRA / line.strip() for line in lines if line.strip() and not line.startswith("#")}


def flow_name(entrypoint: str) -> str:
    """The ``@flow(name=...)`` of a Prefect entrypoint ``path.py:function``, read without import."""
    path, function = entrypoint.split(":")
    tree = ast.parse((ROOT / path).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call):
                    for keyword in decorator.keywords:
                        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
                            return str(keyword.value.value)
    raise AssertionError(f"no @flow(name=...) on {entrypoint}")


def minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


# --- docker compose ------------------------------------------------------------------------------


def test_compose_file_is_valid_against_the_compose_spec_schema():
    result = check_compose(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_schema_check_rejects_a_service_with_an_unknown_key(tmp_path):
    broken = compose()
    broken["services"]["mlflow"]["helthcheck"] = broken["services"]["mlflow"].pop("healthcheck")
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(broken))
    result = check_compose(path)
    assert result.returncode != 0
    assert "helthcheck" in result.stdout + result.stderr


def test_compose_runs_the_whole_team_server_stack():
    stack = services()
    assert set(stack) >= LONG_RUNNING
    assert not any(one_shot(stack[name]) for name in LONG_RUNNING)


def test_every_long_running_compose_service_has_a_healthcheck():
    for name, service in services().items():
        if one_shot(service):
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name}: no healthcheck"


def test_every_depends_on_waits_for_healthy_services_or_finished_init_jobs():
    stack = services()
    for name, service in stack.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: short depends_on waits for nothing"
        for dependency, spec in depends_on.items():
            expected = (
                "service_completed_successfully"
                if one_shot(stack[dependency])
                else "service_healthy"
            )
            assert spec.get("condition") == expected, f"{name} -> {dependency}"


def test_every_published_port_is_bound_to_loopback():
    published = 0
    for name, service in services().items():
        for port in service.get("ports", []):
            published += 1
            if isinstance(port, dict):
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name}: {port}"
    assert published >= 4  # service, MLflow, Prefect and Evidently UIs at least


def test_compose_service_requires_an_api_token_a_label_token_and_a_hash_secret():
    env = environment(services()["service"])
    assert REQUIRED_REFERENCE.match(env["FRAUDOPS_API_TOKEN"])
    assert REQUIRED_REFERENCE.match(env["FRAUDOPS_LABEL_TOKEN"])
    assert REQUIRED_REFERENCE.match(env["FRAUDOPS_HASH_SECRET"])


def test_compose_console_shares_the_services_case_store_and_requires_its_secrets():
    stack = services()
    console, service = environment(stack["console"]), environment(stack["service"])
    assert console["FRAUDOPS_CASE_STORE_URL"] == service["FRAUDOPS_CASE_STORE_URL"]
    assert console["FRAUDOPS_CASE_STORE_URL"].startswith("postgresql://")
    assert REQUIRED_REFERENCE.match(console["FRAUDOPS_CONSOLE_SECRET"])
    assert REQUIRED_REFERENCE.match(console["FRAUDOPS_LABEL_TOKEN"])
    assert console["FRAUDOPS_LABEL_SERVICE_URL"] == "http://service:3000"
    assert "CREATE DATABASE cases;" in (ROOT / "infra/postgres/init.sql").read_text()


def test_compose_trainer_and_service_require_the_model_signing_key():
    stack = services()
    for name in ("service", "prefect-worker"):
        env = environment(stack[name])
        assert REQUIRED_REFERENCE.match(env["FRAUDOPS_MODEL_SIGNING_KEY"]), name


def test_k8s_trainer_and_service_read_the_model_signing_key_from_the_secret():
    worker = k8s_resource("Deployment", "prefect-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    refs = {e["name"]: e.get("valueFrom", {}) for e in container["env"]}
    secret_ref = refs["FRAUDOPS_MODEL_SIGNING_KEY"].get("secretKeyRef")
    assert secret_ref == {"name": "fraudops-secrets", "key": "FRAUDOPS_MODEL_SIGNING_KEY"}
    assert "FRAUDOPS_MODEL_SIGNING_KEY" in generated_keys("Secret", "fraudops-secrets")


def test_service_worker_and_evidently_ui_share_the_fraudops_home_volume():
    stack = services()
    for name in ("service", "prefect-worker", "evidently-ui"):
        assert "fraudops-home:/data" in stack[name]["volumes"], name
    assert environment(stack["service"])["FRAUDOPS_HOME"] == "/data"
    assert environment(stack["prefect-worker"])["FRAUDOPS_HOME"] == "/data"
    assert "fraudops-home" in compose()["volumes"]


def test_compose_settings_urls_point_at_services_of_the_stack():
    stack = services()
    for name in ("service", "prefect-worker"):
        env = environment(stack[name])
        for key in ("FRAUDOPS_TRACKING_URI", "FRAUDOPS_FEATURE_STORE", "PREFECT_API_URL"):
            if key in env:
                assert urlsplit(env[key]).hostname in stack, f"{name}: {key}={env[key]}"


def test_every_required_compose_variable_has_a_placeholder_in_env_example():
    pattern = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):\?")
    required = {name for text in strings(compose()) for name in pattern.findall(text)}
    assert required >= {"FRAUDOPS_API_TOKEN", "POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD"}
    assert required <= set(read_env_file(ENV_EXAMPLE))


def test_prefect_worker_deploys_the_project_flows_to_the_fraudops_pool():
    prefect_yaml = yaml.safe_load((ROOT / "pipelines" / "prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in prefect_yaml["deployments"]}
    train = next(d for d in prefect_yaml["deployments"] if d["name"] == "train-weekly")
    on_drift = next(d for d in prefect_yaml["deployments"] if d["name"] == "train-on-drift")
    [trigger] = on_drift["triggers"]
    assert on_drift["entrypoint"] == train["entrypoint"]
    assert trigger["expect"] == ["fraudops.drift.detected"] and trigger["enabled"]
    assert trigger["parameters"] == {"test_end": "{{ event.payload.test_end }}"}
    worker = services()["prefect-worker"]
    command = " ".join(worker["command"])
    assert pools == {"fraudops"}
    assert "prefect worker start --pool fraudops" in command
    assert "--prefect-file pipelines/prefect.yaml" in command
    assert environment(worker)["FRAUDOPS_RETRAIN_EVENT"] == "true"
    configmap = dict(
        literal.split("=", 1) for literal in generator("ConfigMap", "fraudops-settings")["literals"]
    )
    assert configmap["FRAUDOPS_RETRAIN_EVENT"] == "true"


def test_server_images_match_the_locked_client_versions():
    dockerfile = (DOCKERFILES / "mlflow.Dockerfile").read_text()
    pin = re.search(r"mlflow\[auth\]==([0-9.]+)\.\*", dockerfile)  # with the basic-auth app
    assert pin and pin.group(1) == minor(importlib.metadata.version("mlflow"))
    image = services()["prefect-server"]["image"]
    assert image.startswith(f"prefecthq/prefect:{minor(importlib.metadata.version('prefect'))}.")


# --- settings names ------------------------------------------------------------------------------


def test_unknown_settings_catches_a_misspelled_variable():
    assert unknown_settings(["FRAUDOPS_TRACKNG_URI", "FRAUDOPS_HOME", "PREFECT_API_URL"]) == {
        "FRAUDOPS_TRACKNG_URI"
    }


def test_every_fraudops_variable_in_compose_is_a_settings_field():
    names = {key for service in services().values() for key in environment(service)}
    assert "FRAUDOPS_TRACKING_URI" in names
    assert unknown_settings(names) == set()


def test_every_fraudops_variable_in_the_k8s_manifests_is_a_settings_field():
    names = generated_keys("ConfigMap", "fraudops-settings")
    names |= generated_keys("Secret", "fraudops-secrets")
    names |= {env["name"] for _, c in containers() for env in c.get("env", [])}
    assert "FRAUDOPS_FEATURE_STORE" in names
    assert unknown_settings(names) == set()


# --- kubernetes ----------------------------------------------------------------------------------


def test_every_kustomization_resource_exists_and_validates_strictly():
    resources = kustomization()["resources"]
    assert resources
    for name in resources:
        assert (K8S / name).is_file(), name
    docs = k8s_documents()
    for doc in docs:
        if doc["apiVersion"] != DASK_API:  # custom resources: see the DaskCluster tests
            validate_k8s(doc, K8S_VERSION, strict=True)
    kinds = {doc["kind"] for doc in docs}
    assert kinds >= {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"}


def dask_cluster_schema() -> dict[str, Any]:
    """The DaskCluster CRD's schema, as the pinned dask-kubernetes operator ships it."""
    from importlib import resources

    chart = "operator/deployment/helm/dask-kubernetes-operator"  # the CRD with its refs resolved
    crd_file = resources.files("dask_kubernetes") / chart / "crds/daskcluster.yaml"
    crd = yaml.safe_load(crd_file.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == DASK_API.split("/")[1]]
    assert crd["spec"]["group"] == DASK_API.split("/")[0]
    return version["schema"]["openAPIV3Schema"]


def validate_dask_cluster(doc: dict[str, Any]) -> None:
    """The operator's CRD schema, then each embedded pod spec and the scheduler's Service
    strictly (the CRD leaves unknown fields unchecked)."""
    import jsonschema

    jsonschema.validate(doc, dask_cluster_schema())
    for role in ("scheduler", "worker"):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": role}}
        validate_k8s({**pod, "spec": doc["spec"][role]["spec"]}, K8S_VERSION, strict=True)
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "scheduler"}}
    validate_k8s({**service, "spec": doc["spec"]["scheduler"]["service"]}, K8S_VERSION, strict=True)


def test_the_dask_cluster_validates_against_the_operator_crd_and_kubernetes():
    cluster = k8s_resource("DaskCluster", "fraudops-dask")
    validate_dask_cluster(cluster)
    broken = copy.deepcopy(cluster)
    broken["spec"]["worker"]["replicas"] = "two"
    with pytest.raises(Exception, match="two"):
        validate_dask_cluster(broken)
    broken = copy.deepcopy(cluster)
    broken["spec"]["worker"]["spec"]["containers"][0]["memorylimit"] = "8GiB"
    with pytest.raises(ValidationError):
        validate_dask_cluster(broken)


def test_the_dask_cluster_and_its_clients_speak_mutual_tls_only():
    cluster = k8s_resource("DaskCluster", "fraudops-dask")
    worker = cluster["spec"]["worker"]["spec"]["containers"][0]
    scheduler = cluster["spec"]["scheduler"]["spec"]["containers"][0]
    assert scheduler["args"][scheduler["args"].index("--protocol") + 1] == "tls"
    assert next(a for a in worker["args"] if "://" in a).startswith(
        "tls://fraudops-dask-scheduler:"
    )
    for role, container in (("scheduler", scheduler), ("worker", worker)):
        env = {e["name"]: e["value"] for e in container["env"]}
        assert env["DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION"] == "True", role
        upper = role.upper()
        assert {
            f"DASK_DISTRIBUTED__COMM__TLS__{upper}__CERT",
            "DASK_DISTRIBUTED__COMM__TLS__CA_FILE",
        } <= set(env)
    worker_pod = dict(pod_specs())["prefect-worker"]
    client = {e["name"]: e.get("value") for e in worker_pod["containers"][0]["env"]}
    assert client["FRAUDOPS_DASK_ADDRESS"].startswith("tls://fraudops-dask-scheduler:8786")
    pem = {client[f"FRAUDOPS_DASK_TLS_{k}"] for k in ("CA_FILE", "CERT", "KEY")}
    assert all(path.startswith("/etc/dask-tls/") for path in pem)
    generated = {g["name"] for g in kustomization()["secretGenerator"]}
    assert "dask-tls" in generated


def test_only_the_prefect_worker_and_the_dask_pods_reach_the_dask_cluster():
    policies = {
        d["metadata"]["name"]: d["spec"] for d in k8s_documents() if d["kind"] == "NetworkPolicy"
    }
    for name in ("dask-scheduler-from-worker-and-cluster", "dask-workers-from-cluster"):
        peers = [p["podSelector"]["matchLabels"] for p in policies[name]["ingress"][0]["from"]]
        assert peers == [
            {"app.kubernetes.io/name": "prefect-worker"},
            {"dask.org/cluster-name": "fraudops-dask"},
        ], name


def test_kubernetes_validation_rejects_a_deployment_with_a_string_replica_count():
    deployment = copy.deepcopy(k8s_resource("Deployment", "fraudops-service"))
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(ValidationError):
        validate_k8s(deployment, K8S_VERSION, strict=True)


def test_kubernetes_validation_rejects_an_unknown_field_in_strict_mode():
    deployment = copy.deepcopy(k8s_resource("Deployment", "fraudops-service"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(ValidationError):
        validate_k8s(deployment, K8S_VERSION, strict=True)


def test_kustomization_puts_everything_in_the_fraudops_namespace_with_standard_labels():
    assert kustomization()["namespace"] == "fraudops"
    for doc in k8s_documents():
        labels = doc["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "fraudops", doc["metadata"]["name"]
        assert labels.get("app.kubernetes.io/name"), doc["metadata"]["name"]
        assert doc["metadata"].get("namespace", "fraudops") == "fraudops"


def test_service_deployment_probes_readyz_and_livez_on_the_container_port():
    deployment = k8s_resource("Deployment", "fraudops-service")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
    assert 3000 in ports.values()
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        http = container[probe]["httpGet"]
        assert http["path"] == path
        assert ports.get(http["port"], http["port"]) == 3000
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])


def test_service_deployment_reads_settings_and_secrets_from_the_generated_objects():
    deployment = k8s_resource("Deployment", "fraudops-service")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    refs = {(kind, ref["name"]) for e in container["envFrom"] for kind, ref in e.items()}
    assert refs == {("configMapRef", "fraudops-settings"), ("secretRef", "fraudops-secrets")}
    assert {"FRAUDOPS_API_TOKEN", "FRAUDOPS_LABEL_TOKEN", "FRAUDOPS_HASH_SECRET"} <= generated_keys(
        "Secret", "fraudops-secrets"
    )


def test_the_console_reads_the_shared_case_store_and_its_session_key_from_the_secret():
    deployment = k8s_resource("Deployment", "fraudops-console")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["fraudops", "console"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FRAUDOPS_CONSOLE_HOST"] == "0.0.0.0"
    refs = {(kind, ref["name"]) for e in container["envFrom"] for kind, ref in e.items()}
    assert ("secretRef", "fraudops-secrets") in refs
    secrets = generated_keys("Secret", "fraudops-secrets")
    assert {"FRAUDOPS_CONSOLE_SECRET", "FRAUDOPS_CASE_STORE_URL", "FRAUDOPS_LABEL_TOKEN"} <= secrets
    example = (K8S / "secrets.env.example").read_text()
    assert "FRAUDOPS_CASE_STORE_URL=postgresql://" in example  # shared, never a replica's SQLite
    port = container["ports"][0]["containerPort"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz" and port == 8300


def test_every_configmap_and_secret_key_a_container_reads_is_generated():
    for where, container in containers():
        for env in container.get("env", []):
            source = env.get("valueFrom", {})
            for kind, ref_kind in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
                ref = source.get(ref_kind)
                if ref and not ref.get("optional"):
                    assert ref["key"] in generated_keys(kind, ref["name"]), f"{where}: {ref}"
        for env_from in container.get("envFrom", []):
            if "configMapRef" in env_from:
                generator("ConfigMap", env_from["configMapRef"]["name"])
            if "secretRef" in env_from:
                generator("Secret", env_from["secretRef"]["name"])


def test_hpa_scales_the_service_deployment_between_two_and_ten_replicas_on_cpu():
    hpa = k8s_resource("HorizontalPodAutoscaler", "fraudops-service")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    k8s_resource(target["kind"], target["name"])  # exists
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        "fraudops-service",
    )
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 10)
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"


def test_pdb_and_service_select_the_service_deployment_pods():
    deployment = k8s_resource("Deployment", "fraudops-service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    pdb = k8s_resource("PodDisruptionBudget", "fraudops-service")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    service = k8s_resource("Service", "fraudops-service")
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"][0]["targetPort"] in {"http", 3000}


def test_every_k8s_service_selects_the_pods_of_a_deployment():
    templates = [
        doc["spec"]["template"]["metadata"]["labels"]
        for doc in k8s_documents()
        if "template" in doc.get("spec", {})
    ]
    for doc in k8s_documents():
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"].items()
            assert any(selector <= labels.items() for labels in templates), doc["metadata"]["name"]


def test_k8s_settings_urls_point_at_services_of_the_kustomization():
    settings = dict(
        literal.split("=", 1) for literal in generator("ConfigMap", "fraudops-settings")["literals"]
    )
    ports = {
        doc["metadata"]["name"]: {p["port"] for p in doc["spec"]["ports"]}
        for doc in k8s_documents()
        if doc["kind"] == "Service"
    }
    for key in ("FRAUDOPS_TRACKING_URI", "FRAUDOPS_FEATURE_STORE", "FRAUDOPS_LABEL_SERVICE_URL"):
        url = urlsplit(settings[key])
        assert url.hostname in ports and url.port in ports[url.hostname], f"{key}={url.geturl()}"


def test_prefect_worker_gets_its_api_url_from_a_configmap_and_polls_the_fraudops_pool():
    worker = k8s_resource("Deployment", "prefect-worker")
    (container,) = worker["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert "configMapKeyRef" in env["PREFECT_API_URL"]["valueFrom"]
    assert "prefect worker start --pool fraudops" in " ".join(container["args"])


def test_mlflow_deployment_takes_its_backend_store_from_a_secret_and_stores_artifacts_in_s3():
    mlflow = k8s_resource("Deployment", "mlflow")
    (container,) = mlflow["spec"]["template"]["spec"]["containers"]
    (script,) = container["args"]
    args = script.split()
    env = {e["name"]: e for e in container["env"]}
    assert args[args.index("--backend-store-uri") + 1] == '"$MLFLOW_BACKEND_STORE_URI"'
    assert "secretKeyRef" in env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]
    assert "--serve-artifacts" in args
    platform = dict(
        literal.split("=", 1) for literal in generator("ConfigMap", "fraudops-platform")["literals"]
    )
    assert platform["MLFLOW_ARTIFACTS_DESTINATION"].startswith("s3://")
    k8s_resource("Service", "mlflow")


def test_mlflow_runs_its_basic_auth_app_with_secrets_and_each_client_has_its_own_account():
    (container,) = k8s_resource("Deployment", "mlflow")["spec"]["template"]["spec"]["containers"]
    assert "exec mlflow server --app-name basic-auth" in container["args"][0]
    env = {e["name"]: e for e in container["env"]}
    for key in ("MLFLOW_AUTH_DATABASE_URI", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        assert env[key]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-secrets", key
    accounts = {}
    for deployment in ("prefect-worker", "fraudops-service"):
        (client,) = k8s_resource("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
        client_env = {e["name"]: e for e in client["env"]}
        password = client_env["MLFLOW_TRACKING_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
        accounts[deployment] = (client_env["MLFLOW_TRACKING_USERNAME"]["value"], password)
    assert accounts == {
        "prefect-worker": ("trainer", "MLFLOW_TRAINER_PASSWORD"),
        "fraudops-service": ("scorer", "MLFLOW_SCORER_PASSWORD"),
    }
    assert {"MLFLOW_TRAINER_PASSWORD", "MLFLOW_SCORER_PASSWORD"} <= generated_keys(
        "Secret", "mlflow-secrets"
    )
    k8s_resource("Job", "mlflow-users")
    stack = services()
    assert "--app-name basic-auth" in " ".join(stack["mlflow"]["command"])
    assert environment(stack["prefect-worker"])["MLFLOW_TRACKING_USERNAME"] == "trainer"
    assert environment(stack["service"])["MLFLOW_TRACKING_USERNAME"] == "scorer"


def test_the_prefect_server_requires_an_auth_string_with_csrf_on_and_its_clients_send_it():
    stack = services()
    server = environment(stack["prefect-server"])
    assert REQUIRED_REFERENCE.match(server["PREFECT_SERVER_API_AUTH_STRING"])
    assert server["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    assert server["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"] == "http://127.0.0.1:4200"
    worker = environment(stack["prefect-worker"])
    assert worker["PREFECT_API_AUTH_STRING"] == server["PREFECT_SERVER_API_AUTH_STRING"]
    (k8s_worker,) = k8s_resource("Deployment", "prefect-worker")["spec"]["template"]["spec"][
        "containers"
    ]
    env = {e["name"]: e for e in k8s_worker["env"]}
    assert env["PREFECT_API_AUTH_STRING"]["valueFrom"]["secretKeyRef"]["name"] == "worker-secrets"
    # the service reads fraudops-secrets whole: the worker's Prefect credential is not in it
    assert "PREFECT_API_AUTH_STRING" not in generated_keys("Secret", "fraudops-secrets")


def test_network_policies_deny_by_default_and_open_mlflow_and_redis_to_their_clients_only():
    policies = {
        d["metadata"]["name"]: d["spec"] for d in k8s_documents() if d["kind"] == "NetworkPolicy"
    }
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}

    def sources(spec):
        return {
            peer["podSelector"]["matchLabels"].get("app.kubernetes.io/name", "dask pods")
            for rule in spec["ingress"]
            for peer in rule.get("from", [])
        }

    by_target = {
        s["podSelector"]["matchLabels"].get("app.kubernetes.io/name"): s
        for s in policies.values()
        if s["podSelector"]
    }
    assert sources(by_target["mlflow"]) == {"prefect-worker", "fraudops-service", "mlflow-users"}
    assert sources(by_target["redis"]) == {"fraudops-service"}
    deployments = {
        d["metadata"]["name"] for d in k8s_documents() if d["kind"] in {"Deployment", "Job"}
    }
    assert sources(by_target["mlflow"]) | sources(by_target["redis"]) <= deployments


def test_every_pod_runs_as_non_root_with_resource_limits():
    for name, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"].get("runAsUser", 0) != 0, name
    for where, container in containers():
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, where
        assert container["resources"]["limits"], where


def test_secret_env_files_are_committed_only_as_ignored_examples():
    real = [INFRA / ".env"]
    for spec in kustomization()["secretGenerator"]:
        for env_file in spec.get("envs", []):
            assert (K8S / f"{env_file}.example").is_file(), env_file
            real.append(K8S / env_file)
        for entry in spec.get("files", []):  # key=path: certificates, made by the user
            real.append(K8S / entry.split("=")[-1])
    ignored = ignored_by_infra_gitignore()
    assert all(path in ignored or set(path.parents) & ignored for path in real), real
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return  # the .gitignore lines were checked above; git itself confirms below
    paths = [str(path.relative_to(ROOT)) for path in real]
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", *paths],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert set(result.stdout.split()) == set(paths), result.stderr


# --- images --------------------------------------------------------------------------------------


def test_dockerfiles_run_as_a_non_root_user_and_take_no_secrets():
    for dockerfile in sorted(DOCKERFILES.glob("*.Dockerfile")):
        lines = [line.strip() for line in dockerfile.read_text().splitlines()]
        users = [line.split()[1] for line in lines if line.startswith("USER ")]
        assert users and users[-1].split(":")[0] not in {"root", "0"}, dockerfile.name
        for line in lines:
            if line.startswith(("ENV ", "ARG ")):
                assert not SECRET_NAME.search(line), f"{dockerfile.name}: {line}"


def test_platform_image_copies_only_what_its_dockerignore_lets_in():
    dockerfile = (DOCKERFILES / "platform.Dockerfile").read_text()
    allowed = {
        line[1:].rstrip("/")
        for line in (DOCKERFILES / "platform.Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    copied = [
        source
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
        if not source.startswith("--")
    ]
    assert {"pyproject.toml", "uv.lock", "src", "pipelines", "services", "monitoring"} <= set(
        copied
    )
    for source in copied:
        assert (ROOT / source).exists(), source
        assert source in allowed, f"{source} is excluded from the build context"


# --- secrets -------------------------------------------------------------------------------------


def test_secret_checks_flag_literal_values():
    assert literal_secrets({"FRAUDOPS_API_TOKEN": "s3cr3t", "FRAUDOPS_HOME": "/data"}) == {
        "FRAUDOPS_API_TOKEN"
    }
    assert literal_secrets({"FRAUDOPS_API_TOKEN": "${FRAUDOPS_API_TOKEN:?set it}"}) == set()
    assert literal_url_passwords("postgresql://fraudops:hunter2@postgres:5432/mlflow") == [
        "hunter2"
    ]
    assert literal_url_passwords("postgresql://fraudops:${PW:?set PW}@postgres:5432/mlflow") == []


def test_compose_secrets_are_required_variables_never_values():
    for name, service in services().items():
        assert literal_secrets(environment(service)) == set(), name
    for text in strings(compose()):
        assert literal_url_passwords(text) == [], text


def test_k8s_secrets_come_only_from_the_secret_generator():
    for doc in k8s_documents():
        assert doc["kind"] != "Secret", "write secrets to the git-ignored env files instead"
    for where, container in containers():
        for env in container.get("env", []):
            if SECRET_NAME.search(env["name"]):
                assert "secretKeyRef" in env.get("valueFrom", {}), f"{where}: {env['name']}"
    for spec in kustomization()["configMapGenerator"]:
        for literal in spec.get("literals", []):
            assert not SECRET_NAME.search(literal.split("=", 1)[0]), literal
            assert literal_url_passwords(literal) == [], literal


def test_example_env_files_hold_placeholders_only():
    examples = [ENV_EXAMPLE, *sorted(K8S.glob("*.env.example"))]
    assert len(examples) >= 2
    for path in examples:
        for key, value in read_env_file(path).items():
            if SECRET_NAME.search(key):
                assert value.startswith(PLACEHOLDER), f"{path.name}: {key}"
            for password in literal_url_passwords(value):
                assert password.startswith(PLACEHOLDER), f"{path.name}: {key}"


def test_no_secret_looking_text_in_any_committed_infra_file():
    ignored = ignored_by_infra_gitignore()
    files = [p for p in INFRA.rglob("*") if p.is_file() and p not in ignored]
    assert COMPOSE_FILE in files
    for path in files:
        text = path.read_text()
        assert not SECRET_LOOKING_TEXT.search(text), path
        if not path.name.endswith(".example"):
            assert literal_url_passwords(text) == [], path


def _memory_bytes(size: str) -> int:
    """Bytes of a Redis (``768mb``, ``2gb``) or Kubernetes (``1Gi``, ``256Mi``) memory size."""
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "ki": 2**10, "mi": 2**20, "gi": 2**30}
    number, unit = re.fullmatch(r"(\d+)([a-z]+)", size.lower()).groups()  # type: ignore[union-attr]
    return int(int(number) * units[unit])


def test_redis_has_a_memory_bound_and_never_evicts_an_entitys_events():
    command = compose()["services"]["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1] == "${REDIS_MAXMEMORY:-2gb}"
    pod = k8s_resource("Deployment", "redis")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "noeviction"
    bound = _memory_bytes(args[args.index("--maxmemory") + 1])
    assert bound < _memory_bytes(container["resources"]["limits"]["memory"])  # room for Redis
