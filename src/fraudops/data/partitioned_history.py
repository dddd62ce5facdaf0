"""A simulated history at any volume, written as a Parquet dataset partitioned by day.

``scale`` independent populations of :mod:`fraudops.data.simulator` (regions: their own cards,
terminals and compromises, ids offset so none repeats) are simulated one at a time and written
day by day, so memory holds one population and one day at most, whatever the scale: 50x the
handbook's volume (about 90 M rows) is written with well under 1 GiB.
"""

from __future__ import annotations

import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from fraudops.data import contract as c
from fraudops.data.simulator import SimulationConfig, simulate_transactions
from fraudops.data.sources import atomic_folder

#: Event ids of region r start at r times this (the handbook's ids are row numbers).
ID_STRIDE = 10**10


@dataclass(frozen=True)
class WrittenHistory:
    """What :func:`simulate_by_day` wrote: ``days`` folders ``day=YYYY-MM-DD`` of one file each."""

    path: Path
    rows: int
    frauds: int
    days: int


def simulate_by_day(config: SimulationConfig, scale: int, out: Path) -> WrittenHistory:
    """Write ``scale`` regions of ``config`` under ``out/day=YYYY-MM-DD/part-0.parquet``.

    Region r uses seed ``config.seed + r`` and offsets customer, terminal and transaction ids
    by r times the population sizes (and :data:`ID_STRIDE`); each day's file is sorted by
    time then id. The folder appears complete or not at all (written beside, then renamed).

    Args:
        config: one region's simulation (the handbook's 1.75 M rows by default).
        scale: regions (≥ 1).
        out: the dataset's folder (replaced if it exists).

    Raises:
        ValueError: ``scale`` below 1, or the config's own errors.
    """
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    rows = frauds = 0
    with atomic_folder(Path(out)) as partial:
        staging = partial / "_regions"
        for region in range(scale):
            frame = simulate_transactions(dataclasses.replace(config, seed=config.seed + region))
            frame[c.TRANSACTION_ID] += region * ID_STRIDE
            frame[c.CUSTOMER_ID] += region * config.n_customers
            frame[c.TERMINAL_ID] += region * config.n_terminals
            rows += len(frame)
            frauds += int(frame[c.LABEL].sum())
            for day, piece in frame.groupby(frame[c.TX_DATETIME].dt.date, sort=True):
                folder = staging / f"day={day}"
                folder.mkdir(parents=True, exist_ok=True)
                piece.to_parquet(folder / f"region-{region:04d}.parquet", index=False)
        days = sorted(staging.iterdir())
        for folder in days:
            pieces = [pd.read_parquet(file) for file in sorted(folder.glob("*.parquet"))]
            day = pd.concat(pieces, ignore_index=True).sort_values(
                [c.TX_DATETIME, c.TRANSACTION_ID], kind="stable"
            )
            (partial / folder.name).mkdir()
            day.to_parquet(partial / folder.name / "part-0.parquet", index=False)
        shutil.rmtree(staging)
    return WrittenHistory(Path(out), rows, frauds, len(days))
