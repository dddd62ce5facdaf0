"""The core (``src/fraudops``) never imports an app folder or the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "src" / "fraudops"
FORBIDDEN = ("pipelines", "services", "monitoring", "fraudops_cli")


def forbidden_imports(source: str, filename: str) -> list[str]:
    """``file:line imports X`` for every import of a :data:`FORBIDDEN` package in ``source``.

    Every ``import`` and ``from ... import`` anywhere in the tree counts (inside functions,
    ``if TYPE_CHECKING:`` blocks, ``try:``); relative imports stay inside the core.
    """
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            if name.split(".")[0] in FORBIDDEN:
                found.append(f"{filename}:{node.lineno} imports {name}")
    return found


def test_the_core_imports_no_app_folder_nor_the_cli():
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 10, f"no core modules found under {CORE}"
    problems = [
        problem
        for path in modules
        for problem in forbidden_imports(path.read_text(), str(path.relative_to(ROOT)))
    ]
    assert not problems, "the core must not import an app folder:\n" + "\n".join(problems)


def test_the_check_sees_imports_inside_functions_and_from_imports():
    source = (
        "import os\n"
        "from fraudops import registry\n"
        "def f():\n"
        "    from pipelines.training import training_flow\n"
        "    import services.service, fraudops_cli.main\n"
        "if True:\n"
        "    from monitoring import flow\n"
        "from . import pipelines\n"
    )
    assert forbidden_imports(source, "m.py") == [
        "m.py:4 imports pipelines.training",
        "m.py:5 imports services.service",
        "m.py:5 imports fraudops_cli.main",
        "m.py:7 imports monitoring",
    ]


#: Core packages below the loop's stages: they never import a stage.
FOUNDATIONS = ("spec", "data", "offline", "streaming", "model", "registry", "logs")
STAGES = ("serving", "drift", "training")


def core_imports(path: Path) -> set[str]:
    """The core packages (or top-level modules) ``path`` imports, e.g. ``{"spec", "data"}``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            parts = node.module.split(".")
            if parts[0] != "fraudops":
                continue
            found |= {parts[1]} if len(parts) > 1 else {a.name for a in node.names}
    return found


def test_foundation_packages_import_no_stage_of_the_loop():
    problems = []
    for package in FOUNDATIONS:
        for path in sorted((CORE / package).rglob("*.py")):
            for stage in sorted(core_imports(path) & set(STAGES)):
                problems.append(f"{path.relative_to(ROOT)} imports fraudops.{stage}")
    assert not problems, "a foundation package imports a stage:\n" + "\n".join(problems)


def test_serving_does_not_import_training():
    problems = [
        str(path.relative_to(ROOT))
        for path in sorted((CORE / "serving").rglob("*.py"))
        if "training" in core_imports(path)
    ]
    assert not problems, f"serving imports fraudops.training: {problems}"
