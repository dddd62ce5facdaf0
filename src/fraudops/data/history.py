"""The configured history: the user's file read as the dataset spec says, or a built-in simulator.

One function, used by training, the service's warm-up, batch tools and the demo, so each reads
the same rows the same way.
"""

from __future__ import annotations

import pandas as pd

from fraudops.data import contract as c
from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments
from fraudops.data.simulator import SimulationConfig, simulate_transactions
from fraudops.data.sources import DataSourceError
from fraudops.settings import Settings
from fraudops.spec.data import read_events

#: Shipped specs of the handbook's columns: the handbook simulator writes their history.
HANDBOOK_SCHEMA_SPECS = ("handbook", "handbook-arrival")


def load(settings: Settings) -> pd.DataFrame:
    """Raw events from ``settings.data_path`` read as the spec says or, when unset, a simulator.

    Without a data path (on the local registry only) the shipped ``handbook`` spec gets
    :mod:`fraudops.data.simulator`'s history (so does ``handbook-arrival``, whose labels
    then all arrive one delay after their event) and the shipped ``cards`` spec
    :mod:`fraudops.data.card_simulator`'s, both ``simulator_days`` long.

    Raises:
        DataSourceError: the file cannot be read, or no data path is set and either the
            registry is remote (team mode: the simulator is never used implicitly) or no
            built-in simulator writes the spec's schema.
    """
    spec = settings.spec
    if settings.data_path is None and settings.remote_registry:
        raise DataSourceError(
            "FRAUDOPS_DATA_PATH is not set and the registry is a server (team mode): the "
            "built-in simulator is never used implicitly there, so no model is trained on "
            "simulated data and no service warms its state with simulated events; set "
            "FRAUDOPS_DATA_PATH to your transactions (`fraudops simulate --out FILE` writes a "
            "simulated file if that is what you want)"
        )
    if settings.data_path is not None:
        frame = read_events(settings.data_path, spec)
        if settings.column_mapping:
            frame = c.apply_column_mapping(frame, settings.column_mapping)
        return frame
    if spec.name in HANDBOOK_SCHEMA_SPECS:
        simulation = SimulationConfig(days=settings.simulator_days, seed=settings.simulator_seed)
        return simulate_transactions(simulation)
    if spec.name == "cards":
        cards = CardSimulationConfig(days=settings.simulator_days, seed=settings.simulator_seed)
        return simulate_card_payments(cards)
    raise DataSourceError(
        f"no data for spec {spec.name!r}: set FRAUDOPS_DATA_PATH (the built-in simulators "
        "write the shipped handbook and cards specs' columns only)"
    )
