"""Drift on the champion's columns: categorical features, the spec a version records."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fraudops import registry
from fraudops.data import contract as c
from fraudops.drift import monitor
from fraudops.drift.monitor import MonitorInputError, champion_columns
from fraudops.drift.report import (
    HANDBOOK_COLUMNS,
    MONITORED,
    SCORE,
    DriftColumns,
    DriftInputError,
    reference_sample,
    run_drift,
)
from fraudops.settings import Settings
from fraudops.spec import default_spec, load_spec, spec_sha256, spec_yaml
from monitoring.flow import run_monitoring

pytestmark = pytest.mark.unit

CARDS = load_spec("cards")
CARDS_COLUMNS = DriftColumns.from_spec(CARDS)
MCC = ["5411", "5812", "5999", "4829", "7995"]
CHANNEL = ["POS", "ECOM", "ATM"]
COUNTRY = ["FR", "DE", "ES", "US"]


def cards_frame(
    rows: int,
    seed: int = 0,
    channel_mix: tuple[float, float, float] = (0.6, 0.3, 0.1),
    start: str = "2024-03-01",
    days: int = 10,
) -> pd.DataFrame:
    """Rows × the cards spec's 43 features (mcc, channel, country as strings), score, time."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.random((rows, len(CARDS_COLUMNS.numerical))), columns=list(CARDS_COLUMNS.numerical)
    )
    frame["mcc"] = rng.choice(MCC, rows)
    frame["channel"] = rng.choice(CHANNEL, rows, p=list(channel_mix))
    frame["country"] = rng.choice(COUNTRY, rows, p=[0.7, 0.1, 0.1, 0.1])
    minutes = rng.integers(0, days * 1440, rows)
    frame[c.TX_DATETIME] = pd.Timestamp(start) + pd.to_timedelta(minutes, unit="min")
    return frame


@pytest.fixture
def no_evidently(monkeypatch):
    """Evidently's ``Report.run`` fails the test if it is called."""
    from evidently import Report

    def called(*_args, **_kwargs):
        pytest.fail("Evidently's Report.run was called")

    monkeypatch.setattr(Report, "run", called)


def value_drift_methods(snapshot) -> dict[str, str]:
    """Column → drift method, read from Evidently's own snapshot."""
    return {
        m["config"]["column"]: m["config"]["method"]
        for m in snapshot.dict()["metrics"]
        if m["config"].get("type", "").endswith("ValueDrift")
    }


def test_columns_follow_the_spec():
    assert DriftColumns.from_spec(default_spec()) == HANDBOOK_COLUMNS
    assert HANDBOOK_COLUMNS.monitored == MONITORED and HANDBOOK_COLUMNS.categorical == ()
    assert len(CARDS_COLUMNS.features) == 43 and CARDS_COLUMNS.spec_name == "cards"
    assert CARDS_COLUMNS.categorical == ("mcc", "channel", "country")
    assert CARDS_COLUMNS.numerical[-1] == SCORE and len(CARDS_COLUMNS.numerical) == 41
    assert not set(CARDS_COLUMNS.numerical) & set(CARDS_COLUMNS.categorical)
    # a recorded list narrower than the spec's keeps its own order and the spec's types
    assert DriftColumns.from_spec(CARDS, ["channel", "amount"]).categorical == ("channel",)
    with pytest.raises(DriftInputError, match=r"categorical column\(s\) \['mcc'\]"):
        DriftColumns(("amount",), ("mcc",), "x")
    with pytest.raises(DriftInputError, match="called 'score'"):
        DriftColumns(("amount", SCORE))


def test_categorical_columns_get_a_categorical_test_and_a_clean_window_stays_clean():
    reference, current = cards_frame(3_000, seed=0), cards_frame(2_000, seed=1)
    snapshot, figures = run_drift(reference, current, threshold=0.5, columns=CARDS_COLUMNS)
    methods = value_drift_methods(snapshot)
    assert set(methods) == set(CARDS_COLUMNS.monitored)
    for column in CARDS_COLUMNS.categorical:  # above 1,000 rows: Jensen-Shannon, not Wasserstein
        assert methods[column] == "Jensen-Shannon distance"
    assert methods["amount"] == methods[SCORE] == "Wasserstein distance (normed)"
    assert figures.column_methods == methods
    assert figures.spec_name == "cards"
    assert figures.categorical_columns == ["mcc", "channel", "country"]
    assert not set(CARDS_COLUMNS.categorical) & set(figures.drifted_columns)
    assert figures.drift_share < 0.15


def test_a_shifted_category_mix_drifts_that_column_only():
    reference = cards_frame(3_000, seed=0)
    current = cards_frame(2_000, seed=1, channel_mix=(0.3, 0.6, 0.1))
    _, figures = run_drift(reference, current, threshold=0.5, columns=CARDS_COLUMNS)
    assert "channel" in figures.drifted_columns
    assert not {"mcc", "country"} & set(figures.drifted_columns)
    assert figures.column_scores["channel"] > 0.1
    assert figures.drift_share == pytest.approx(len(figures.drifted_columns) / 44)


def test_small_samples_use_chi_square_on_categories():
    reference = cards_frame(600, seed=0)
    current = cards_frame(400, seed=1, channel_mix=(0.2, 0.7, 0.1))
    snapshot, figures = run_drift(reference, current, threshold=0.5, columns=CARDS_COLUMNS)
    methods = value_drift_methods(snapshot)
    assert {methods[col] for col in CARDS_COLUMNS.categorical} == {"chi-square p_value"}
    assert "channel" in figures.drifted_columns  # a p-value: drift is a small score
    assert figures.column_scores["channel"] < 0.05


def test_categories_compare_as_strings_whatever_their_dtype():
    reference = cards_frame(1_500, seed=0)
    current = cards_frame(1_500, seed=1)
    current["mcc"] = current["mcc"].astype(int)  # codes on one side, text on the other
    current["country"] = current["country"].astype("category")
    current.loc[::50, "channel"] = None  # a few nulls stay nulls
    _, figures = run_drift(reference, current, threshold=0.5, columns=CARDS_COLUMNS)
    assert not {"mcc", "country", "channel"} & set(figures.drifted_columns)


def test_a_categorical_column_without_values_is_named_before_evidently(no_evidently):
    current = cards_frame(500, seed=1)
    current["country"] = None
    with pytest.raises(
        DriftInputError, match=r"column\(s\) \['country'\] have no finite value in the 500 current"
    ):
        run_drift(cards_frame(500), current, threshold=0.5, columns=CARDS_COLUMNS)


def test_reference_keeps_categorical_strings_for_the_model_and_the_file(tmp_path):
    frame = cards_frame(2_000)
    features = frame[list(CARDS_COLUMNS.features)]
    seen = []

    def score(sample: pd.DataFrame) -> np.ndarray:
        seen.append(sample)
        return np.full(len(sample), 0.5)

    reference = reference_sample(features, frame[c.TX_DATETIME], score, max_rows=300)
    assert len(reference) == 300 and list(seen[0].columns) == list(CARDS_COLUMNS.features)
    assert seen[0]["channel"].isin(CHANNEL).all()  # the model gets the strings as they were
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path, index=False)
    stored = pd.read_parquet(path)
    assert stored["mcc"].isin(MCC).all() and stored["country"].map(type).eq(str).all()
    monitor.check_reference(stored, "5", columns=CARDS_COLUMNS)  # comparable as stored


def version(tags: dict[str, str], number: str = "4") -> SimpleNamespace:
    return SimpleNamespace(version=number, run_id=f"run-{number}", tags=tags)


def cards_tags() -> dict[str, str]:
    return {
        "features": ",".join(CARDS.feature_names()),
        "spec_name": "cards",
        "spec_sha256": spec_sha256(CARDS),
        "threshold": "0.3",
        "label_delay_days": "7",
    }


def test_a_version_with_a_stored_spec_gives_its_typed_columns(monkeypatch):
    monkeypatch.setattr(monitor, "_spec_text", lambda *_args: spec_yaml(CARDS))
    columns = champion_columns("sqlite:///unused", version(cards_tags()))
    assert columns == CARDS_COLUMNS


def test_a_version_without_spec_tags_is_the_handbook_without_a_download(monkeypatch):
    monkeypatch.setattr(
        monitor, "_spec_text", lambda *_: pytest.fail("downloaded a spec of an old version")
    )
    old = version({"features": ",".join(c.FEATURES), "threshold": "0.3"})
    assert champion_columns("sqlite:///unused", old) == HANDBOOK_COLUMNS
    assert len(champion_columns("sqlite:///unused", version({})).features) == 18
    named = version({"spec_name": "handbook", "threshold": "0.3"})  # a card's legacy default
    assert champion_columns("sqlite:///unused", named) == HANDBOOK_COLUMNS


def test_a_missing_spec_artifact_falls_back_only_to_a_shipped_spec(monkeypatch):
    def missing(*_args):
        raise OSError("no such artifact")

    monkeypatch.setattr(monitor, "_spec_text", missing)
    assert champion_columns("sqlite:///unused", version(cards_tags())) == CARDS_COLUMNS
    unknown = {**cards_tags(), "spec_name": "claims", "spec_sha256": "0" * 64}
    with pytest.raises(
        MonitorInputError, match=r"v4 was trained with the dataset spec 'claims'.*no spec/"
    ):
        champion_columns("sqlite:///unused", version(unknown))


def test_an_unreadable_stored_spec_is_named(monkeypatch):
    monkeypatch.setattr(monitor, "_spec_text", lambda *_args: "name: [")
    with pytest.raises(MonitorInputError, match=r"champion v4's spec/dataset.yaml: not valid"):
        champion_columns("sqlite:///unused", version(cards_tags()))


def write_log(settings: Settings, frame: pd.DataFrame) -> None:
    """``frame`` (with ``tx_datetime``) as prediction-log partitions, one file per day."""
    for day, rows in frame.groupby(frame["tx_datetime"].dt.date):
        folder = settings.prediction_log_dir / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(folder / "part-0.parquet", index=False)


def handbook_log(rows: int = 700, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.random((rows, len(MONITORED))), columns=list(MONITORED))
    minutes = rng.integers(0, 5 * 1440, rows)
    return frame.assign(
        transaction_id=np.arange(rows),
        tx_datetime=pd.Timestamp("2024-03-20") + pd.to_timedelta(minutes, unit="min"),
    )


@pytest.fixture
def cards_champion(monkeypatch):
    """``load_champion_reference`` finds a cards champion v9 (spec artifact, reference)."""
    monkeypatch.setattr(registry, "configure_mlflow", lambda _settings: "")
    monkeypatch.setattr(registry, "client_for", lambda _settings: None)
    monkeypatch.setattr(registry, "version_by_alias", lambda *_: version(cards_tags(), "9"))
    reference = cards_frame(2_000).assign(**{SCORE: 0.2})
    monkeypatch.setattr(monitor, "_reference", lambda *_args: reference)
    monkeypatch.setattr(monitor, "_score_reference", lambda *_args: None)  # an older version
    monkeypatch.setattr(monitor, "_spec_text", lambda *_args: spec_yaml(CARDS))


def test_a_champion_whose_features_the_log_lacks_ends_before_evidently(
    tmp_path, cards_champion, no_evidently
):
    settings = Settings(home=tmp_path / "home")
    write_log(settings, handbook_log())
    champion = monitor.load_champion_reference(settings)
    assert champion.columns == CARDS_COLUMNS
    never = lambda *_: pytest.fail("retrained on bad input")  # noqa: E731
    with pytest.raises(MonitorInputError) as caught:
        run_monitoring(settings, retrain=never)
    message = str(caught.value)
    assert message.startswith("current window 2024-03-18..2024-03-24 lacks column(s) ['amount', ")
    assert "'mcc', 'channel', 'country'" in message and "of champion v9 (spec 'cards')" in message
    assert "written by a service of another spec or champion" in message
    assert "TX_AMOUNT" not in message  # the handbook columns the log does hold
    assert monitor.read_decisions(settings) == []


def test_a_handbook_champion_reads_its_columns_from_the_log(tmp_path):
    settings = Settings(home=tmp_path / "home", monitor_max_rows=500)
    log = handbook_log()
    write_log(settings, log.assign(decision="pass"))
    current, start, end = monitor.current_window(settings)
    assert (start, end) == (dt.date(2024, 3, 18), dt.date(2024, 3, 24))
    assert list(current.columns) == ["transaction_id", "tx_datetime", *MONITORED]
    assert len(current) == 500
    with pytest.raises(MonitorInputError, match=r"lacks column\(s\) \['amount', 'mcc'"):
        monitor.current_window(settings, columns=CARDS_COLUMNS, champion="9")


def test_a_log_holding_the_champions_columns_is_monitored_on_them(tmp_path, cards_champion):
    # what the service will log once it serves other specs: the cards features by name
    settings = Settings(home=tmp_path / "home", monitor_min_rows=500)
    log = cards_frame(1_500, seed=4, channel_mix=(0.2, 0.7, 0.1), start="2024-03-20", days=5)
    log = log.rename(columns={c.TX_DATETIME: "tx_datetime"}).assign(
        transaction_id=np.arange(len(log)), **{SCORE: 0.2}
    )
    write_log(settings, log)

    def without_records(step):  # the decision as it would be recorded, without the files
        return (
            (lambda _settings, decision, *_snapshots: decision) if step is monitor.record else step
        )

    decision = run_monitoring(settings, step=without_records, retrain=lambda *_: {})
    assert decision.champion_version == "9" and decision.champion_spec == "cards"
    figures = decision.figures
    assert figures["spec_name"] == "cards" and figures["current_rows"] == 1_500
    assert figures["column_methods"]["channel"] == "Jensen-Shannon distance"
    assert "channel" in figures["drifted_columns"]
    assert set(figures["column_scores"]) == set(CARDS_COLUMNS.monitored)
