"""Training on a user's own schema: text ids, a categorical column, distinct counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from fraudops import registry
from fraudops.data import contract as c
from fraudops.registry import RegistryError
from fraudops.settings import Settings
from fraudops.spec import load_spec, spec_sha256

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEC = """
name: shop-payments
reading: {sep: ";"}
event_id: {column: payment, type: str}
event_time: {column: paid_at}
label: {column: chargeback, positive: ["yes"], delay: 7d}
amount: total
entities:
  - {name: card, column: card_token, type: str}
  - {name: shop, column: shop_code, pii: false, type: str}
numeric:
  - {column: total, min: 0, max: 100000}
categorical:
  - {column: channel}
calendar:
  - {name: night, kind: night, hours: [0, 6]}
aggregations:
  - entity: card
    windows: [1d, 7d]
    features:
      - {name: "card_n_{window}", kind: count}
      - {name: "card_mean_{window}", kind: mean, of: total}
      - {name: "card_shops_{window}", kind: distinct_count, of: shop_code}
  - entity: shop
    windows: [7d, 30d]
    lag: label_delay
    features:
      - {name: "shop_risk_{window}", kind: label_rate}
time_since_previous:
  - {name: card_gap, entity: card}
evaluation: {precision_at_k_entity: card, drop_known_fraud_entities: true}
"""


@pytest.fixture
def own_data(tmp_path, small_history, monkeypatch):
    """The simulated history exported as another team would: text ids, ';', yes/no labels."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "payment": "P" + small_history[c.TRANSACTION_ID].astype(str),
            "paid_at": small_history[c.TX_DATETIME].dt.strftime("%Y-%m-%dT%H:%M:%S"),
            "card_token": "tok_" + small_history[c.CUSTOMER_ID].astype(str),
            "shop_code": "S" + small_history[c.TERMINAL_ID].astype(str),
            "total": small_history[c.TX_AMOUNT],
            "channel": rng.choice(["pos", "ecom", "atm"], len(small_history)),
            "chargeback": np.where(small_history[c.LABEL] == 1, "yes", "no"),
        }
    )
    data = tmp_path / "payments.csv"
    frame.to_csv(data, sep=";", index=False)
    spec = tmp_path / "payments.yaml"
    spec.write_text(SPEC)
    for key in [k for k in __import__("os").environ if k.startswith("FRAUDOPS_")]:
        monkeypatch.delenv(key)
    return Settings(
        home=tmp_path / "home",
        data_path=data,
        dataset_spec=str(spec),
        train_days=14,
        gate_min_average_precision=0.05,  # 80 small days: the point here is the record, not AP
    )


def test_a_spec_trains_registers_and_records_itself_on_the_version(own_data):
    from pipelines.training import run_training

    result = run_training(own_data)
    assert result.version == "1" and result.promoted, result.reasons
    client = registry.client_for(own_data)
    tags = client.get_model_version(own_data.model_name, "1").tags
    spec = load_spec(own_data.dataset_spec)
    assert tags["spec_name"] == "shop-payments"
    assert tags["spec_sha256"] == spec_sha256(spec)
    assert tags["features"].split(",") == spec.feature_names()
    assert "channel" in tags["features"] and "card_shops_7d" in tags["features"]
    stored = client.download_artifacts(
        client.get_model_version(own_data.model_name, "1").run_id, registry.SPEC_ARTIFACT
    )
    with open(stored, encoding="utf-8") as handle:
        assert yaml.safe_load(handle)["name"] == "shop-payments"
    version = client.get_model_version(own_data.model_name, "1")
    model = registry.load_verified(own_data, "1", dict(version.tags))
    assert model.named_steps["model"].is_categorical_ is not None


def test_a_champion_of_another_spec_is_not_gated_against_but_refused(own_data, tmp_path):
    from pipelines.training import run_training

    run_training(own_data)
    other = tmp_path / "other.yaml"
    other.write_text(SPEC.replace("windows: [1d, 7d]", "windows: [1d, 3d]"))
    changed = Settings(
        home=own_data.home,
        data_path=own_data.data_path,
        dataset_spec=str(other),
        train_days=14,
        gate_min_average_precision=0.05,
    )
    before = registry.client_for(changed).search_model_versions(f"name='{changed.model_name}'")
    with pytest.raises(RegistryError, match="another dataset spec"):
        run_training(changed)
    after = registry.client_for(changed).search_model_versions(f"name='{changed.model_name}'")
    assert len(after) == len(before)
