"""Team mode (a registry server others can write to) fails closed where the laptop is lenient."""

from __future__ import annotations

import pytest

from fraudops.data import history
from fraudops.data.sources import DataSourceError
from fraudops.settings import Settings

pytestmark = pytest.mark.unit
SERVER = "http://127.0.0.1:9"  # never contacted: each check fails before any request


def test_team_mode_without_a_data_path_never_falls_back_to_the_simulator(tmp_path):
    settings = Settings(home=tmp_path, tracking_uri=SERVER)
    with pytest.raises(DataSourceError, match="FRAUDOPS_DATA_PATH is not set and the registry"):
        history.load(settings)


def test_the_laptop_without_a_data_path_trains_on_the_simulator(tmp_path):
    frame = history.load(Settings(home=tmp_path, simulator_days=2))
    assert len(frame) > 0 and "TX_FRAUD" in frame
