"""The engine partitioned by entity (Dask) equals the single-process engine bit for bit.

Dask's synchronous scheduler runs the same graph here in one process (the shuffle, the
per-shard engine, the join back by position); the integration tests run it on a cluster of
processes.
"""

from __future__ import annotations

import re
from pathlib import Path

import dask
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fraudops.data import contract as c
from fraudops.data.card_simulator import CardSimulationConfig, simulate_card_payments
from fraudops.data.contract import DataValidationError
from fraudops.data.partitioned_history import ID_STRIDE, simulate_by_day
from fraudops.data.simulator import SimulationConfig, simulate_transactions
from fraudops.data.sources import atomic_folder
from fraudops.offline import partitioned
from fraudops.offline.engine import compute_spec_features
from fraudops.spec import load_spec
from fraudops.spec.data import prepare_events
from fraudops.spec.model import DatasetSpec
from tests.day_histories import cards_by_day
from tests.spec_strategies import specs, streams

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _one_process():
    with dask.config.set(scheduler="synchronous"):
        yield


def _partitioned(events: pd.DataFrame, spec: DatasetSpec, parts: int, shards: int) -> pd.DataFrame:
    frame = partitioned.partitioned_features(partitioned.from_frame(events, parts), spec, shards)
    out = frame.compute()
    out.index.name = None
    return out


@pytest.mark.parametrize("name", ["handbook", "cards", "handbook-arrival"])
def test_each_shipped_spec_gives_the_single_process_features_bit_for_bit(name: str) -> None:
    spec = load_spec(name)
    if name == "cards":  # text card, merchant and device tokens
        raw = simulate_card_payments(CardSimulationConfig(days=12, seed=3))
    else:
        raw = simulate_transactions(SimulationConfig(days=20, n_customers=400, n_terminals=600))
    events = prepare_events(raw, spec)
    expected = compute_spec_features(events, spec)
    got = _partitioned(events, spec, parts=5, shards=3)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_specs_and_streams_give_the_same_features_partitioned(data: st.DataObject) -> None:
    spec = data.draw(specs())
    stream, _ = data.draw(streams(spec))
    parts = data.draw(st.integers(1, 4))
    shards = data.draw(st.integers(1, 5))
    expected = compute_spec_features(stream, spec)
    got = _partitioned(stream, spec, parts=parts, shards=shards)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)


def test_ties_in_time_are_broken_by_position_in_the_history_as_in_one_process() -> None:
    """Two rows of one card in the same second: the earlier row in the history counts first,
    however the shuffle interleaves them."""
    spec = load_spec("handbook")
    t = pd.Timestamp("2024-01-01 10:00")
    raw = pd.DataFrame(
        {
            c.TRANSACTION_ID: [5, 1, 2, 3],
            c.TX_DATETIME: [t, t, t, t + pd.Timedelta(minutes=1)],
            c.CUSTOMER_ID: [7, 7, 8, 7],
            c.TERMINAL_ID: [1, 2, 1, 1],
            c.TX_AMOUNT: [10.0, 30.0, 5.0, 20.0],
            c.LABEL: [0, 0, 0, 0],
        }
    )
    events = raw.reset_index(drop=True)  # as given: not sorted by id within the second
    expected = compute_spec_features(events, spec)
    got = _partitioned(events, spec, parts=4, shards=2)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["CUSTOMER_ID_NB_TX_1DAY_WINDOW"].tolist() == [1.0, 2.0, 1.0, 3.0]


def test_a_day_partitioned_history_is_read_lazily_and_gives_the_same_files(tmp_path: Path) -> None:
    spec = load_spec("handbook")
    config = SimulationConfig(days=12, n_customers=300, n_terminals=500, seed=5)
    written = simulate_by_day(config, scale=2, out=tmp_path / "history")
    files = partitioned.history_parts(written.path)
    assert len(files) == written.days == 12

    history = partitioned.read_history(files, spec)
    assert history.npartitions == 12 and history.known_divisions
    in_process = partitioned.write_features_in_process(files, spec, tmp_path / "one")
    on_dask = partitioned.write_features(files, spec, tmp_path / "dask", shards=4)

    assert in_process.rows == on_dask.rows == written.rows
    one = pd.read_parquet(tmp_path / "one")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dask"), one, check_exact=True)
    assert list(one.columns) == [c.TRANSACTION_ID, c.TX_DATETIME, *spec.feature_names()]
    assert sorted(p.name for p in (tmp_path / "dask").iterdir())[0] == "part-00000.parquet"


def test_regions_of_a_scaled_history_never_share_an_id(tmp_path: Path) -> None:
    config = SimulationConfig(days=5, n_customers=200, n_terminals=300, seed=1)
    written = simulate_by_day(config, scale=3, out=tmp_path / "h")
    frame = pd.read_parquet(written.path)
    one_region = simulate_transactions(config)
    assert written.rows == len(frame) and 2 * len(one_region) < len(frame) < 4 * len(one_region)
    assert frame[c.TRANSACTION_ID].is_unique
    assert frame[c.TRANSACTION_ID].max() >= 2 * ID_STRIDE
    assert frame[c.CUSTOMER_ID].nunique() > 2 * config.n_customers
    day_files = sorted(written.path.glob("day=*/part-0.parquet"))
    first = pd.read_parquet(day_files[0])
    assert first[c.TX_DATETIME].is_monotonic_increasing
    assert first[c.TX_DATETIME].dt.date.nunique() == 1


def test_generated_event_ids_are_refused_for_a_partitioned_history(tmp_path: Path) -> None:
    spec = load_spec("handbook")
    spec = spec.model_copy(
        update={"event_id": spec.event_id.model_copy(update={"generate": "row_order"})}
    )
    (tmp_path / "a.parquet").write_bytes(b"")
    with pytest.raises(DataValidationError, match=r"event_id\.generate"):
        partitioned.read_history([tmp_path / "a.parquet"], spec)


def test_a_folder_without_parquet_files_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match=re.escape(str(tmp_path))):
        partitioned.history_parts(tmp_path)


def test_a_failed_write_leaves_the_previous_output_whole(tmp_path: Path) -> None:
    out = tmp_path / "features"
    with atomic_folder(out) as partial:
        (partial / "part-00000.parquet").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(out) as partial:
        (partial / "part-00000.parquet").write_text("new")
        raise RuntimeError("worker lost")
    assert [p.name for p in tmp_path.iterdir()] == ["features"]
    assert (out / "part-00000.parquet").read_text() == "old"
    with atomic_folder(out) as partial:
        (partial / "part-00000.parquet").write_text("new")
    assert (out / "part-00000.parquet").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["features"]


def test_entity_features_of_a_subset_holding_whole_entities_equal_the_full_history() -> None:
    """The property the partitioning rests on, checked without Dask."""
    from fraudops.offline.engine import entity_features

    spec = load_spec("handbook")
    raw = simulate_transactions(SimulationConfig(days=15, n_customers=300, n_terminals=400))
    events = prepare_events(raw, spec)
    full = entity_features(events, spec, "terminal")
    subset = events[events[c.TERMINAL_ID] % 3 == 1]
    part = entity_features(subset, spec, "terminal")
    rows = subset.index.to_numpy()
    for name, values in part.items():
        np.testing.assert_array_equal(values, full[name][rows])


@pytest.mark.parametrize(
    ("name", "max_rows"), [("handbook", None), ("handbook", 20_000), ("cards", 30_000)]
)
def test_the_training_set_of_a_partitioned_history_equals_the_one_built_in_memory(
    name: str, max_rows: int | None, tmp_path: Path
) -> None:
    from fraudops.data import history as configured_history
    from fraudops.partitioned_training import build_partitioned_dataset
    from fraudops.settings import Settings
    from fraudops.training import build_dataset, validate

    if name == "cards":
        folder = cards_by_day(tmp_path / "history", days=60, seed=9)
    else:
        config = SimulationConfig(days=62, n_customers=500, n_terminals=800, seed=3)
        folder = simulate_by_day(config, scale=2, out=tmp_path / "history").path
    settings = Settings(
        home=tmp_path / "home",
        data_path=folder,
        dataset_spec=name,
        train_days=14,
        train_max_rows=max_rows,
        feature_shards=3,
    )
    expected = build_dataset(validate(configured_history.load(settings), settings.spec), settings)
    got = build_partitioned_dataset(settings)

    assert got.windows == expected.windows
    pd.testing.assert_frame_equal(got.train_features, expected.train_features, check_exact=True)
    np.testing.assert_array_equal(got.train_labels, expected.train_labels)
    pd.testing.assert_series_equal(got.train_times, expected.train_times)
    pd.testing.assert_frame_equal(got.test_features, expected.test_features, check_exact=True)
    pd.testing.assert_frame_equal(got.test_frame, expected.test_frame)
    pd.testing.assert_frame_equal(got.test_segments, expected.test_segments)
    assert got.data_sha256 == expected.data_sha256
    frauds = int(expected.train_labels.sum())
    if max_rows is not None:  # sampled: every fraud kept, about max_rows rows in all
        assert frauds > 0 and len(expected.train_labels) < 1.2 * max_rows
    assert len(got.test_frame) > 1_000 and frauds > 0


def test_the_training_sample_keeps_every_fraud_and_one_share_of_genuine_rows_a_day() -> None:
    from fraudops.data.splits import training_sample

    rng = np.random.default_rng(0)
    ids = pd.Series(np.arange(200_000, dtype=np.int64) * 7 + 3)
    labels = (rng.random(len(ids)) < 0.01).astype(np.int8)
    days = np.repeat(np.arange(20), len(ids) // 20)
    kept, share = training_sample(ids, labels, max_rows=50_000)
    assert kept[labels == 1].all()
    genuine = labels == 0
    assert share == pytest.approx((50_000 - labels.sum()) / genuine.sum())
    assert abs(kept.sum() - 50_000) < 600  # binomial: sd about 190
    per_day = np.array([kept[genuine & (days == d)].mean() for d in range(20)])
    assert np.abs(per_day - share).max() < 0.02
    shuffled = rng.permutation(len(ids))
    again, _ = training_sample(ids.iloc[shuffled].reset_index(drop=True), labels[shuffled], 50_000)
    np.testing.assert_array_equal(again, kept[shuffled])  # a row's fate is its id's, not its place
    everything, whole = training_sample(ids, labels, None)
    assert everything.all() and whole == 1.0
