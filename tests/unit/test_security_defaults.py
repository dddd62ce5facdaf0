"""Security defaults: loopback binds, constant-time token check, no secret in the repository.

Also the verdict of ``benchmarks/audit.py`` (the dependency audit): it must fail, not pass,
when the vulnerability service answered for no package.
"""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fraudops.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No FRAUDOPS_* from the caller; the CLI's setdefault()s on os.environ are undone after."""
    saved = dict(os.environ)
    for key in list(os.environ):
        if key.startswith("FRAUDOPS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture
def captured_exec(monkeypatch) -> list[list[str]]:
    """``os.execvpe`` replaced by a recorder: the command a CLI command would exec."""
    calls: list[list[str]] = []

    def fake_execvpe(file: str, args: list[str], env: dict[str, str]) -> None:
        calls.append(list(args))

    monkeypatch.setattr(os, "execvpe", fake_execvpe)
    return calls


def _option(command: list[str], name: str) -> str:
    assert command.count(name) == 1, command
    return command[command.index(name) + 1]


# --- loopback by default -------------------------------------------------------------------


def test_settings_bind_the_service_to_loopback_and_hold_no_secret_by_default(clean_env):
    settings = Settings()
    assert settings.serve_host == "127.0.0.1"
    assert settings.api_token is None and settings.hash_secret is None


def test_secrets_are_masked_in_the_settings_repr(clean_env, monkeypatch):
    monkeypatch.setenv("FRAUDOPS_API_TOKEN", "tok-" + "visible-if-leaked-1")
    monkeypatch.setenv("FRAUDOPS_HASH_SECRET", "key-" + "visible-if-leaked-2")
    settings = Settings()
    text = f"{settings!r} {settings} {settings.model_dump()} {settings.model_dump_json()}"
    assert "visible-if-leaked" not in text
    assert settings.api_token is not None
    assert settings.api_token.get_secret_value() == "tok-visible-if-leaked-1"


def test_serve_command_binds_loopback_by_default(clean_env, captured_exec):
    from fraudops_cli.main import app

    done = CliRunner().invoke(app, ["serve"])
    assert done.exit_code == 0, done.output
    (command,) = captured_exec
    assert command[command.index("bentoml") + 1] == "serve"
    assert _option(command, "--host") == "127.0.0.1"
    assert "http://127.0.0.1:3000" in done.output


def test_serve_command_binds_elsewhere_only_when_asked(clean_env, captured_exec, monkeypatch):
    from fraudops_cli.main import app

    monkeypatch.setenv("FRAUDOPS_API_TOKEN", "a" * 32)
    monkeypatch.setenv("FRAUDOPS_LABEL_TOKEN", "b" * 32)
    monkeypatch.setenv("FRAUDOPS_SERVE_HOST", "0.0.0.0")
    assert CliRunner().invoke(app, ["serve"]).exit_code == 0
    monkeypatch.delenv("FRAUDOPS_SERVE_HOST")
    assert CliRunner().invoke(app, ["serve", "--host", "10.1.2.3"]).exit_code == 0
    assert [_option(c, "--host") for c in captured_exec] == ["0.0.0.0", "10.1.2.3"]


@pytest.mark.parametrize(
    ("tokens", "words"),
    [
        ({}, "FRAUDOPS_API_TOKEN is unset"),
        ({"FRAUDOPS_API_TOKEN": "a" * 32}, "FRAUDOPS_LABEL_TOKEN is unset"),
        ({"FRAUDOPS_API_TOKEN": "a" * 31, "FRAUDOPS_LABEL_TOKEN": "b" * 32}, "too short"),
        ({"FRAUDOPS_API_TOKEN": "a" * 32, "FRAUDOPS_LABEL_TOKEN": "a" * 32}, "must differ"),
        ({"FRAUDOPS_API_TOKEN": "", "FRAUDOPS_LABEL_TOKEN": "b" * 32}, "API_TOKEN is unset"),
    ],
)
def test_serve_refuses_a_reachable_bind_without_two_distinct_strong_tokens(
    clean_env, captured_exec, monkeypatch, tokens, words
):
    from fraudops_cli.main import app

    for name, value in tokens.items():
        monkeypatch.setenv(name, value)
    done = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0"])
    assert done.exit_code == 2 and words in done.output, done.output
    assert captured_exec == []  # nothing started


def test_the_service_itself_refuses_a_reachable_bind_without_tokens(clean_env):
    from fraudops.serving.exposure import UnsafeExposure, require_safe_exposure

    with pytest.raises(UnsafeExposure, match=r"FRAUDOPS_SERVE_HOST=10\.0\.0\.5 is reachable"):
        require_safe_exposure(Settings(serve_host="10.0.0.5"))
    require_safe_exposure(Settings(serve_host="::1"))  # loopback: no token needed


@pytest.mark.parametrize("name", ["API_TOKEN", "LABEL_TOKEN", "HASH_SECRET", "MODEL_SIGNING_KEY"])
def test_a_placeholder_secret_from_the_example_files_is_refused(clean_env, monkeypatch, name):
    monkeypatch.setenv(f"FRAUDOPS_{name}", "change-me-model-signing-key-of-32-characters")
    with pytest.raises(ValueError, match="placeholder"):
        Settings()


def test_ui_command_binds_loopback(clean_env, captured_exec, monkeypatch):
    from fraudops_cli.main import app

    monkeypatch.setenv("FRAUDOPS_SERVE_HOST", "0.0.0.0")  # the service's address: not the UI's
    done = CliRunner().invoke(app, ["ui"])
    assert done.exit_code == 0, done.output
    (command,) = captured_exec
    assert "ui" in command and _option(command, "--host") == "127.0.0.1"
    assert _option(command, "--port") == "8000"
    assert "0.0.0.0" not in " ".join(command)


# --- bearer token: constant-time comparison ----------------------------------------------


#: Headers every request of :func:`_call` carries unless it names them (None: leave out).
DEFAULT_HEADERS = {b"host": b"127.0.0.1:3000", b"content-type": b"application/json"}


def _call(app: Any, path: str, headers: list[tuple[bytes, Any]], body: bytes) -> int:
    """Send one HTTP request through an ASGI app; the response status."""
    statuses: list[int] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    sent = dict(headers)
    for name, value in DEFAULT_HEADERS.items():
        if name not in sent:
            headers = [*headers, (name, value)]
    headers = [h for h in headers if h[1] is not None]
    scope = {"type": "http", "path": path, "method": "POST", "headers": headers}
    asyncio.run(app(scope, receive, send))
    return statuses[0]


async def _ok_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def test_token_comparison_uses_compare_digest_in_the_source():
    from services import middleware

    source = inspect.getsource(middleware.GuardMiddleware)
    assert re.search(r"\b(hmac|secrets)\.compare_digest\(", source)
    # the token is never compared with == / != (a timing side channel)
    assert not re.search(
        r"(token|credentials)\s*[!=]=|[!=]=\s*(self\.)?(token|credentials)", source
    )


def test_token_check_calls_compare_digest_and_guards_each_endpoint(clean_env, monkeypatch):
    from services.middleware import GUARDED, GuardMiddleware

    token = "tok-" + "unit-test-constant-time"
    monkeypatch.setenv("FRAUDOPS_API_TOKEN", token)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    guard = GuardMiddleware(_ok_app)
    good = [(b"authorization", f"Bearer {token}".encode())]
    assert {"/score", "/score_batch", "/feedback"} == GUARDED
    for path in sorted(GUARDED):
        assert _call(guard, path, [], b"{}") == 401
        assert _call(guard, path, [(b"authorization", b"Bearer wrong")], b"{}") == 401
        assert _call(guard, path, [(b"authorization", token.encode())], b"{}") == 401  # no scheme
        assert _call(guard, path, good, b"{}") == 200
    assert (b"wrong", token.encode()) in compared and (token.encode(), token.encode()) in compared
    assert _call(guard, "/healthz", [], b"") == 200  # probes stay open


def test_no_token_configured_leaves_the_endpoints_open(clean_env):
    from services.middleware import GuardMiddleware

    assert _call(GuardMiddleware(_ok_app), "/score", [], b"{}") == 200


def test_a_json_route_without_a_content_type_gets_415(clean_env):
    from services.middleware import GuardMiddleware

    guard = GuardMiddleware(_ok_app)
    assert _call(guard, "/score", [(b"content-type", None)], b"{}") == 415
    assert _call(guard, "/score", [(b"content-type", b"text/plain")], b"{}") == 415


def test_a_loopback_service_answers_only_loopback_host_names(clean_env, monkeypatch):
    from services.middleware import GuardMiddleware

    guard = GuardMiddleware(_ok_app)
    for host in (b"127.0.0.1:3000", b"localhost", b"[::1]:3000"):
        assert _call(guard, "/score", [(b"host", host)], b"{}") == 200, host
    for host in (b"evil.example:3000", b"fraudops.attacker.test"):  # DNS rebinding
        assert _call(guard, "/score", [(b"host", host)], b"{}") == 400, host
        assert _call(guard, "/model", [(b"host", host)], b"") == 400, host
    monkeypatch.setenv("FRAUDOPS_ALLOWED_HOSTS", '["scoring.internal"]')
    named = GuardMiddleware(_ok_app)
    assert _call(named, "/score", [(b"host", b"scoring.internal")], b"{}") == 200
    assert _call(named, "/score", [(b"host", b"127.0.0.1")], b"{}") == 400


def test_the_label_token_and_the_scoring_token_open_only_their_own_routes(clean_env, monkeypatch):
    from services.middleware import GuardMiddleware

    monkeypatch.setenv("FRAUDOPS_API_TOKEN", "score-" + "s" * 26)
    monkeypatch.setenv("FRAUDOPS_LABEL_TOKEN", "label-" + "l" * 26)
    guard = GuardMiddleware(_ok_app)
    scoring = [(b"authorization", b"Bearer score-" + b"s" * 26)]
    labels = [(b"authorization", b"Bearer label-" + b"l" * 26)]
    assert _call(guard, "/score", scoring, b"{}") == 200
    assert _call(guard, "/score_batch", scoring, b"[]") == 200
    assert _call(guard, "/feedback", scoring, b"[]") == 401
    assert _call(guard, "/feedback", labels, b"[]") == 200
    assert _call(guard, "/score", labels, b"{}") == 401


def test_request_size_limit_is_enforced_before_parsing(clean_env, monkeypatch):
    from services.middleware import GuardMiddleware

    monkeypatch.setenv("FRAUDOPS_MAX_BODY_BYTES", "2048")
    guard = GuardMiddleware(_ok_app)
    big = b"[" + b"1," * 2000 + b"1]"
    assert _call(guard, "/score_batch", [(b"content-length", str(len(big)).encode())], big) == 413
    assert _call(guard, "/score_batch", [], big) == 413  # no Content-Length: counted while read
    assert _call(guard, "/score_batch", [], b"[1]") == 200


# --- no secret in the repository ---------------------------------------------------------

#: Patterns of real credentials (as published by their issuers).
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY(?: BLOCK)?-----"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "API secret key": re.compile(r"\b(?:sk|rk)[-_](?:live|proj|ant)?[-_]?[A-Za-z0-9]{32,}\b"),
    "JSON web token": re.compile(
        r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"
    ),
}
_NAME_WORDS = r"[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)\w*"
#: ``name = "literal"`` / ``name: literal`` / ``NAME=literal`` with a secret-looking name.
ASSIGNMENT = re.compile(
    rf"(?i)(?P<name>{_NAME_WORDS})[\"']?\s*(?::=|=|:)\s*"
    r"(?:[rbuf]?(?P<q>[\"'])(?P<quoted>[^\"'\n]*)(?P=q)|(?P<bare>[^\s\"'#,;)\]}]+))"
)
#: ``scheme://user:<password>@host``
URL_PASSWORD = re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@\"']+:(?P<password>[^@\s/\"']+)@")
#: Documented placeholders and references to a value kept elsewhere.
PLACEHOLDER = re.compile(
    r"(?i)change-?me|example|placeholder|dummy|redacted|your[-_]|xxx|\*\*\*|<[^>]*>|"
    r"^\$|\$\{|^\{|^%|\benv\b|environ|getenv|secretKeyRef|not-a-real"
)
#: Names whose value names a Kubernetes object holding the secret, not the secret itself
#: (``secretName: dask-tls`` mounts Secret dask-tls).
REFERENCE_NAMES = frozenset({"secretname"})
#: Values that are code, not literals (``token = settings.api_token``) in source files.
CODE_SUFFIXES = {".py", ".pyi", ".toml", ".lock"}
TEXT_LIMIT = 2_000_000


#: An identifier that names a secret rather than holding one (``secretGenerator``, ``API_TOKEN``).
SECRET_IDENTIFIER = re.compile(r"(?i)^[a-z_][a-z0-9_]*(?:secret|token|passw)[a-z0-9_]*$")


def _is_placeholder(value: str) -> bool:
    return len(value) < 8 or bool(PLACEHOLDER.search(value) or SECRET_IDENTIFIER.match(value))


def secret_findings(path: Path, text: str) -> list[str]:
    """Secret-looking literals in one file: ``path:line: kind``.

    Credentials in an issuer's format, private keys and passwords inside URLs count everywhere;
    a literal assigned to a secret-looking name counts outside ``tests/`` (where such literals
    are fixtures, e.g. the bearer token the HTTP tests send).
    """
    found = []
    code = path.suffix in CODE_SUFFIXES
    fixtures = path.parts[:1] == ("tests",)
    for number, line in enumerate(text.splitlines(), 1):
        for kind, pattern in SECRET_PATTERNS.items():
            if pattern.search(line):
                found.append(f"{path}:{number}: {kind}")
        for match in () if fixtures else ASSIGNMENT.finditer(line):
            value = match.group("quoted")
            if value is None and not code:  # a bare word in Python is a variable, not a literal
                value = match.group("bare")
            if match.group("name").lower() in REFERENCE_NAMES:
                continue
            if value is not None and not _is_placeholder(value):
                found.append(f"{path}:{number}: literal assigned to {match.group('name')}")
        for match in URL_PASSWORD.finditer(line):
            if not _is_placeholder(match.group("password")):
                found.append(f"{path}:{number}: password inside a URL")
    return found


def repository_files() -> list[Path]:
    """Tracked files and new files not ignored: what a commit could carry."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [ROOT / name for name in sorted(set(out.split("\0"))) if name]


def scan_repository(files: list[Path]) -> tuple[int, list[str]]:
    scanned, found = 0, []
    for path in files:
        if not path.is_file() or path.stat().st_size > TEXT_LIMIT:
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary
            continue
        scanned += 1
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) else Path(path.name)
        found += secret_findings(name, data.decode("utf-8", "replace"))
    return scanned, found


@pytest.fixture(scope="module")
def tracked() -> list[Path]:
    if not (ROOT / ".git").exists() or subprocess.run(["git", "--version"]).returncode != 0:
        pytest.skip("not a git checkout")
    return repository_files()


def test_no_secret_looking_literal_in_the_repository(tracked):
    scanned, found = scan_repository(tracked)
    assert scanned >= 50, f"only {scanned} text files scanned"
    assert not found, "secret-looking literals:\n" + "\n".join(found)


# Planted values are assembled at run time so that this file itself holds none of them.
PLANTED = {
    "private key": "-----BEGIN RSA " + "PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n",
    "AWS access key id": "aws_id = " + "AKIA" + "Q3EGRZ7TXW4JNB5K\n",
    "GitHub token": "GH=" + "ghp_" + "a1B2" * 9 + "\n",
    "env literal": "FRAUDOPS_API_" + "TOKEN=hunter2-prod-9f8e7d6c\n",
    "yaml literal": "  POSTGRES_PASS" + "WORD: s3cr3tP4ssw0rd\n",
    "python literal": "api_" + 'key = "a9f8e7d6c5b4a3f2e1d0"\n',
    "url password": "uri: postgresql://mlflow:" + "Tr0ub4dor3xyz@db:5432/mlflow\n",
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_the_secret_scanner_catches_a_planted_secret(tmp_path, kind):
    suffix = ".py" if kind == "python literal" else ".env"
    planted = tmp_path / f"leak{suffix}"
    planted.write_text("# harmless line\n" + PLANTED[kind])
    found = secret_findings(Path(planted.name), planted.read_text())
    assert found, f"the scanner missed a planted {kind}"
    assert all(f.startswith(f"leak{suffix}:2:") for f in found)


@pytest.mark.parametrize(
    "line",
    [
        "FRAUDOPS_API_TOKEN=change-me-api-token",
        "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in infra/.env}",
        "- postgresql://fraudops:${POSTGRES_PASSWORD:?set it}@postgres:5432/mlflow",
        "MLFLOW_BACKEND_STORE_URI=postgresql://mlflow:change-me-db-password@db.example:5432/m",
        "self.token = token.get_secret_value().encode() if token else None",
        "secretKeyRef:",
        "            secretName: dask-tls",
    ],
)
def test_the_secret_scanner_lets_documented_placeholders_through(line):
    suffix = ".py" if "self." in line else ".yml"
    assert secret_findings(Path(f"x{suffix}"), line) == []


def test_the_repository_scan_sees_a_planted_file_among_the_tracked_ones(tracked, tmp_path):
    planted = tmp_path / "planted.env"
    planted.write_text(PLANTED["env literal"])
    scanned, found = scan_repository([*tracked, planted])
    assert scanned > 50 and found == ["planted.env:1: literal assigned to FRAUDOPS_API_TOKEN"]


# --- the dependency audit cannot pass silently -------------------------------------------


@pytest.fixture(scope="module")
def audit() -> Any:
    spec = importlib.util.spec_from_file_location("fraudops_audit", ROOT / "benchmarks/audit.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _report(audited: int, skipped: int, vulns: int = 0) -> dict[str, Any]:
    deps: list[dict[str, Any]] = [
        {"name": f"pkg{i}", "version": "1.0", "vulns": []} for i in range(audited)
    ]
    for i in range(vulns):
        deps[i]["vulns"] = [{"id": f"PYSEC-0-{i}", "fix_versions": ["1.1"], "aliases": []}]
    deps += [
        {
            "name": f"gone{i}",
            "skip_reason": f"Dependency not found on PyPI and could not be audited: gone{i} (1)",
        }
        for i in range(skipped)
    ]
    return {"dependencies": deps, "fixes": []}


def test_audit_fails_when_the_service_answered_for_no_package(audit):
    code, lines = audit.verdict(audit.summarize(_report(0, 245)), service="pypi")
    assert code == audit.INCOMPLETE != 0
    assert "could not be reached" in lines[-1] and "245 of 245" in lines[-1]
    assert lines[0].startswith("pip-audit (pypi service): 245 locked packages, 0 audited")


def test_audit_fails_on_a_vulnerability_and_passes_a_clean_complete_audit(audit):
    code, lines = audit.verdict(audit.summarize(_report(10, 0, vulns=1)), service="pypi")
    assert code == audit.VULNERABLE and any("VULNERABLE pkg0==1.0: PYSEC-0-0" in x for x in lines)
    assert audit.verdict(audit.summarize(_report(10, 0)), service="pypi")[0] == audit.OK


def test_audit_counts_a_few_unaudited_packages_unless_allowed(audit):
    summary = audit.summarize(_report(10, 1))
    code, lines = audit.verdict(summary, service="pypi")
    assert code == audit.INCOMPLETE and "gone0" in lines[-1]
    allowed = frozenset({"Gone0"})  # names compare as PyPI does
    assert audit.verdict(summary, service="pypi", allow_unaudited=allowed)[0] == audit.OK


def test_ui_on_an_empty_home_warns_and_points_at_the_demos_home(clean_env, captured_exec, tmp_path):
    from fraudops_cli.main import app

    empty = CliRunner().invoke(app, ["ui"])
    assert empty.exit_code == 0 and "holds no run yet; train or run the demo first" in empty.output
    demo = tmp_path / "home" / "demo"
    demo.mkdir(parents=True)
    (demo / "mlflow.db").write_bytes(b"")
    pointed = CliRunner().invoke(app, ["ui"])
    assert f"FRAUDOPS_HOME={demo} fraudops ui" in pointed.output
    assert [c[c.index("ui")] for c in captured_exec] == ["ui", "ui"]  # Evidently still starts
