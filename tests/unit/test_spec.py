"""The dataset spec: bad specs and bad data fail naming the key and the column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fraudops.data import contract as c
from fraudops.data.contract import DataValidationError, validate_transactions
from fraudops.spec import SpecError, default_spec, load_spec, parse_spec, spec_sha256
from fraudops.spec.data import check_history, prepare_events, read_events
from fraudops.spec.draft import draft_spec
from fraudops.spec.model import format_duration, parse_duration
from tests.conftest import make_transactions

pytestmark = pytest.mark.unit

CLAIMS = """
name: claims
reading: {sep: ";", decimal: ","}
event_id: {column: claim_id, type: str}
event_time: {column: step, unit: 1d, origin: "2020-01-01"}
label: {column: fraud, positive: ["Y"], delay: 14d}
amount: claim_amount
entities:
  - {name: policy, column: policy_no, type: str}
  - {name: garage, column: garage, type: str, pii: false}
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
#: The shipped handbook spec's sha256 before `label.known_at` existed (an unset key is left out).
HANDBOOK_SHA256 = "637d5a77741ee12138293fdabc81a5de561585f609271606fb2637d513065ac5"


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
        (("lag: label_delay", "lag: label_arival"), "aggregations.1.lag", "label_arrival"),
        (("amount: claim_amount", "amount: vehicle"), "amount", "not declared"),
        (("evaluation: {", "evaluaton: {"), "evaluaton", "unknown key"),
        (("column: claim_id, type: str", "generate: row_order, type: str"), "event_id", "(int)"),
        (("column: claim_id, type: str", "column: claim_id, type: text"), "event_id.type", "'str'"),
        (("column: garage, type: str", "column: policy_no, type: int"), "entities.1.type", "one"),
    ],
)
def test_a_bad_spec_names_the_key(change, key, words):
    old, new = change
    assert old in CLAIMS
    with pytest.raises(SpecError) as raised:
        parse_spec(CLAIMS.replace(old, new), "claims.yaml")
    assert "claims.yaml" in str(raised.value)
    assert key in str(raised.value) and words in str(raised.value)


def test_a_key_type_of_int_is_the_default_and_left_out_of_the_dump():
    # specs written before keys had a type keep their sha256 (registered versions stay usable)
    assert default_spec().event_id.type == "int"
    assert {e.type for e in default_spec().entities} == {"int"}
    dumped = default_spec().model_dump(mode="json")
    assert "type" not in dumped["event_id"] and all("type" not in e for e in dumped["entities"])
    explicit = CLAIMS.replace("policy_no, type: str", "policy_no, type: int")
    assert spec_sha256(parse_spec(explicit)) == spec_sha256(
        parse_spec(explicit.replace("policy_no, type: int", "policy_no"))
    )
    assert parse_spec(CLAIMS).model_dump()["event_id"]["type"] == "str"
    assert spec_sha256(parse_spec(explicit)) != spec_sha256(parse_spec(CLAIMS))
    cards = load_spec("cards")
    assert cards.event_id.type == "str" and {e.type for e in cards.entities} == {"str"}


def test_an_unset_known_at_is_left_out_of_the_dump_and_the_hash():
    # the handbook spec's sha256 from before `label.known_at` existed: registered versions
    # and Redis prefixes made with it stay valid
    assert spec_sha256(default_spec()) == HANDBOOK_SHA256
    assert "known_at" not in default_spec().model_dump()["label"]
    arrival = CLAIMS.replace("delay: 14d}", "delay: 14d, known_at: decided_at}")
    assert parse_spec(arrival).model_dump()["label"]["known_at"] == "decided_at"
    assert spec_sha256(parse_spec(arrival)) != spec_sha256(parse_spec(CLAIMS))


def test_known_at_is_read_as_times_empty_is_allowed_and_before_the_event_refused():
    spec = parse_spec(
        CLAIMS.replace("delay: 14d}", "delay: 14d, known_at: decided}")
        .replace("amount: claim_amount\n", "")
        .split("entities:")[0]
    )
    frame = pd.DataFrame(
        {
            "claim_id": ["a", "b", "c"],
            "step": [0, 1, 2],
            "fraud": ["Y", "N", "Y"],
            "decided": [0.5, None, 2.25],  # steps of the event time's unit (1 d)
        }
    )
    events = prepare_events(frame, spec)
    assert events["decided"].tolist()[0] == pd.Timestamp("2020-01-01 12:00")
    assert pd.isna(events["decided"].iloc[1])
    assert "decided" not in prepare_events(frame.drop(columns="decided"), spec)
    with pytest.raises(DataValidationError) as raised:
        prepare_events(frame.assign(decided=[0.5, None, 1.0]), spec)
    assert "'decided' (label.known_at) has labels known before their event" in str(raised.value)


def test_the_handbook_arrival_spec_is_the_handbook_plus_two_known_risk_features():
    handbook, arrival = default_spec(), load_spec("handbook-arrival")
    added = [f for f in arrival.feature_names() if f not in handbook.feature_names()]
    assert added == ["TERMINAL_ID_KNOWN_RISK_1DAY_WINDOW", "TERMINAL_ID_KNOWN_RISK_7DAY_WINDOW"]
    assert [f for f in arrival.feature_names() if f not in added] == handbook.feature_names()
    assert arrival.label.known_at == "LABEL_KNOWN_AT" and arrival.labels_by_arrival()
    assert not handbook.labels_by_arrival()
    assert arrival.raw_columns() == handbook.raw_columns()  # the known time is not scored


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


def test_an_int_entity_with_text_values_names_the_key_and_says_declare_str(tmp_path):
    spec = parse_spec(CLAIMS.replace("policy_no, type: str", "policy_no"))
    with pytest.raises(DataValidationError) as raised:
        prepare_events(read_events(claims_file(tmp_path), spec), spec)
    message = str(raised.value)
    assert "column 'policy_no' (entities.0.column) is declared `entities.0.type: int`" in message
    assert "declare `type: str`" in message
    assert "3 of 3 row(s), values ['P1', 'P1', 'P2'] at rows [0, 1, 2]" in message


@pytest.mark.parametrize(
    ("values", "bad"),
    [
        ([1.0, 2.5, 3.0], [2.5]),  # a fraction
        ([1.0, float("inf"), 3.0], [float("inf")]),
        (["1", "007", "x"], ["007", "x"]),  # 007 would merge with 7: text keys
        ([True, False, True], [True, False, True]),
    ],
)
def test_an_int_key_refuses_what_is_not_a_whole_number(values, bad):
    frame = pd.DataFrame({"claim_id": values, "step": [0, 1, 2], "fraud": ["N", "Y", "N"]})
    spec = parse_spec(
        CLAIMS.replace("claim_id, type: str", "claim_id")
        .replace("amount: claim_amount\n", "")
        .split("entities:")[0]
    )
    with pytest.raises(DataValidationError) as raised:
        prepare_events(frame, spec)
    assert "'claim_id' (event_id.column) is declared `event_id.type: int`" in str(raised.value)
    assert f"values {bad}" in str(raised.value)


def test_an_int_key_takes_whole_numbers_and_plain_digit_text_as_int64():
    frame = pd.DataFrame({"claim_id": ["12", "-3", "0"], "step": [0, 1, 2], "fraud": [0, 1, 0]})
    spec = parse_spec(
        CLAIMS.replace("claim_id, type: str", "claim_id")
        .replace('positive: ["Y"]', "positive: [1]")
        .replace("amount: claim_amount\n", "")
        .split("entities:")[0]
    )
    events = prepare_events(frame, spec)
    assert events["claim_id"].dtype == np.int64 and events["claim_id"].tolist() == [12, -3, 0]
    floats = prepare_events(frame.assign(claim_id=[12.0, 7.0, 3.0]), spec)
    assert floats["claim_id"].dtype == np.int64 and floats["claim_id"].tolist() == [12, 7, 3]


def test_a_str_entity_with_numbers_gives_their_text(tmp_path):
    spec = parse_spec(CLAIMS)
    frame = read_events(claims_file(tmp_path), spec)
    numbers = frame.assign(
        claim_id=[101, 102, 103], policy_no=[7.0, 7.0, 123.0], garage=[1.5, 2.0, 1.5]
    )
    events = prepare_events(numbers, spec)
    assert events["claim_id"].tolist() == ["101", "102", "103"]
    assert events["policy_no"].tolist() == ["7", "7", "123"]  # not "7.0"
    assert events["garage"].tolist() == ["1.5", "2", "1.5"]
    assert all(type(v) is str for column in ("claim_id", "policy_no") for v in events[column])
    assert events["policy_no"].dtype == object


def test_a_csv_key_declared_str_keeps_its_text_with_leading_zeros(tmp_path):
    spec = parse_spec(CLAIMS.replace("reading: {", "reading: {rename: {policy: policy_no}, "))
    rows = [
        "claim_id;step;policy;garage;claim_amount;vehicle;fraud",
        "0101;0;007;12;100,50;car;N",
        "0102;3;007;12;2000,00;van;Y",
        "0103;40;7;13;10,00;;N",
    ]
    events = prepare_events(read_events(claims_file(tmp_path, rows), spec), spec)
    assert events["claim_id"].tolist() == ["0101", "0102", "0103"]
    assert events["policy_no"].tolist() == ["007", "007", "7"]  # two policies, as online
    assert events["garage"].tolist() == ["12", "12", "13"]


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
    assert spec.event_id.type == "int" and {e.type for e in spec.entities} == {"int"}


def test_a_draft_declares_text_ids_and_entities_as_str_and_numbers_as_int():
    tx = make_transactions(
        [
            (f"2018-04-{1 + i % 20:02d} 10:00:00", i % 30, i % 50, 10.0 + i, int(i % 7 == 0))
            for i in range(300)
        ]
    )
    tx[c.TRANSACTION_ID] = "T-" + tx[c.TRANSACTION_ID].astype(str)
    tx[c.CUSTOMER_ID] = "C" + tx[c.CUSTOMER_ID].astype(str)
    text = draft_spec(tx, "drafted")
    spec = parse_spec(text)
    assert spec.event_id.column == c.TRANSACTION_ID and spec.event_id.type == "str"
    types = {e.column: e.type for e in spec.entities}
    assert types == {c.CUSTOMER_ID: "str", c.TERMINAL_ID: "int"}
    assert f"column: {c.CUSTOMER_ID}\n  type: str" in text
    assert f"column: {c.TERMINAL_ID}\n  type: int" in text
    events = prepare_events(tx, spec)  # the draft reads the same file
    assert events[c.CUSTOMER_ID].iloc[0].startswith("C") and events[c.TERMINAL_ID].dtype == np.int64


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
