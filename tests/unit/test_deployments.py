import importlib
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_deploys_existing_flows_on_cron_schedules():
    spec = yaml.safe_load((ROOT / "pipelines" / "prefect.yaml").read_text())
    names = {d["name"] for d in spec["deployments"]}
    assert names == {"train-weekly", "monitor-daily"}
    for deployment in spec["deployments"]:
        path, attribute = deployment["entrypoint"].split(":")
        assert (ROOT / path).is_file()
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert getattr(module, attribute).name in {"train-fraud-model", "monitor-fraud-model"}
        assert deployment["schedules"][0]["cron"].count(" ") == 4
