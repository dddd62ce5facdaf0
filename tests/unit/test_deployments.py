import importlib
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


def test_prefect_yaml_deploys_existing_flows_on_cron_schedules_and_on_demand():
    spec = yaml.safe_load((ROOT / "pipelines" / "prefect.yaml").read_text())
    flows = {}
    for deployment in spec["deployments"]:
        path, attribute = deployment["entrypoint"].split(":")
        assert (ROOT / path).is_file()
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        flows[deployment["name"]] = getattr(module, attribute).name
        if "schedules" in deployment:
            assert deployment["schedules"][0]["cron"].count(" ") == 4
    assert flows == {
        "train-weekly": "train-fraud-model",
        "monitor-daily": "monitor-fraud-model",
        "train-on-drift": "train-fraud-model",
        "features-on-demand": "compute-features",
        "batch-score-on-demand": "batch-score",
    }
    scheduled = {d["name"] for d in spec["deployments"] if d.get("schedules")}
    assert scheduled == {"train-weekly", "monitor-daily"}
    triggered = {d["name"] for d in spec["deployments"] if d.get("triggers")}
    assert triggered == {"train-on-drift"}
