import datetime as dt
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from fraudops import registry
from fraudops.drift import monitor
from fraudops.drift.monitor import (
    Champion,
    MonitorInputError,
    check_reference,
    decide,
    last_labelled_day,
)
from fraudops.drift.report import MIN_ROWS, MONITORED, DriftFigures
from fraudops.settings import Settings

pytestmark = pytest.mark.unit
SETTINGS = Settings(
    drift_share_threshold=0.5,
    drift_windows_needed=2,
    drift_windows_considered=3,
    monitor_min_rows=1000,
    retrain_cooldown_days=7,
    performance_drop=0.1,
    min_labelled_rows=500,
)
CHAMPION = Champion(
    version="3",
    reference=pd.DataFrame(),
    threshold=0.2,
    average_precision=0.7,
    train_end="2018-05-18",
)
DAY = dt.date(2018, 6, 20)


def figures(share: float, rows: int = 5000, ap: float | None = None, labelled: int = 0):
    drifted = [f"c{i}" for i in range(round(share * 19))]
    return DriftFigures(rows, 5000, share, drifted, {}, False, labelled, ap, None)


def past(drifted: bool, days_ago: int, retrain: bool = False, version: str = "3") -> dict:
    end = DAY - dt.timedelta(days=days_ago)
    return {
        "window_end": end.isoformat(),
        "drifted": drifted,
        "retrain": retrain,
        "champion_version": version,
    }


def test_clean_window_does_not_retrain():
    retrain, drifted, reasons = decide(figures(0.05), CHAMPION, [], DAY, SETTINGS)
    assert not retrain and not drifted and reasons[-1] == "no retrain"


def test_one_drifted_window_is_not_enough():
    retrain, drifted, _ = decide(
        figures(0.8), CHAMPION, [past(False, 2), past(False, 1)], DAY, SETTINGS
    )
    assert drifted and not retrain


def test_two_drifted_windows_of_the_last_three_retrain():
    retrain, _, reasons = decide(
        figures(0.8), CHAMPION, [past(True, 2), past(False, 1)], DAY, SETTINGS
    )
    assert retrain and "2 of the last 3 windows drifted" in " ".join(reasons)


def test_windows_of_an_earlier_champion_do_not_count():
    history = [past(True, 2, version="2"), past(True, 1, version="2")]
    assert not decide(figures(0.8), CHAMPION, history, DAY, SETTINGS)[0]


def test_small_window_gives_no_decision():
    retrain, drifted, reasons = decide(
        figures(0.9, rows=200), CHAMPION, [past(True, 1)], DAY, SETTINGS
    )
    assert not retrain and not drifted and "no decision" in reasons[0]


def test_cooldown_after_a_retrain_suppresses_another():
    history = [past(True, 3, retrain=True), past(True, 1)]
    retrain, _, reasons = decide(figures(0.8), CHAMPION, history, DAY, SETTINGS)
    assert not retrain and "cooldown" in reasons[-1]
    later = [past(True, 8, retrain=True), past(True, 1)]
    assert decide(figures(0.8), CHAMPION, later, DAY, SETTINGS)[0]


def test_labelled_performance_drop_retrains_without_data_drift():
    retrain, _, reasons = decide(figures(0.0, ap=0.5, labelled=800), CHAMPION, [], DAY, SETTINGS)
    assert retrain and "(dropped)" in " ".join(reasons)
    too_few = decide(figures(0.0, ap=0.5, labelled=100), CHAMPION, [], DAY, SETTINGS)
    assert not too_few[0]


def test_retrain_tests_on_the_last_labelled_day():
    assert last_labelled_day(Settings(label_delay_days=7), DAY) == dt.date(2018, 6, 13)


def reference(rows: int) -> pd.DataFrame:
    values = np.random.default_rng(0).random((rows, len(MONITORED)))
    return pd.DataFrame(values, columns=list(MONITORED))


@pytest.fixture
def champion_with(monkeypatch):
    """Make ``load_champion_reference`` find champion v4 holding the given stored reference."""

    def install(stored: pd.DataFrame) -> None:
        version = SimpleNamespace(
            version="4", run_id="run-4", tags={"threshold": "0.3", "label_delay_days": "7"}
        )
        monkeypatch.setattr(registry, "configure_mlflow", lambda _settings: "")
        monkeypatch.setattr(registry, "client_for", lambda _settings: None)
        monkeypatch.setattr(registry, "version_by_alias", lambda *_args: version)
        monkeypatch.setattr(monitor, "_reference", lambda *_args: stored)
        monkeypatch.setattr(monitor, "_score_reference", lambda *_args: None)

    return install


def test_champion_reference_too_small_is_refused_with_its_counts(champion_with):
    champion_with(reference(MIN_ROWS - 1))
    with pytest.raises(
        MonitorInputError,
        match=rf"champion v4: not enough rows in the reference: {MIN_ROWS - 1} rows, "
        rf"at least {MIN_ROWS} needed",
    ):
        monitor.load_champion_reference(SETTINGS)
    champion_with(reference(MIN_ROWS))
    assert len(monitor.load_champion_reference(SETTINGS).reference) == MIN_ROWS


def test_champion_reference_with_an_all_null_column_is_refused():
    stored = reference(200).assign(score=np.nan)
    with pytest.raises(MonitorInputError, match=r"champion v7: .*\['score'\] have no finite"):
        check_reference(stored, "7")
    with pytest.raises(MonitorInputError, match="champion v7: reference window has no rows"):
        check_reference(stored.iloc[0:0], "7")
    check_reference(stored.assign(score=0.5), "7")  # a constant column Evidently can compare


def test_the_risk_rule_decides_whether_a_window_drifted_whatever_the_column_share():
    from fraudops.drift.risk import RiskFigures

    risk_rule = SETTINGS.model_copy(update={"drift_rule": "risk"})
    important = RiskFigures(True, 0.6, ["TX_AMOUNT"], False, {}, {"TX_AMOUNT": 0.6})
    retrain, drifted, reasons = decide(
        figures(0.05), CHAMPION, [past(True, 1)], DAY, risk_rule, important
    )
    assert drifted and retrain and reasons[0].startswith("drift risk 0.60 >= 0.25")
    chronic = RiskFigures(False, 0.0, [], False, {}, {})
    _, drifted, reasons = decide(figures(0.8), CHAMPION, [], DAY, risk_rule, chronic)
    assert not drifted and "prediction drift no" in reasons[0]
    share_rule = SETTINGS.model_copy(update={"drift_rule": "share"})
    _, drifted, _ = decide(figures(0.8), CHAMPION, [], DAY, share_rule, chronic)
    assert drifted  # the old rule, kept for comparison
    partial = RiskFigures(False, 0.6, ["TX_AMOUNT"], True, {}, {}, full_window=False)
    _, drifted, reasons = decide(figures(0.8), CHAMPION, [], DAY, risk_rule, partial)
    assert not drifted and reasons[0].startswith("partial window (fewer than 7 days")


def test_an_estimated_drop_before_labels_retrains_and_real_labels_overrule_the_estimate():
    from fraudops.drift.estimate import EstimatedPerformance

    low = EstimatedPerformance(0.4, 0.3, 0.5, 0.01, 5000, 20_000)
    retrain, _, reasons = decide(figures(0.0), CHAMPION, [], DAY, SETTINGS, None, low)
    assert retrain and "estimated AP (CBPE, before labels) 0.400" in " ".join(reasons)
    labelled = figures(0.0, ap=0.69, labelled=600)  # enough real labels, no drop
    retrain, _, reasons = decide(labelled, CHAMPION, [], DAY, SETTINGS, None, low)
    assert not retrain and "CBPE" not in " ".join(reasons)
    fine = EstimatedPerformance(0.68, 0.3, 0.5, 0.01, 5000, 20_000)
    assert not decide(figures(0.0), CHAMPION, [], DAY, SETTINGS, None, fine)[0]
