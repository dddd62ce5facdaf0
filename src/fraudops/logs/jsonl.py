"""Append-only JSON-lines records (one decision per line): the monitor's and the online gate's.

Each line is written with one ``write`` call on a file opened for appending, so a crash leaves
at most a torn last line; :func:`read_jsonl` skips blank lines only and raises on a torn one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def append_jsonl(path: Path, record: Mapping[str, Any]) -> None:
    """Append ``record`` as one JSON line to ``path`` (folders made; values JSON cannot encode
    written as ``str``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(dict(record), default=str) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every record of ``path``, oldest first; [] when the file does not exist.

    Raises:
        json.JSONDecodeError: a line is not JSON (a torn write).
    """
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
