"""Figures of the reliability tests, for ``benchmarks/reliability.py`` to put in a table.

When ``FRAUDOPS_RELIABILITY_OUT`` names a folder, each test writes ``<folder>/<name>.json``;
otherwise the figures are only printed (``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def record(name: str, figures: dict[str, Any]) -> None:
    """Print ``figures`` and write them as ``<FRAUDOPS_RELIABILITY_OUT>/<name>.json`` if set."""
    text = json.dumps(figures, indent=2, default=str)
    print(f"{name}: {text}")
    folder = os.environ.get("FRAUDOPS_RELIABILITY_OUT")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{name}.json").write_text(text + "\n")
