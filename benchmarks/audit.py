"""Dependency audit of the locked environment with ``pip-audit``; it cannot pass silently.

Exports every pinned package of ``uv.lock`` (runtime and dev groups, without the project itself)
with ``uv export --frozen``, runs ``pip-audit -r <export> --no-deps --disable-pip -f json``
(no resolution, no pip: the lock is the truth) and prints a summary: packages audited,
vulnerabilities found, packages that could not be audited.

Exit codes:
    0  every package was audited and none has a known vulnerability;
    1  at least one known vulnerability (listed with its fix versions);
    2  the lock could not be exported, or pip-audit failed for another reason;
    3  the audit is incomplete: the vulnerability service could not be reached, or answered for
       too few packages (``pip-audit`` itself reports "No known vulnerabilities found" and exits
       0 when PyPI answers 404 for every package; this script does not).

Usage::

    uv run --locked --no-sync python benchmarks/audit.py [--service pypi|osv] [--json-out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OK, VULNERABLE, TOOL_ERROR, INCOMPLETE = 0, 1, 2, 3
#: Failures of pip-audit that mean the vulnerability service was not reached.
UNREACHABLE_MARKERS = (
    "ConnectionError",
    "NameResolutionError",
    "Max retries exceeded",
    "Could not connect",
    "Temporary failure in name resolution",
    "timed out",
)


@dataclass
class AuditSummary:
    """What one pip-audit report says about the locked packages."""

    audited: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    vulnerabilities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.audited) + len(self.skipped)


def summarize(report: dict[str, Any]) -> AuditSummary:
    """Audited and skipped packages and vulnerabilities of a ``pip-audit -f json`` report."""
    summary = AuditSummary()
    for dep in report.get("dependencies", []):
        name = str(dep.get("name"))
        if "skip_reason" in dep:
            summary.skipped[name] = str(dep["skip_reason"])
            continue
        summary.audited.append(f"{name}=={dep.get('version')}")
        for vuln in dep.get("vulns", []):
            summary.vulnerabilities.append(
                {
                    "package": name,
                    "version": dep.get("version"),
                    "id": vuln.get("id"),
                    "aliases": vuln.get("aliases", []),
                    "fix_versions": vuln.get("fix_versions", []),
                }
            )
    return summary


def canonical(name: str) -> str:
    """A package name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def verdict(
    summary: AuditSummary, *, service: str, allow_unaudited: frozenset[str] = frozenset()
) -> tuple[int, list[str]]:
    """Exit code and the lines that explain it.

    Any package that could not be audited (other than those in ``allow_unaudited``) makes the
    audit incomplete: a vulnerability in it would go unseen. When half or more were skipped the
    message says the vulnerability service could not be reached.
    """
    lines = [
        f"pip-audit ({service} service): {summary.total} locked packages, "
        f"{len(summary.audited)} audited, {len(summary.vulnerabilities)} known vulnerabilities, "
        f"{len(summary.skipped)} could not be audited"
    ]
    for v in summary.vulnerabilities:
        fixes = ", ".join(v["fix_versions"]) or "no fix released"
        aliases = f" ({', '.join(v['aliases'])})" if v["aliases"] else ""
        lines.append(
            f"  VULNERABLE {v['package']}=={v['version']}: {v['id']}{aliases}; fix: {fixes}"
        )
    allowed = {canonical(name) for name in allow_unaudited}
    unexpected = {k: r for k, r in summary.skipped.items() if canonical(k) not in allowed}
    for _, reason in sorted(summary.skipped.items())[:10]:
        lines.append(f"  not audited: {reason}")
    if len(summary.skipped) > 10:
        lines.append(f"  ... and {len(summary.skipped) - 10} more not audited")
    if summary.vulnerabilities:
        return VULNERABLE, lines
    if summary.total == 0:
        return TOOL_ERROR, [*lines, "error: pip-audit reported no packages at all"]
    if unexpected:
        if len(summary.skipped) * 2 >= summary.total:
            where = (
                "PyPI's per-version JSON API (/pypi/<name>/<version>/json on the index host, "
                "the only source of pip-audit's pypi service) answered 404"
                if service == "pypi"
                else "it answered nothing"
            )
            lines.append(
                f"error: the vulnerability service ({service}) could not be reached: {where} "
                f"for {len(summary.skipped)} of {summary.total} packages, so nothing is known "
                "about their vulnerabilities; the audit did NOT pass"
            )
        else:
            lines.append(
                f"error: {len(unexpected)} packages could not be audited "
                f"({', '.join(sorted(unexpected))}); pass --allow-unaudited NAME for a package "
                "that is knowingly not on the index"
            )
        return INCOMPLETE, lines
    lines.append("ok: every locked package was audited; no known vulnerability")
    return OK, lines


def uv_command(given: str | None) -> list[str]:
    """The uv command: ``--uv``; else ``$UV`` (set by ``uv run``); else ``uv`` on PATH; else
    ``python3 -m uv``."""
    if given:
        return shlex.split(given)
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if candidate and Path(candidate).is_file():
            return [candidate]
    return [shutil.which("python3") or sys.executable, "-m", "uv"]


def export_lock(uv: list[str], out: Path, *, dev: bool) -> None:
    """Write the locked pins of ``uv.lock`` as a requirements file (no hashes, no project)."""
    command = [
        *uv,
        "export",
        "--frozen",
        "--no-hashes",
        "--no-emit-project",
        "--format",
        "requirements-txt",
        "--output-file",
        str(out),
    ]
    if not dev:
        command.append("--no-dev")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {done.stderr.strip()}")


def run_pip_audit(
    requirements: Path,
    report: Path,
    *,
    service: str,
    timeout: int,
    cache_dir: str | None,
    ignore: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--requirement",
        str(requirements),
        "--no-deps",
        "--disable-pip",
        "--vulnerability-service",
        service,
        "--format",
        "json",
        "--output",
        str(report),
        "--progress-spinner",
        "off",
        "--timeout",
        str(timeout),
    ]
    if cache_dir:
        command += ["--cache-dir", cache_dir]
    for vuln in ignore or []:
        command += ["--ignore-vuln", vuln]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uv", help='uv command, e.g. "python3 -m uv" (default: $UV, uv on PATH)')
    parser.add_argument(
        "-r", "--requirements", type=Path, help="audit this pinned file instead of the lock"
    )
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi")
    parser.add_argument("--timeout", type=int, default=15, help="socket timeout, seconds")
    parser.add_argument("--cache-dir", help="pip-audit HTTP cache (default: pip's)")
    parser.add_argument("--no-dev", action="store_true", help="runtime dependencies only")
    parser.add_argument(
        "--allow-unaudited",
        action="append",
        default=[],
        metavar="NAME",
        help="a package knowingly absent from the vulnerability service (repeatable)",
    )
    parser.add_argument(
        "--ignore-vuln",
        action="append",
        default=[],
        metavar="ID",
        help="a reviewed vulnerability to accept (repeatable; passed to pip-audit)",
    )
    parser.add_argument("--json-out", type=Path, help="also write the pip-audit JSON report here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        requirements = args.requirements or Path(tmp) / "locked-requirements.txt"
        report_path = Path(tmp) / "pip-audit.json"
        try:
            if args.requirements is None:
                export_lock(uv_command(args.uv), requirements, dev=not args.no_dev)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            print(f"error: could not export the lock: {exc}", file=sys.stderr)
            return TOOL_ERROR
        done = run_pip_audit(
            requirements,
            report_path,
            service=args.service,
            timeout=args.timeout,
            cache_dir=args.cache_dir,
            ignore=args.ignore_vuln,
        )
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError):
            last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
            if any(marker in done.stderr for marker in UNREACHABLE_MARKERS):
                print(
                    f"error: the vulnerability service ({args.service}) could not be reached; "
                    f"pip-audit stopped with: {last}\nthe audit did NOT pass",
                    file=sys.stderr,
                )
                return INCOMPLETE
            print(f"error: pip-audit exited {done.returncode}: {last}", file=sys.stderr)
            return TOOL_ERROR
        if args.json_out:
            args.json_out.write_text(json.dumps(report, indent=2))
    code, lines = verdict(
        summarize(report), service=args.service, allow_unaudited=frozenset(args.allow_unaudited)
    )
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main())
