"""Histories written as day-partitioned Parquet datasets, for the tests of the Dask engine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments
from fraudops.spec import load_spec


def cards_by_day(folder: Path, days: int, seed: int) -> Path:
    """The card simulator's payments (text card, merchant and device keys) under
    ``folder/day=YYYY-MM-DD/part-0.parquet``, as the file has them (the spec's renames apply
    when read)."""
    raw = simulate_card_payments(CardSimulationConfig(days=days, seed=seed))
    spec = load_spec("cards")
    time_column = next(
        (old for old, new in spec.reading.rename.items() if new == spec.event_time.column),
        spec.event_time.column,
    )
    for day, rows in raw.groupby(pd.to_datetime(raw[time_column]).dt.date):
        (folder / f"day={day}").mkdir(parents=True)
        rows.to_parquet(folder / f"day={day}" / "part-0.parquet", index=False)
    return folder
