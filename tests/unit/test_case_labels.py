"""Labels with provenance: a chargeback wins over an analyst's decision; agreement counts."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from fraudops.cases.labels import agreement, resolve_labels
from fraudops.logs.records import LabelRecord

pytestmark = pytest.mark.unit
T0 = dt.datetime(2018, 6, 1)


def _log(*labels: LabelRecord) -> pd.DataFrame:
    return pd.DataFrame([label.row() for label in labels])


def _label(event: int, fraud: int, hours: int, source: str = "chargeback") -> LabelRecord:
    by = "ann" if source == "analyst" else None
    return LabelRecord(event, fraud, T0 + dt.timedelta(hours=hours), source=source, labelled_by=by)


def test_a_chargeback_wins_over_an_earlier_or_later_analyst_decision():
    resolved = resolve_labels(
        _log(
            _label(1, 1, 2, "analyst"),
            _label(1, 0, 500),  # chargeback says legitimate: it wins
            _label(2, 1, 400),
            _label(2, 0, 600, "analyst"),  # an analyst after the chargeback does not win
            _label(3, 1, 3, "analyst"),  # only an analyst: it counts
        )
    )
    assert resolved.loc[1, "is_fraud"] == 0 and resolved.loc[1, "source"] == "chargeback"
    assert resolved.loc[2, "is_fraud"] == 1 and resolved.loc[2, "source"] == "chargeback"
    assert resolved.loc[3, "is_fraud"] == 1 and resolved.loc[3, "labelled_by"] == "ann"


def test_the_latest_label_of_one_source_counts_and_old_logs_read_as_chargebacks():
    old = pd.DataFrame(
        {"transaction_id": [5, 5], "is_fraud": [1, 0], "label_time": [T0, T0 + dt.timedelta(1)]}
    )
    resolved = resolve_labels(old)
    assert resolved.loc[5, "is_fraud"] == 0 and resolved.loc[5, "source"] == "chargeback"


def test_agreement_counts_events_with_both_labels_and_each_kind_of_disagreement():
    figures = agreement(
        _log(
            _label(1, 1, 2, "analyst"),
            _label(1, 1, 500),  # agree
            _label(2, 1, 2, "analyst"),
            _label(2, 0, 500),  # analyst fraud, cleared
            _label(3, 0, 2, "analyst"),
            _label(3, 1, 500),  # analyst missed a fraud
            _label(4, 1, 2, "analyst"),  # no chargeback yet: not compared
            _label(5, 1, 500),
        )
    )
    assert (figures.compared, figures.agreed) == (3, 1)
    assert (figures.analyst_frauds_cleared, figures.analyst_misses) == (1, 1)
    assert figures.rate == pytest.approx(1 / 3)
    assert agreement(_log(_label(1, 1, 2))).rate is None


def test_review_figures_read_the_queue_and_the_recent_label_log(tmp_path):
    from fraudops.cases.figures import review_figures
    from fraudops.cases.store import CaseStore, NewCase
    from fraudops.logs.predlog import LogWriter

    store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}")
    store.open_cases([NewCase(1, T0, 0.9, 0.5, "1", (), {}, {})], now=T0)
    writer = LogWriter(tmp_path / "labels", "label_time", flush_seconds=0.05)
    writer.append_many([r.row() for r in (_label(1, 1, 2, "analyst"), _label(1, 1, 400))])
    writer.close()
    figures = review_figures(store, tmp_path / "labels", now=T0 + dt.timedelta(hours=3))
    store.close()
    assert (figures.queue.open, figures.queue.oldest_open_hours) == (1, 3.0)
    assert (figures.agreement.compared, figures.agreement.agreed) == (1, 1)
    assert figures.summary().startswith("1 cases undecided (oldest 3.0 h)")
    assert "analysts agreed with 1 of 1 later chargebacks" in figures.summary()


def test_the_figure_reader_reads_each_label_file_once_and_agrees_with_a_fresh_read(
    tmp_path, monkeypatch
):
    from fraudops.cases.figures import FigureReader
    from fraudops.cases.store import CaseStore, NewCase
    from fraudops.logs.predlog import LogWriter

    def write(*labels: LabelRecord) -> None:
        writer = LogWriter(tmp_path / "labels", "label_time", flush_seconds=0.05)
        writer.append_many([label.row() for label in labels])
        writer.close()

    read = []
    real_read = pd.read_parquet
    monkeypatch.setattr(pd, "read_parquet", lambda path: read.append(path) or real_read(path))
    store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}")
    store.open_cases([NewCase(1, T0, 0.9, 0.5, "1", (), {}, {})], now=T0)
    write(_label(1, 1, 2, "analyst"), _label(1, 1, 400), _label(9, 1, 400))  # 9: no case
    reader = FigureReader(store, tmp_path / "labels")
    now = T0 + dt.timedelta(days=30)

    def parts() -> list:
        return sorted((tmp_path / "labels").glob("date=*/part-*.parquet"))

    first = parts()
    assert reader.read(now).agreement.compared == 1 and read == first
    store.open_cases([NewCase(2, T0, 0.8, 0.5, "1", (), {}, {})], now=T0)
    write(_label(2, 1, 3, "analyst"), _label(2, 0, 401))
    figures = reader.read(now)
    store.close()
    assert (figures.agreement.compared, figures.agreement.agreed) == (2, 1)
    assert sorted(read) == parts() and len(read) == len(parts())  # none read twice
    assert figures.agreement == review_figures_of(tmp_path, now)


def review_figures_of(tmp_path, now: dt.datetime):
    """The agreement read from scratch (the reader's must equal it)."""
    from fraudops.cases.figures import review_figures
    from fraudops.cases.store import CaseStore

    store = CaseStore.open(f"sqlite:///{tmp_path / 'cases.db'}")
    try:
        return review_figures(store, tmp_path / "labels", now=now).agreement
    finally:
        store.close()
