"""No clear customer or terminal id, and no secret, in anything the platform writes.

A champion is trained on a history whose card and terminal ids are distinctive 10-digit numbers
(9876543000 + i, 8765432000 + j), June is scored in-process through the service's ``Scorer``
and labelled through its feedback path, and the monitoring flow runs (HTML report, decision
JSON, workspace snapshot). Then every file under the prediction log, the label log, the reports
folder and the MLflow artifact root, every cell of the MLflow database, and every experiment,
run (params, tags, metrics, inputs), registered model and model version seen through
``MlflowClient`` are scanned for a clear id, and for the configured API token and hash key.

Each scanner is shown able to fail on a planted leak (``test_*_catches_*``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import pickle
import re
import sqlite3
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraudops import registry
from fraudops.data import contract as c
from fraudops.logs.predlog import IdHasher, read_log
from fraudops.logs.records import LabelRecord
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction

pytestmark = pytest.mark.integration
HISTORY_END = dt.date(2018, 5, 31)
CUSTOMER_BASE = 9_876_543_000
TERMINAL_BASE = 8_765_432_000
# assembled at run time: the literals below are not themselves the secrets looked for
API_TOKEN = "tok-" + "Zq7SecurityScanApiToken-3b9f1c"
#: The model signing key: versions carry an HMAC made with it, never the key.
SIGNING_KEY = "key-" + "Zq7SecurityScanSigningKey-8d2e4a9c"
HASH_SECRET = "key-" + "Wm4SecurityScanHashSecret-8d2e6a"
SCORED_ROWS = 6000

#: A decimal number, not part of a longer word or number (a hex hash holding digits is skipped).
NUMBER = re.compile(rb"(?<![0-9A-Za-z.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![0-9A-Za-z])")


# --- scanners -----------------------------------------------------------------------------


@dataclass
class Scan:
    """What one scan looked at and what it found."""

    ids: frozenset[int]
    secrets: tuple[str, ...] = ()
    files: Counter[str] = field(default_factory=Counter)
    bytes_scanned: int = 0
    values_checked: int = 0
    findings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        array = np.fromiter(sorted(self.ids), dtype=np.int64)
        self._int64 = array
        self._float64 = array.astype(np.float64)
        self._long1 = [b"\x8a\x05" + int(i).to_bytes(5, "little", signed=True) for i in self.ids]
        self._secret_bytes = [
            form for s in self.secrets for form in (s.encode(), s.encode().hex().encode())
        ]

    # text and raw bytes ---------------------------------------------------------------------
    def text(self, where: str, data: bytes) -> None:
        """Decimal ids (``9876543001``, ``9876543001.0``, ``9.876543001e+09``) and secrets."""
        for match in NUMBER.finditer(data):
            self.values_checked += 1
            value = float(match.group())
            if value.is_integer() and int(value) in self.ids:
                self.findings.append(f"{where}: clear id {int(value)} as {match.group().decode()}")
        for secret in self._secret_bytes:
            if secret in data:
                self.findings.append(f"{where}: secret {secret[:6].decode()}...")

    def binary(self, where: str, data: bytes) -> None:
        """Ids as little-endian int64/float64 (numpy buffers) or pickled ints (LONG1)."""
        for offset in range(8):
            usable = (len(data) - offset) // 8 * 8
            if usable <= 0:
                continue
            chunk = data[offset : offset + usable]
            for dtype, wanted in (("<i8", self._int64), ("<f8", self._float64)):
                values = np.frombuffer(chunk, dtype=dtype)
                hits = values[np.isin(values, wanted)]
                if len(hits):
                    self.findings.append(f"{where}: binary {dtype} id {hits[0]}")
        for pattern in self._long1:
            if pattern in data:
                self.findings.append(f"{where}: pickled id {int.from_bytes(pattern[2:], 'little')}")

    # structured values ----------------------------------------------------------------------
    def value(self, where: str, value: Any) -> None:
        """One cell, param, tag or metric: an int/float equal to an id, or text holding one."""
        self.values_checked += 1
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, int | np.integer):
            if int(value) in self.ids:
                self.findings.append(f"{where}: clear id {value}")
        elif isinstance(value, float | np.floating):
            if np.isfinite(value) and float(value).is_integer() and int(value) in self.ids:
                self.findings.append(f"{where}: clear id {value}")
        elif isinstance(value, bytes):
            self.text(where, value)
            self.binary(where, value)
        else:
            self.text(where, str(value).encode())

    def parquet(self, where: str, path: Path) -> None:
        """Every column's values (ints, floats, strings), and the file's key-value metadata."""
        table = pq.read_table(path)
        metadata = table.schema.metadata or {}
        self.text(f"{where} (metadata)", b" ".join(k + b"=" + v for k, v in metadata.items()))
        for name in table.column_names:
            column = table.column(name).to_pandas()
            self.values_checked += len(column)
            if pd.api.types.is_bool_dtype(column):
                continue
            if pd.api.types.is_numeric_dtype(column):
                numbers = pd.to_numeric(column, errors="coerce").dropna()
                hits = numbers[numbers.isin(self._float64) | numbers.isin(self._int64)]
                if len(hits):
                    self.findings.append(f"{where}: column {name} holds clear id {hits.iloc[0]}")
            elif pd.api.types.is_datetime64_any_dtype(column):
                continue
            else:
                self.text(f"{where}: column {name}", "\n".join(map(str, column)).encode())

    def sqlite(self, where: str, path: Path) -> None:
        """Every cell of every table."""
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            tables = [r[0] for r in db.execute("select name from sqlite_master where type='table'")]
            for table in tables:
                for row in db.execute(f'select * from "{table}"'):
                    for cell in row:
                        self.value(f"{where}: table {table}", cell)

    def file(self, category: str, path: Path) -> None:
        """One file: raw bytes always; Parquet, sqlite and pickles also by their content."""
        data = path.read_bytes()
        self.files[category] += 1
        self.bytes_scanned += len(data)
        where = str(path)
        self.text(where, data)
        if path.suffix == ".parquet":
            self.parquet(where, path)
        elif data.startswith(b"SQLite format 3\0"):
            self.sqlite(where, path)
        if b"\0" in data[:4096] or path.suffix in {".pkl", ".parquet", ".db", ".npy"}:
            self.binary(where, data)

    def tree(self, category: str, root: Path) -> None:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.file(category, path)


def scan_mlflow(scan: Scan, settings: Settings) -> dict[str, int]:
    """Experiments; runs (params, tags, metric histories, inputs, artifact names); logged models
    (params, tags, metrics); registered models and their versions (tags, descriptions)."""
    from mlflow.entities import ViewType

    client = registry.client_for(settings)
    counts: Counter[str] = Counter()
    for experiment in client.search_experiments(view_type=ViewType.ALL):
        counts["experiments"] += 1
        scan.value(f"experiment {experiment.name}", f"{experiment.name} {experiment.tags}")
        for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL):
            counts["runs"] += 1
            where = f"run {run.info.run_id}"
            scan.value(f"{where} info", f"{run.info.run_name} {run.info.artifact_uri}")
            for key, value in run.data.params.items():
                counts["params"] += 1
                scan.value(f"{where} param {key}", f"{key}={value}")
            for key, value in run.data.tags.items():
                counts["run tags"] += 1
                scan.value(f"{where} tag {key}", f"{key}={value}")
            for key in run.data.metrics:
                for metric in client.get_metric_history(run.info.run_id, key):
                    counts["metric values"] += 1
                    scan.value(f"{where} metric {key}", metric.value)
                    scan.value(f"{where} metric {key} (name)", key)
            if run.inputs is not None:
                scan.value(f"{where} inputs", repr(run.inputs))
            for artifact in _artifacts(client, run.info.run_id):
                counts["artifacts listed"] += 1
                scan.value(f"{where} artifact name", artifact)
        for logged in client.search_logged_models([experiment.experiment_id]):
            counts["logged models"] += 1
            where = f"logged model {logged.model_id}"
            for key, value in {**(logged.params or {}), **(logged.tags or {})}.items():
                counts["logged model params and tags"] += 1
                scan.value(f"{where} {key}", f"{key}={value}")
            for metric in logged.metrics or []:
                scan.value(f"{where} metric {metric.key}", metric.value)
            scan.value(f"{where} info", f"{logged.name} {logged.artifact_location}")
    for model in client.search_registered_models():
        counts["registered models"] += 1
        scan.value(f"model {model.name}", f"{model.description} {model.tags} {model.aliases}")
        for version in client.search_model_versions(f"name='{model.name}'"):
            counts["model versions"] += 1
            where = f"model {model.name} v{version.version}"
            scan.value(f"{where} description", f"{version.description} {version.source}")
            for key, value in version.tags.items():
                counts["version tags"] += 1
                scan.value(f"{where} tag {key}", f"{key}={value}")
    return dict(counts)


def _artifacts(client: Any, run_id: str, path: str | None = None) -> Iterator[str]:
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifacts(client, run_id, info.path)
        else:
            yield info.path


# --- the platform, run on distinctive ids ------------------------------------------------


def distinctive(frame: pd.DataFrame) -> pd.DataFrame:
    """The same transactions with card and terminal ids moved to distinctive 10-digit ranges."""
    return frame.assign(
        **{
            c.CUSTOMER_ID: frame[c.CUSTOMER_ID].astype("int64") + CUSTOMER_BASE,
            c.TERMINAL_ID: frame[c.TERMINAL_ID].astype("int64") + TERMINAL_BASE,
        }
    )


@dataclass
class Platform:
    settings: Settings
    ids: frozenset[int]
    scored: pd.DataFrame
    labels_sent: int
    decision: Any


def score_and_label(settings: Settings, rows: pd.DataFrame) -> int:
    """Score ``rows`` through the service's scorer in small requests; send every label back."""
    scorer = Scorer.start(settings, poll=False)
    sent = 0
    try:
        for start in range(0, len(rows), 50):
            batch = rows.iloc[start : start + 50]
            scorer.score(
                [
                    Transaction(
                        r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT
                    ).as_event()
                    for r in batch.itertuples(index=False)
                ],
                explain=start % 100 == 0,  # reason codes logged for passes too: scanned below
            )
            sent += scorer.feedback(
                [
                    LabelRecord(
                        int(r.TRANSACTION_ID),
                        int(r.TX_FRAUD),
                        r.TX_DATETIME + pd.Timedelta(days=settings.label_delay_days),
                    )
                    for r in batch.itertuples(index=False)
                ]
            ).held
    finally:
        scorer.close()
    return sent


@pytest.fixture(scope="module")
def platform(small_history, tmp_path_factory) -> Iterator[Platform]:
    from monitoring.flow import run_monitoring
    from pipelines.training import run_training

    tmp = tmp_path_factory.mktemp("security")
    history = distinctive(small_history)
    cut = pd.Timestamp(HISTORY_END) + pd.Timedelta(days=1)
    data = tmp / "history.parquet"  # the raw input, outside the home: it does hold clear ids
    history[history[c.TX_DATETIME] < cut].to_parquet(data)
    june = history[history[c.TX_DATETIME] >= cut].head(SCORED_ROWS)
    with pytest.MonkeyPatch.context() as env:
        for key, value in {
            "FRAUDOPS_HOME": str(tmp / "home"),
            "FRAUDOPS_DATA_PATH": str(data),
            "FRAUDOPS_TRAIN_DAYS": "14",
            "FRAUDOPS_GATE_MIN_AVERAGE_PRECISION": "0",  # tiny history: the gate is not under test
            "FRAUDOPS_API_TOKEN": API_TOKEN,
            "FRAUDOPS_HASH_SECRET": HASH_SECRET,
            "FRAUDOPS_MODEL_SIGNING_KEY": SIGNING_KEY,
        }.items():
            env.setenv(key, value)
        settings = Settings(monitor_min_rows=500, min_labelled_rows=200)
        assert run_training(settings).promoted
        labels_sent = score_and_label(settings, june)
        decision = run_monitoring(settings, retrain=lambda *_: {"retrain": "not under test"})
        ids = frozenset(
            int(i) for i in pd.concat([history[c.CUSTOMER_ID], history[c.TERMINAL_ID]]).unique()
        )
        yield Platform(settings, ids, june, labels_sent, decision)


def _secret_scan(platform: Platform) -> Scan:
    return Scan(platform.ids, secrets=(API_TOKEN, HASH_SECRET, SIGNING_KEY))


def _figures(scan: Scan) -> str:
    return (
        f"{sum(scan.files.values())} files ({dict(scan.files)}), {scan.bytes_scanned:,} bytes, "
        f"{scan.values_checked:,} values checked against {len(scan.ids)} ids"
    )


# --- the scans ---------------------------------------------------------------------------


@pytest.mark.slow
def test_prediction_and_label_logs_hold_ids_only_as_keyed_hashes(platform):
    settings = platform.settings
    scan = _secret_scan(platform)
    scan.tree("prediction log", settings.prediction_log_dir)
    scan.tree("label log", settings.label_log_dir)
    assert scan.files["prediction log"] >= 5 and scan.files["label log"] >= 5, _figures(scan)
    assert len(platform.ids) >= 1100 and scan.values_checked > 100_000, _figures(scan)
    print("logs:", _figures(scan))
    assert not scan.findings, "\n".join(scan.findings[:20])
    # the same scan on the raw input (outside the home) does see the clear ids
    raw = Scan(platform.ids)
    raw.file("input", settings.data_path)
    assert len(raw.findings) >= 2, "the scanner does not see ids in the raw history"

    logged = read_log(settings.prediction_log_dir)
    assert len(logged) == len(platform.scored) == SCORED_ROWS
    assert len(read_log(settings.label_log_dir)) == platform.labels_sent == SCORED_ROWS
    assert not {"customer_id", "terminal_id", c.CUSTOMER_ID, c.TERMINAL_ID} & set(logged.columns)
    assert (logged["reason_codes"] != "").sum() >= SCORED_ROWS // 3  # the scan read them too
    # keyed with the configured secret (so a dictionary of ids hashed without it matches nothing)
    keyed = IdHasher(HASH_SECRET.encode())
    expected = platform.scored.set_index(c.TRANSACTION_ID)
    by_tx = logged.set_index("transaction_id").loc[expected.index]
    assert (by_tx["customer_hash"] == expected[c.CUSTOMER_ID].map(keyed)).all()
    assert (by_tx["terminal_hash"] == expected[c.TERMINAL_ID].map(keyed)).all()
    unkeyed = {hashlib.sha256(str(i).encode()).hexdigest()[:32] for i in platform.ids}
    assert not unkeyed & (set(logged["customer_hash"]) | set(logged["terminal_hash"]))
    # the configured key is used: no key file was generated in the home
    assert not (settings.home / "secrets").exists()


@pytest.mark.slow
def test_reports_decisions_and_workspace_hold_no_clear_id_or_secret(platform):
    reports = platform.settings.reports_dir
    assert platform.decision.report_html, "the monitoring run wrote no report"
    scan = _secret_scan(platform)
    for path in sorted(p for p in reports.rglob("*") if p.is_file()):
        kind = "workspace" if "workspace" in path.relative_to(reports).parts else path.suffix
        scan.file(kind, path)
    assert scan.files[".html"] >= 1 and scan.files[".json"] >= 1, _figures(scan)
    assert scan.files[".jsonl"] == 1 and scan.files["workspace"] >= 1, _figures(scan)
    print("reports:", _figures(scan))
    assert not scan.findings, "\n".join(scan.findings[:20])


@pytest.mark.slow
def test_mlflow_holds_no_clear_id_or_secret(platform):
    settings = platform.settings
    client = registry.client_for(settings)
    champion = client.get_model_version_by_alias(settings.model_name, registry.CHAMPION)
    run = client.get_run(champion.run_id)
    artifact_root = settings.home / "mlartifacts"
    assert run.info.artifact_uri.startswith(artifact_root.as_uri()), run.info.artifact_uri

    assert list(artifact_root.rglob("model_report.html")), "no model report to scan"
    scan = _secret_scan(platform)
    scan.tree("artifacts", artifact_root)
    scan.file("tracking database", settings.home / "mlflow.db")
    counts = scan_mlflow(scan, settings)
    assert scan.files["artifacts"] >= 5 and scan.files["tracking database"] == 1, _figures(scan)
    assert counts["runs"] >= 1 and counts["params"] >= 3 and counts["version tags"] >= 10, counts
    assert counts["logged models"] >= 1, counts
    print("mlflow:", _figures(scan), counts)
    assert not scan.findings, "\n".join(scan.findings[:20])

    # the drift reference (training features) is stored without the ids
    reference = registry.load_frame_artifact(client, run.info.run_id, registry.REFERENCE_ARTIFACT)
    assert len(reference) > 1000
    assert not {c.CUSTOMER_ID, c.TERMINAL_ID, "customer_hash", "terminal_hash"} & set(
        reference.columns
    )
    # settings that are secrets never become params or tags
    logged = {**run.data.params, **run.data.tags, **champion.tags}
    assert not [k for k in logged if re.search(r"(?i)token|secret|password|hash_key", k)]


@pytest.mark.slow
def test_no_file_in_the_home_holds_a_secret(platform):
    home = platform.settings.home
    scan = _secret_scan(platform)
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        scan.files[path.relative_to(home).parts[0]] += 1
        scan.bytes_scanned += len(data)
        for secret in scan._secret_bytes:
            if secret in data:
                scan.findings.append(f"{path}: holds a secret")
    assert sum(scan.files.values()) >= 20, _figures(scan)
    print("home:", _figures(scan))
    assert not scan.findings, "\n".join(scan.findings)


# --- each scanner can fail -------------------------------------------------------------------

LEAKED = CUSTOMER_BASE + 17
IDS = frozenset({LEAKED, TERMINAL_BASE + 3})


def _found(scan: Scan) -> list[str]:
    return [f for f in scan.findings if str(LEAKED) in f or "secret" in f]


@pytest.mark.parametrize(
    "text",
    [
        f"<td>{LEAKED}</td>",
        f'{{"customer": {LEAKED}.0}}',
        f"customer_{LEAKED},x",
        f"value={LEAKED / 1e9:.9f}e+09",
    ],
)
def test_the_text_scan_catches_a_clear_id(tmp_path, text):
    planted = tmp_path / "report.html"
    planted.write_text(f"<html>{text}</html>")
    scan = Scan(IDS)
    scan.file("html", planted)
    assert _found(scan), text


@pytest.mark.parametrize(
    "text",
    [
        f"a{LEAKED}f0",  # inside a hex hash
        f"{LEAKED}1",  # a longer number
        f"0.{LEAKED}",  # the digits of a fraction
        f"{LEAKED - 1}",
    ],
)
def test_the_text_scan_ignores_look_alikes(tmp_path, text):
    scan = Scan(IDS)
    scan.text("x", text.encode())
    assert scan.findings == []


def test_the_parquet_scan_catches_an_id_column_whatever_its_type(tmp_path):
    for dtype in ("int64", "float64", "str"):
        planted = tmp_path / f"part-{dtype}.parquet"
        pd.DataFrame(
            {"who": pd.Series([1, LEAKED, 3]).astype(dtype), "x": [0.1, 0.2, 0.3]}
        ).to_parquet(planted)
        scan = Scan(IDS)
        scan.parquet(str(planted), planted)
        assert _found(scan), dtype
    clean = tmp_path / "clean.parquet"
    pd.DataFrame({"customer_hash": [IdHasher(b"k" * 16)(LEAKED)], "n": [LEAKED - 1]}).to_parquet(
        clean
    )
    scan = Scan(IDS)
    scan.file("log", clean)
    assert scan.findings == []


def test_the_binary_scan_catches_arrays_and_pickles(tmp_path):
    for name, data in {
        "array.npy": np.array([5, LEAKED, 7], dtype=np.int64).tobytes(),
        "floats.bin": b"\x01\x02\x03" + np.array([float(LEAKED)]).tobytes(),
        "model.pkl": pickle.dumps({"ids": [LEAKED]}, protocol=4),
    }.items():
        (tmp_path / name).write_bytes(data)
        scan = Scan(IDS)
        scan.binary(name, data)
        assert _found(scan), name


def test_the_sqlite_scan_catches_an_id_cell(tmp_path):
    db = tmp_path / "x.db"
    with sqlite3.connect(db) as conn:
        conn.execute("create table params (key text, value text, n integer)")
        conn.execute("insert into params values ('customer', 'x', ?)", (LEAKED,))
    scan = Scan(IDS)
    scan.file("db", db)
    assert any("table params" in f for f in _found(scan))


def test_the_secret_scan_catches_a_token_as_text_or_hex(tmp_path):
    for data in (f"token={API_TOKEN}".encode(), HASH_SECRET.encode().hex().encode()):
        scan = Scan(IDS, secrets=(API_TOKEN, HASH_SECRET))
        scan.text("x", data)
        assert _found(scan)


@pytest.mark.slow
def test_the_mlflow_scan_catches_an_id_or_a_secret_wherever_mlflow_keeps_it(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("FRAUDOPS_HOME", str(tmp_path / "home"))
    settings = Settings()
    experiment = registry.configure_mlflow(settings)
    client = registry.client_for(settings)

    def leaky_run(log: Any) -> str:
        with mlflow.start_run(experiment_id=experiment) as run:
            log()
        return f"run {run.info.run_id}"

    def leaky_logged_model() -> str:
        logged = client.create_logged_model(experiment, params={"customer": str(LEAKED)})
        return f"logged model {logged.model_id}"

    def leaky_version() -> str:
        logged = client.create_logged_model(experiment)
        client.create_registered_model("leaky")
        version = client.create_model_version("leaky", logged.model_uri)
        client.set_model_version_tag("leaky", version.version, "top_card", str(LEAKED))
        return f"model leaky v{version.version}"

    plants: dict[str, Callable[[], str]] = {
        "run param": lambda: leaky_run(lambda: mlflow.log_param("customer", LEAKED)),
        "run tag": lambda: leaky_run(lambda: mlflow.set_tag("api", API_TOKEN)),
        "run metric": lambda: leaky_run(lambda: mlflow.log_metric("card", float(LEAKED))),
        "logged model param": leaky_logged_model,
        "model version tag": leaky_version,
    }
    for kind, plant in plants.items():
        where = plant()
        scan = Scan(IDS, secrets=(API_TOKEN,))
        scan_mlflow(scan, settings)
        assert any(f.startswith(where) for f in _found(scan)), (kind, scan.findings)
    scan = Scan(IDS, secrets=(API_TOKEN,))
    scan.file("db", settings.home / "mlflow.db")
    assert len(_found(scan)) >= len(plants), scan.findings
