"""Data sources: Parquet and CSV transaction files, or the built-in simulator."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from fraudops.data import contract as c
from fraudops.data.simulator import SimulationConfig, simulate_transactions


class DataSourceError(ValueError):
    """The data file is absent, unreadable or of an unsupported format."""


def read_transactions(path: Path, mapping: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a transactions file and rename its columns to the contract's.

    Args:
        path: a ``.parquet`` or ``.csv`` file with one row per transaction, or a folder whose
            ``*.parquet`` files are read in name order and concatenated.
        mapping: your column name -> contract column name; contract names pass through.

    Returns:
        The file's rows × its columns, renamed; not yet validated
        (see :func:`fraudops.data.contract.validate_transactions`).

    Raises:
        DataSourceError: the file is missing, empty (0 bytes), unreadable (corrupt Parquet,
            malformed CSV line) or not Parquet/CSV; the message names the file.
        DataValidationError: the mapping names a column the file lacks.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.parquet"))
        if not files:
            raise DataSourceError(f"data folder {path} holds no .parquet files")
        frame = pd.concat([_read_file(f) for f in files], ignore_index=True)
    elif path.is_file():
        frame = _read_file(path)
    else:
        raise DataSourceError(f"data file not found: {path}")
    return c.apply_column_mapping(frame, mapping or {})


def _read_file(path: Path) -> pd.DataFrame:
    """One Parquet or CSV file as read; any reader failure becomes a ``DataSourceError``."""
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        raise DataSourceError(f"unsupported data file {path.name}: use .parquet or .csv")
    if path.stat().st_size == 0:
        raise DataSourceError(f"data file {path} is empty (0 bytes): no header, no rows")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        return pd.read_parquet(path)
    except (pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise DataSourceError(f"cannot read {path}: {exc}") from exc


def load_transactions(
    path: Path | None,
    mapping: Mapping[str, str] | None = None,
    simulation: SimulationConfig | None = None,
) -> pd.DataFrame:
    """Read ``path`` if given, else simulate a history (the default source on a fresh clone)."""
    if path is None:
        return simulate_transactions(simulation)
    return read_transactions(path, mapping)


def frame_sha256(frame: pd.DataFrame) -> str:
    """Fingerprint of a frame's values, index excluded (hex sha256 of per-row hashes)."""
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    return hashlib.sha256(row_hashes.tobytes()).hexdigest()


def write_transactions(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` as Parquet or CSV by the suffix of ``path``; create the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix.lower() in {".parquet", ".pq"}:
        frame.to_parquet(path, index=False)
    else:
        raise DataSourceError(f"unsupported output {path.name}: use .parquet or .csv")
    return path


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """A hidden folder beside ``out`` to write into; renamed to ``out`` when the block ends
    without error, deleted when it raises. An existing ``out`` is replaced only once the new
    one is complete (moved aside, the new one renamed in, the old one deleted)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial-{uuid.uuid4().hex[:8]}")
    partial.mkdir()
    try:
        yield partial
        if out.exists():
            old = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(out, old)
            os.replace(partial, out)
            shutil.rmtree(old)
        else:
            os.replace(partial, out)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
