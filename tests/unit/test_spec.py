"""The dataset spec: bad specs and bad data fail naming the key and the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops import contract as c
from fraudops.contract import DataValidationError, validate_transactions
from fraudops.spec import SpecError, default_spec, load_spec, parse_spec, spec_sha256
from fraudops.spec.data import check_history, prepare_events, read_events
from fraudops.spec.draft import draft_spec
from fraudops.spec.model import format_duration, parse_duration
from tests.conftest import make_transactions

pytestmark = pytest.mark.unit

CLAIMS = """
name: claims
reading: {sep: ";", decimal: ","}
event_id: {column: claim_id}
event_time: {column: step, unit: 1d, origin: "2020-01-01"}
label: {column: fraud, positive: ["Y"], delay: 14d}
amount: claim_amount
entities:
  - {name: policy, column: policy_no}
  - {name: garage, column: garage, pii: false}
numeric:
  - {column: claim_amount, min: 0, max: 1000000}
categorical:
  - {column: vehicle}
aggregations:
  - entity: policy
    windows: [30d, 365d]
    features:
      - {name: "claims_{window}", kind: count}
      - {name: "garages_{window}", kind: distinct_count, of: garage}
  - entity: garage
    windows: [90d]
    lag: label_delay
    features:
      - {name: garage_fraud_rate, kind: label_rate}
evaluation: {precision_at_k_entity: policy}
"""


def test_durations_read_and_write_back():
    assert [parse_duration(d) for d in ("30m", "1h", "7d", "2w", "45s")] == [
        1800,
        3600,
        604_800,
        1_209_600,
        45,
    ]
    assert format_duration(604_800) == "7d" and format_duration(90) == "90s"


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (("windows: [30d, 365d]", "windows: [30d, a year]"), "aggregations.0.windows.1", "a year"),
        (('name: "garages_{window}"', 'name: "claims_{window}"'), "features", "duplicated"),
        (("of: garage}", "of: nowhere}"), "aggregations.0.features.1.of", "'nowhere'"),
        (("entity: garage\n", "entity: shop\n"), "aggregations.1.entity", "unknown entity"),
        (("    lag: label_delay\n", ""), "aggregations.1", "label_rate needs"),
        (("amount: claim_amount", "amount: vehicle"), "amount", "not declared"),
        (("evaluation: {", "evaluaton: {"), "evaluaton", "unknown key"),
    ],
)
def test_a_bad_spec_names_the_key(change, key, words):
    old, new = change
    assert old in CLAIMS
    with pytest.raises(SpecError) as raised:
        parse_spec(CLAIMS.replace(old, new), "claims.yaml")
    assert "claims.yaml" in str(raised.value)
    assert key in str(raised.value) and words in str(raised.value)


def test_a_missing_spec_file_names_the_shipped_specs(tmp_path):
    with pytest.raises(SpecError, match="handbook"):
        load_spec(tmp_path / "nope.yaml")


def test_the_shipped_handbook_spec_is_todays_contract():
    spec = default_spec()
    assert spec.feature_names() == list(c.FEATURES)
    assert spec.raw_columns() == list(c.RAW_COLUMNS)
    assert spec_sha256(spec) == spec_sha256(parse_spec(spec.model_dump_json()))


def test_prepare_events_equals_the_contract_validation_on_the_handbook_schema(small_history):
    shuffled = small_history.sample(frac=1.0, random_state=0)
    prepared = prepare_events(shuffled, default_spec())
    expected = validate_transactions(shuffled)
    pd.testing.assert_frame_equal(prepared[expected.columns], expected)


def claims_file(tmp_path, rows=None):
    rows = rows or [
        "claim_id;step;policy_no;garage;claim_amount;vehicle;fraud",
        "C-1;0;P1;G1;100,50;car;N",
        "C-2;3;P1;G2;2000,00;van;Y",
        "C-3;40;P2;G1;10,00;;N",
    ]
    path = tmp_path / "claims.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_semicolon_file_with_text_ids_steps_and_yes_no_labels_is_read(tmp_path):
    spec = parse_spec(CLAIMS)
    events = prepare_events(read_events(claims_file(tmp_path), spec), spec)
    assert events["claim_id"].tolist() == ["C-1", "C-2", "C-3"]
    assert events["step"].tolist() == [
        pd.Timestamp("2020-01-01"),
        pd.Timestamp("2020-01-04"),
        pd.Timestamp("2020-02-10"),
    ]
    assert events["fraud"].tolist() == [0, 1, 0]
    assert events["claim_amount"].tolist() == [100.5, 2000.0, 10.0]
    assert events["vehicle"].tolist() == ["car", "van", "(missing)"]


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("C-3;40;;G1;10,00;car;N", "'policy_no' (entities.0.column) has missing values"),
        ("C-3;40;P2;G1;-5;car;N", "'claim_amount' (numeric.0.column) must be >= 0"),
        ("C-3;40;P2;G1;ten;car;N", "'claim_amount' (numeric.0.column) has values that are not"),
        ("C-3;40;P2;G1;10;car;maybe", "'fraud' (label.column) is not binary"),
        ("C-1;40;P2;G1;10;car;N", "'claim_id' (event_id.column) has duplicated values"),
        ("C-3;x;P2;G1;10;car;N", "'step' (event_time.column) has steps that are not numbers"),
    ],
)
def test_bad_data_names_the_column_and_its_spec_key(tmp_path, row, words):
    spec = parse_spec(CLAIMS)
    lines = [
        "claim_id;step;policy_no;garage;claim_amount;vehicle;fraud",
        "C-1;0;P1;G1;100,50;car;N",
        "C-2;3;P1;G2;2000,00;van;Y",
        row,
    ]
    with pytest.raises(DataValidationError) as raised:
        prepare_events(read_events(claims_file(tmp_path, lines), spec), spec)
    assert words in str(raised.value)


def test_a_missing_column_names_the_spec_key(tmp_path):
    spec = parse_spec(CLAIMS.replace("{column: vehicle}", "{column: model}"))
    with pytest.raises(DataValidationError, match=r"'model' \(categorical.0.column\)"):
        prepare_events(read_events(claims_file(tmp_path), spec), spec)


def test_a_window_longer_than_the_history_is_reported_by_key(tmp_path):
    spec = parse_spec(CLAIMS)
    events = prepare_events(read_events(claims_file(tmp_path), spec), spec)
    problems = check_history(events, spec)
    assert any(p.startswith("aggregations.0.windows.1: window 365d") for p in problems)
    assert not any(p.startswith("aggregations.0.windows.0") for p in problems)  # 30d < 40d


def test_a_draft_validates_and_leaves_out_leaks_and_clock_columns():
    rng = np.random.default_rng(0)
    tx = make_transactions(
        [
            (
                f"2018-04-{1 + i % 20:02d} {i % 24:02d}:00:00",
                i % 30,
                i % 50,
                float(rng.integers(1, 500)),
                int(i % 17 == 0),
            )
            for i in range(600)
        ]
    )
    tx["SCENARIO"] = tx[c.LABEL] * 2  # 0 genuine, 2 fraud: gives the label away
    tx["SECONDS"] = (tx[c.TX_DATETIME] - pd.Timestamp("2018-04-01")).dt.total_seconds()
    text = draft_spec(tx, "drafted")
    spec = parse_spec(text)
    assert spec.event_id.column == c.TRANSACTION_ID and spec.label.column == c.LABEL
    assert spec.amount == c.TX_AMOUNT
    assert {e.column for e in spec.entities} == {c.CUSTOMER_ID, c.TERMINAL_ID}
    assert "SCENARIO" not in spec.raw_columns() and "SECONDS" not in spec.raw_columns()
    assert "SCENARIO" in text and "label leak" in text


def test_settings_read_the_spec_once_with_its_label_delay_unless_the_setting_is_given(tmp_path):
    from fraudops.settings import Settings

    spec = tmp_path / "claims.yaml"
    spec.write_text(CLAIMS)
    assert Settings(home=tmp_path, dataset_spec=str(spec)).label_delay_days == 14
    overridden = Settings(home=tmp_path, dataset_spec=str(spec), label_delay_days=3)
    assert overridden.spec.label.delay == 3 * 86_400
    spec.write_text(CLAIMS.replace("delay: 14d", "delay: 36h"))
    with pytest.raises(ValueError, match="36h is not a whole number of days"):
        Settings(home=tmp_path, dataset_spec=str(spec))
