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


def test_team_mode_refuses_a_dask_scheduler_without_tls(tmp_path):
    """A Dask scheduler runs any client's code: a team reaches one over TLS only."""
    with pytest.raises(ValueError, match="tcp:// scheduler authenticates no one"):
        Settings(home=tmp_path, tracking_uri=SERVER, dask_address="tcp://10.0.0.5:8786")
    laptop = Settings(home=tmp_path, dask_address="tcp://127.0.0.1:8786")
    assert laptop.dask_address == "tcp://127.0.0.1:8786"


def test_a_tls_dask_scheduler_needs_the_whole_client_certificate(tmp_path):
    with pytest.raises(ValueError, match="set dask_tls_ca_file, dask_tls_cert and dask_tls_key"):
        Settings(home=tmp_path, tracking_uri=SERVER, dask_address="tls://dask:8786")
    with pytest.raises(ValueError, match="set all three or none"):
        Settings(home=tmp_path, dask_tls_ca_file=tmp_path / "ca.pem")
    with pytest.raises(ValueError, match="use tls://host:port"):
        Settings(home=tmp_path, dask_address="dask:8786")
    pem = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    team = Settings(
        home=tmp_path,
        tracking_uri=SERVER,
        dask_address="tls://dask:8786",
        dask_tls_ca_file=pem["ca"],
        dask_tls_cert=pem["cert"],
        dask_tls_key=pem["key"],
    )
    assert team.dask_address == "tls://dask:8786"
