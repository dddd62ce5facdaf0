"""Bad data into the pipelines: a clear error, and the registry, champion and logs untouched.

One home holds a trained ``@champion`` (v1 on ``small_history``) plus a prediction log, a label
log and a report. Each bad file goes through ``run_training``, ``fraudops train --data`` (the
Prefect flow, on a test API) and ``fraudops score-batch``; after each, the registry (versions,
aliases, runs of the experiment), the artifact store and the log and report folders must be
exactly as before.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from mlflow.entities import ViewType
from typer.testing import CliRunner

from fraudops import registry, training
from fraudops.data import contract as c
from fraudops.data import history
from fraudops.data.contract import DataValidationError
from fraudops.data.sources import DataSourceError
from fraudops.data.splits import SplitError
from fraudops.settings import Settings
from fraudops_cli.main import app
from pipelines.training import run_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]
runner = CliRunner()

#: Variables the CLI sets with ``os.environ.setdefault``: restored after the module.
_TOOL_ENV = (
    "MLFLOW_TRACKING_URI",
    "PREFECT_HOME",
    "BENTOML_HOME",
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
    "DO_NOT_TRACK",
    "BENTOML_DO_NOT_TRACK",
    "MLFLOW_DISABLE_TELEMETRY",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR",
    "PREFECT_LOGGING_LEVEL",
)


@pytest.fixture(scope="module")
def home(tmp_path_factory, small_history) -> Iterator[Settings]:
    """A home with v1 as ``@champion`` and one file in each log and report folder."""
    root = tmp_path_factory.mktemp("bad-data")
    data = root / "history.parquet"
    small_history.to_parquet(data, index=False)
    with pytest.MonkeyPatch.context() as mp:
        for key in [*_TOOL_ENV, *(k for k in os.environ if k.startswith("FRAUDOPS_"))]:
            mp.setenv(key, "")  # recorded, so restored after the module
            mp.delenv(key)
        mp.setenv("FRAUDOPS_HOME", str(root / "home"))
        settings = Settings(data_path=data)
        result = run_training(settings)
        assert result.promoted and result.version == "1"
        for folder in (settings.prediction_log_dir, settings.label_log_dir):
            day = folder / "day=2018-06-01"
            day.mkdir(parents=True)
            small_history.head(20).to_parquet(day / "part-0.parquet")
        settings.reports_dir.mkdir(parents=True)
        (settings.reports_dir / "drift-2018-06-01.html").write_text("<html>report</html>")
        yield settings


@pytest.fixture(scope="module")
def prefect_api(home):
    """A Prefect test API for ``fraudops train`` (the real flow, tasks and all)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


def _tree(folder: Path) -> dict[str, str]:
    if not folder.exists():
        return {}
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _state(settings: Settings) -> dict[str, Any]:
    """Everything a bad input must leave alone: registry, runs, artifacts, logs, reports."""
    client = registry.client_for(settings)
    name = settings.model_name
    experiment = client.get_experiment_by_name(settings.experiment_name)
    assert experiment is not None
    versions = client.search_model_versions(f"name='{name}'")
    return {
        "versions": sorted((str(v.version), v.run_id, dict(v.tags)) for v in versions),
        "aliases": dict(client.get_registered_model(name).aliases),
        "runs": sorted(
            (r.info.run_id, r.info.status)
            for r in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL)
        ),
        "artifacts": _tree(settings.home / "mlartifacts"),
        "predictions": _tree(settings.prediction_log_dir),
        "labels": _tree(settings.label_log_dir),
        "reports": _tree(settings.reports_dir),
    }


@dataclass(frozen=True)
class Case:
    """A bad file: how to make it, the error of the training function and its message."""

    make: Callable[[pd.DataFrame], pd.DataFrame | None]  # None: a 0-byte file
    error: type[Exception]
    message: str
    scoring_fails: bool = True  # score-batch rejects it too (labels are optional there)


def _text_amounts(frame: pd.DataFrame) -> pd.DataFrame:
    text = frame[c.TX_AMOUNT].map(lambda v: f"{v:.2f}".replace(".", ","))
    return frame.assign(**{c.TX_AMOUNT: text})  # a European export: "12,50"


def _at(frame: pd.DataFrame, row: int, column: str, value: Any) -> pd.DataFrame:
    bad = frame.copy()
    if isinstance(value, str) or value is None:
        bad[column] = bad[column].astype(object)
    elif isinstance(value, float):
        bad[column] = bad[column].astype(np.float64)
    bad.loc[row, column] = value
    return bad


def _days_before_end(frame: pd.DataFrame, days: int) -> pd.Series:
    day = frame[c.TX_DATETIME].dt.normalize()
    return day > day.max() - pd.Timedelta(days=days)


CASES: dict[str, Case] = {
    "missing_column": Case(
        lambda f: f.drop(columns=[c.TERMINAL_ID]),
        DataValidationError,
        "missing column(s) 'TERMINAL_ID' (entities.1.column)",
    ),
    "amount_as_text": Case(
        _text_amounts,
        DataValidationError,
        "column 'TX_AMOUNT' (numeric.0.column) has values that are not numbers",
    ),
    "nan_amount": Case(
        lambda f: _at(f, 5, c.TX_AMOUNT, np.nan),
        DataValidationError,
        "column 'TX_AMOUNT' (numeric.0.column) has missing values (NaN, NaT or empty): 1 of",
    ),
    "infinite_amount": Case(
        lambda f: _at(f, 5, c.TX_AMOUNT, np.inf),
        DataValidationError,
        "column 'TX_AMOUNT' (numeric.0.column) must be finite: 1 of",
    ),
    "negative_amount": Case(
        lambda f: _at(f, 5, c.TX_AMOUNT, -3.0),
        DataValidationError,
        "column 'TX_AMOUNT' (numeric.0.column) must be >= 0 (numeric.0.min): 1 of",
    ),
    "duplicated_transaction_id": Case(
        lambda f: _at(f, 5, c.TRANSACTION_ID, int(f[c.TRANSACTION_ID].iloc[4])),
        DataValidationError,
        "column 'TRANSACTION_ID' (event_id.column) has duplicated values: 2 of",
    ),
    "unparseable_timestamp": Case(
        lambda f: _at(
            f.assign(**{c.TX_DATETIME: f[c.TX_DATETIME].astype(str)}),
            5,
            c.TX_DATETIME,
            "31/02/2018 25:61",
        ),
        DataValidationError,
        "column 'TX_DATETIME' (event_time.column) has values that are not timestamps "
        "(write ISO 8601",
    ),
    "missing_timestamp": Case(
        lambda f: _at(f, 5, c.TX_DATETIME, pd.NaT),
        DataValidationError,
        "column 'TX_DATETIME' (event_time.column) has missing values",
    ),
    "empty_file_with_header": Case(
        lambda f: f.iloc[0:0], DataValidationError, "the data has no rows"
    ),
    "zero_byte_file": Case(lambda f: None, DataSourceError, "is empty (0 bytes)"),
    "labels_all_nan": Case(
        lambda f: f.assign(**{c.LABEL: np.nan}),
        DataValidationError,
        "column 'TX_FRAUD' (label.column) has missing values (NaN, NaT or empty)",
    ),
    "fractional_label": Case(
        lambda f: _at(f, 5, c.LABEL, 0.5),
        DataValidationError,
        "column 'TX_FRAUD' (label.column) is not binary: 3 distinct values",
    ),
    "only_one_class": Case(
        lambda f: f.assign(**{c.LABEL: 0}),
        DataValidationError,
        "column 'TX_FRAUD' holds only class 0",
        scoring_fails=False,  # all-genuine labels are a valid file to score
    ),
    "no_fraud_in_training_window": Case(
        lambda f: f.assign(**{c.LABEL: f[c.LABEL].where(_days_before_end(f, 14), 0)}),
        SplitError,
        "the training window",
        scoring_fails=False,
    ),
    "no_fraud_in_test_window": Case(
        lambda f: f.assign(**{c.LABEL: f[c.LABEL].mask(_days_before_end(f, 7), 0)}),
        SplitError,
        "the test window",
        scoring_fails=False,
    ),
}
#: (case, suffix): every case as Parquet; the ones a CSV export plausibly carries as CSV too.
FILES = [(name, ".parquet") for name in CASES] + [
    (name, ".csv")
    for name in (
        "missing_column",
        "amount_as_text",
        "nan_amount",
        "infinite_amount",
        "duplicated_transaction_id",
        "unparseable_timestamp",
        "empty_file_with_header",
        "zero_byte_file",
        "only_one_class",
    )
]


@pytest.fixture
def bad_file(request, small_history, tmp_path) -> tuple[Path, Case]:
    name, suffix = request.param
    case = CASES[name]
    path = tmp_path / f"{name}{suffix}"
    frame = case.make(small_history.copy())
    if frame is None:
        path.touch()
    elif suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path, case


def _ids(param: tuple[str, str]) -> str:
    return f"{param[0]}{param[1]}"


@pytest.mark.parametrize("bad_file", FILES, ids=_ids, indirect=True)
def test_training_function_raises_naming_the_problem_and_writes_nothing(home, bad_file):
    path, case = bad_file
    before = _state(home)
    with pytest.raises(case.error) as raised:
        run_training(Settings(home=home.home, data_path=path))
    assert case.message in str(raised.value)
    assert _state(home) == before


@pytest.mark.parametrize("bad_file", FILES, ids=_ids, indirect=True)
def test_train_command_exits_2_naming_the_problem_and_writes_nothing(home, prefect_api, bad_file):
    path, case = bad_file
    before = _state(home)
    result = runner.invoke(app, ["train", "--data", str(path)])
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and case.message in result.output
    assert "Traceback" not in result.output
    assert _state(home) == before


#: Files that are bad to score too (one class or window labels are valid input to score).
SCORING_FILES = [f for f in FILES if CASES[f[0]].scoring_fails]


@pytest.mark.parametrize("bad_file", SCORING_FILES, ids=_ids, indirect=True)
def test_score_batch_exits_2_naming_the_problem_and_writes_no_output(home, bad_file, tmp_path):
    path, case = bad_file
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    before = _state(home)
    result = runner.invoke(
        app, ["score-batch", "--input", str(path), "--output", str(out_dir / "scores.parquet")]
    )
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and case.message in result.output
    assert list(out_dir.iterdir()) == []  # no output, no partial file
    assert _state(home) == before


def test_score_batch_accepts_a_file_with_one_class(home, small_history, tmp_path):
    """The scoring side of ``only_one_class``: all-genuine labels are scored, not refused."""
    source = tmp_path / "genuine.parquet"
    small_history.assign(**{c.LABEL: 0}).head(5_000).to_parquet(source, index=False)
    out = tmp_path / "scores.parquet"
    result = runner.invoke(app, ["score-batch", "--input", str(source), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) == 5_000


def test_out_of_order_file_trains_on_exactly_the_sorted_data(home, small_history, tmp_path):
    """Decision: row order carries no meaning offline; an unsorted file is sorted by
    (time, transaction id), so the dataset (features, labels, windows, fingerprint) is the
    sorted file's, bit for bit, and so is the model fitted on it."""
    sorted_file = tmp_path / "sorted.parquet"
    shuffled_file = tmp_path / "shuffled.csv"
    small_history.to_parquet(sorted_file, index=False)
    shuffled = small_history.sample(frac=1.0, random_state=3)
    assert not shuffled[c.TX_DATETIME].is_monotonic_increasing
    shuffled.to_csv(shuffled_file, index=False)

    datasets = []
    for path in (sorted_file, shuffled_file):
        settings = Settings(home=home.home, data_path=path)
        datasets.append(training.build_dataset(training.validate(history.load(settings)), home))
    ordered, unordered = datasets
    assert unordered.data_sha256 == ordered.data_sha256
    assert unordered.windows == ordered.windows
    pd.testing.assert_frame_equal(unordered.train_features, ordered.train_features)
    pd.testing.assert_frame_equal(unordered.test_features, ordered.test_features)
    pd.testing.assert_frame_equal(unordered.test_frame, ordered.test_frame)
    np.testing.assert_array_equal(unordered.train_labels, ordered.train_labels)
    champion = registry.client_for(home).get_model_version_by_alias(home.model_name, "champion")
    assert champion.tags["data_sha256"] == ordered.data_sha256  # v1 was trained on this file


def test_out_of_order_file_scores_like_the_sorted_file(home, small_history, tmp_path):
    outputs = []
    for name, frame in (
        ("sorted.parquet", small_history),
        ("shuffled.parquet", small_history.sample(frac=1.0, random_state=4)),
    ):
        source = tmp_path / name
        frame.to_parquet(source, index=False)
        out = tmp_path / f"scores-{name}"
        result = runner.invoke(app, ["score-batch", "--input", str(source), "--output", str(out)])
        assert result.exit_code == 0, result.output
        outputs.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(outputs[0], outputs[1])
