"""The GitHub Actions workflows: linted by actionlint, valid against GitHub's schema, and doing
what the README says (CI runs `make lint` and `make test` against PostgreSQL and Redis; release
pushes the serving image on tags; retrain runs weekly against the team's servers from secrets).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fraudops.settings import MODEL_KINDS

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOWS_DIR.glob("*.yml"), *WORKFLOWS_DIR.glob("*.yaml")])
ACTIONLINT = Path(sys.executable).parent / "actionlint"
EXPRESSION = re.compile(r"^\$\{\{\s*(.+?)\s*\}\}$")
SECRET_NAME = re.compile(r"password|passwd|token|secret|api_?key|private_?key|credential", re.I)
# A reference that is not a stored secret, or a safe-to-show value, never counts as a secret.
SECRET_SOURCES = re.compile(r"^(secrets\.[A-Za-z_][A-Za-z0-9_]*|github\.token)$")
SECRET_LOOKING_TEXT = re.compile(
    r"gh[pousr]_[A-Za-z0-9]{20,}"  # GitHub tokens
    r"|AKIA[0-9A-Z]{16}"  # AWS access key ids
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|[a-z][a-z0-9+.-]*://[^/\s:@${}]+:[^/\s@${}]+@"  # user:password@ in a URL
)


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((WORKFLOWS_DIR / name).read_text())


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` block; PyYAML reads the bare key `on` as the boolean True."""
    on = workflow["on"] if "on" in workflow else workflow[True]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), on
    return on


def steps(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def run_lines(workflow: dict[str, Any]) -> list[str]:
    """Every non-empty, non-comment line of every `run:` script."""
    return [
        line.strip()
        for step in steps(workflow)
        for line in step.get("run", "").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]


def literal_secrets(node: Any, path: str = "") -> list[str]:
    """Where a secret-named key holds a literal rather than `${{ secrets.X }}`."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if isinstance(value, str | int | float) and SECRET_NAME.search(str(key)):
                match = EXPRESSION.match(str(value).strip())
                if not (match and SECRET_SOURCES.match(match.group(1))):
                    found.append(f"{here} = {value!r}")
            else:
                found += literal_secrets(value, here)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found += literal_secrets(item, f"{path}[{index}]")
    return found


def actionlint(*paths: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert ACTIONLINT.is_file(), f"no actionlint beside {sys.executable} (uv sync --locked)"
    return subprocess.run(
        [str(ACTIONLINT), "-no-color", *map(str, paths)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_three_workflows_exist():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "release.yml", "retrain.yml"}


def test_every_workflow_passes_actionlint():
    result = actionlint(*WORKFLOWS, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("step", "rule"),
    [
        ('- run: echo "${{ github.event.issue.title }}"', "[expression]"),
        ("- run: echo hi\n    needs: no-such-job", "[job-needs]"),
        ("- run: echo hi\n        timeout-minute: 5", "[syntax-check]"),
    ],
    ids=["script-injection", "undefined-needs", "unknown-key"],
)
def test_actionlint_rejects_a_broken_workflow(tmp_path, step, rule):
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    broken = workflows / "broken.yml"
    broken.write_text(
        f"on: issues\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      {step}\n"
    )
    result = actionlint(broken, cwd=tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr
    assert rule in result.stdout, result.stdout + result.stderr


def test_every_workflow_validates_against_the_github_workflow_schema():
    result = check_jsonschema(*WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_workflow_without_jobs(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\nstages:\n  - build\n")
    result = check_jsonschema(broken)
    assert result.returncode != 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_read_only_by_default_and_every_job_has_a_timeout(path):
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"]["contents"] == "read"
    assert set(workflow["permissions"].values()) <= {"read", "write", "none"}
    for name, job in workflow["jobs"].items():
        assert 0 < job["timeout-minutes"] <= 180, name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_has_no_literal_secret_and_no_expression_inside_a_script(path):
    text = path.read_text()
    workflow = yaml.safe_load(text)
    assert literal_secrets(workflow) == []
    assert SECRET_LOOKING_TEXT.search(text) is None
    for step in steps(workflow):
        # values reach scripts through `env:` only (actionlint's script-injection advice)
        assert "${{" not in step.get("run", ""), step
        uses = step.get("uses")
        if uses:  # a tag can be moved to other code; a commit cannot
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), f"unpinned action {uses}"
    for line in text.splitlines():
        if re.match(r"\s*-? ?uses: ", line):
            assert re.search(r"@[0-9a-f]{40} # v\d+\.\d+\.\d+$", line), f"no version note: {line}"


def test_the_secret_check_catches_a_plain_password():
    workflow = {
        "jobs": {
            "a": {
                "env": {"MLFLOW_TRACKING_PASSWORD": "hunter2", "API_TOKEN": "${{ env.X }}"},
                "steps": [{"with": {"password": "${{ secrets.GITHUB_TOKEN }}"}}],
            }
        }
    }
    assert literal_secrets(workflow) == [
        ".jobs.a.env.MLFLOW_TRACKING_PASSWORD = 'hunter2'",
        ".jobs.a.env.API_TOKEN = '${{ env.X }}'",
    ]
    assert SECRET_LOOKING_TEXT.search("uri: postgresql://mlflow:s3cret@db:5432/mlflow")
    assert SECRET_LOOKING_TEXT.search("uri: ${{ secrets.URI }}") is None


def test_ci_runs_the_readme_commands_against_postgres_and_redis():
    workflow = load("ci.yml")
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" in on
    assert workflow["concurrency"]["cancel-in-progress"] is True

    lines = run_lines(workflow)
    assert "make lint" in lines
    assert "make test" in lines
    assert "make audit" in lines
    (test_job,) = [
        job
        for job in workflow["jobs"].values()
        if any(step.get("run", "").strip() == "make test" for step in job["steps"])
    ]
    assert test_job["runs-on"] == "ubuntu-latest"
    uses = [step.get("uses") for step in test_job["steps"]]
    assert any(u and u.startswith("actions/checkout@") for u in uses)
    assert any(u and u.startswith("actions/setup-python@") for u in uses)
    assert "3.11" in [step.get("with", {}).get("python-version") for step in test_job["steps"]]

    postgres = test_job["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert postgres["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres["ports"] == ["5432:5432"]
    assert "--health-cmd pg_isready" in postgres["options"]
    redis = test_job["services"]["redis"]
    assert redis["image"] == "redis:7"
    assert redis["ports"] == ["6379:6379"]
    assert '--health-cmd "redis-cli ping"' in redis["options"]

    # the browser tests call `chromium`: it is put on PATH before `make test` runs
    scripts = [step.get("run", "") for step in test_job["steps"]]
    chromium = next(i for i, s in enumerate(scripts) if "/usr/local/bin/chromium" in s)
    assert chromium < scripts.index("make test")


def test_release_pushes_the_service_image_only_from_version_tags_in_a_protected_environment():
    workflow = load("release.yml")
    on = triggers(workflow)
    assert on == {"push": {"tags": ["v*"]}}  # no manual run from a branch named like a tag
    assert workflow["permissions"]["packages"] == "write"

    (job,) = workflow["jobs"].values()
    assert job["environment"] == "release"
    assert "github.ref_type == 'tag'" in job["if"]
    assert job["env"]["BENTOML_HOME"].startswith("${{ github.workspace }}/")
    assert workflow["env"]["DO_NOT_TRACK"] == workflow["env"]["BENTOML_DO_NOT_TRACK"] == "true"
    lines = run_lines(workflow)
    order = [
        next(i for i, line in enumerate(lines) if line.startswith(command))
        for command in (
            "make install",
            ".venv/bin/fraudops build-bento",
            ".venv/bin/bentoml containerize fraudops:latest --image-tag",
            "docker push",
        )
    ]
    assert order == sorted(order)
    build = next(s for s in steps(workflow) if "fraudops build-bento" in s.get("run", ""))
    assert build["env"]["FRAUDOPS_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert any("ghcr.io/${OWNER,,}/fraudops-service:" in line for line in lines)

    login = next(s for s in steps(workflow) if s.get("uses", "").startswith("docker/login-action@"))
    assert login["with"] == {
        "registry": "ghcr.io",
        "username": "${{ github.actor }}",
        "password": "${{ secrets.GITHUB_TOKEN }}",
    }


def test_retrain_runs_on_demand_against_the_team_servers_from_secrets():
    workflow = load("retrain.yml")
    on = triggers(workflow)
    assert set(on) == {"workflow_dispatch"}  # the Prefect deployment owns the weekly schedule
    prefect_yaml = yaml.safe_load((ROOT / "pipelines" / "prefect.yaml").read_text())
    train = next(d for d in prefect_yaml["deployments"] if d["name"] == "train-weekly")
    assert len(train["schedules"]) == 1
    inputs = on["workflow_dispatch"]["inputs"]
    assert inputs["model_kind"]["type"] == "choice"
    assert inputs["model_kind"]["options"] == list(MODEL_KINDS)
    assert "train_days" in inputs
    assert workflow["concurrency"]["cancel-in-progress"] is False

    (job,) = workflow["jobs"].values()
    env = job["env"]
    assert not any("secrets." in value for value in env.values() if "DATA_PATH" not in value)
    train_step = next(s for s in job["steps"] if s.get("name") == "Train")
    secrets = train_step["env"]
    assert secrets["FRAUDOPS_TRACKING_URI"] == "${{ secrets.MLFLOW_TRACKING_URI }}"
    assert secrets["PREFECT_API_URL"] == "${{ secrets.PREFECT_API_URL }}"
    assert secrets["PREFECT_API_KEY"] == "${{ secrets.PREFECT_API_KEY }}"
    assert secrets["FRAUDOPS_MODEL_SIGNING_KEY"] == "${{ secrets.FRAUDOPS_MODEL_SIGNING_KEY }}"
    install = next(s for s in job["steps"] if s.get("run", "").strip() == "make install")
    assert "env" not in install  # the install never sees a credential
    assert "FRAUDOPS_DATA_PATH" in env["FRAUDOPS_DATA_PATH"]
    # inputs reach the script through the environment only
    assert env["MODEL_KIND"] == "${{ inputs.model_kind }}"
    assert env["TRAIN_DAYS"] == "${{ inputs.train_days }}"

    scripts = [step.get("run", "") for step in job["steps"]]
    first_script = next(s for s in scripts if s)
    for required in (
        "FRAUDOPS_TRACKING_URI",
        "PREFECT_API_URL",
        "FRAUDOPS_DATA_PATH",
        "FRAUDOPS_MODEL_SIGNING_KEY",
    ):
        assert required in first_script  # checked before anything is installed
    assert 'if [ -z "${!name}" ]' in first_script
    lines = run_lines(workflow)
    assert lines.index("make install") < next(
        i for i, line in enumerate(lines) if line.startswith(".venv/bin/fraudops train")
    )
    assert 'args=(--json --data "$FRAUDOPS_DATA_PATH")' in lines
