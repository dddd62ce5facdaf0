"""Helpers shared by the benchmark scripts: locating the shared data and printing figures."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from fraudops.data.contract import validate_transactions

ROOT = Path(__file__).resolve().parents[1]
HANDBOOK_FILE = ROOT.parent / "shared" / "data" / "handbook_transactions.parquet"


def load_handbook() -> pd.DataFrame:
    """The shared handbook file, validated (1,754,155 rows); exits 2 if it is absent."""
    if not HANDBOOK_FILE.is_file():
        sys.exit(f"benchmark needs {HANDBOOK_FILE} (see ../shared/data/DATASETS.md)")
    return validate_transactions(pd.read_parquet(HANDBOOK_FILE))


def emit(name: str, figures: dict) -> None:
    """Print one benchmark's figures as a JSON line."""
    print(json.dumps({"benchmark": name, **figures}, indent=2, default=str))
