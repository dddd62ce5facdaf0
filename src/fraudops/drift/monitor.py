"""Monitoring steps: current window, champion reference, drift, debounced decision, records.

``monitoring/flow.py`` wires these as a Prefect flow; each is a plain function. The decision
(:func:`decide`) retrains when the share of drifted columns is above
``drift_share_threshold`` in at least N of the last M windows (``drift_windows_needed`` of
``drift_windows_considered``), or when labelled average precision trails the champion's holdout
AP by ``performance_drop``; never within ``retrain_cooldown_days`` of the last retrain, and never
on a window with fewer than ``monitor_min_rows`` rows. Every decision is recorded as JSON next
to the HTML report and appended to ``decisions.jsonl``. A window or a champion reference under
:data:`fraudops.drift.report.MIN_ROWS` rows (or with a monitored column of no finite value) records
nothing: it ends with a "not enough rows" input error before Evidently runs.

The compared columns are the champion's (:func:`champion_columns`): the features it records
(its ``features`` tag), typed numerical or categorical by the dataset spec stored with its run
(``spec/dataset.yaml``); versions from before specs existed are the handbook's. The prediction
log holds the handbook's features: a window that lacks the champion's columns ends with a
message naming them, before Evidently runs.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq

from fraudops import registry
from fraudops.cases.labels import resolve_labels
from fraudops.drift.dashboard import ensure_panels, tag_decision
from fraudops.drift.estimate import EstimatedPerformance, estimate
from fraudops.drift.header import ReportHeader, with_header
from fraudops.drift.report import (
    HANDBOOK_COLUMNS,
    LABEL_COLUMN,
    MIN_ROWS,
    SCORE,
    DriftColumns,
    DriftFigures,
    DriftInputError,
    check_columns,
    check_finite,
    sample_by_day,
)
from fraudops.drift.risk import (
    RiskFigures,
    assess,
    cached_calibration,
    calibrate,
    importance_weights,
)
from fraudops.logs.jsonl import append_jsonl, read_jsonl
from fraudops.logs.predlog import log_days, log_files, read_log
from fraudops.logs.records import LABEL_VALUE, LOG_ID, LOG_TIME
from fraudops.registry.card import ModelCard, ModelCardError
from fraudops.settings import Settings
from fraudops.spec import (
    SHIPPED_SPECS,
    DatasetSpec,
    SpecError,
    default_spec,
    load_spec,
    parse_spec,
    spec_sha256,
)

DECISIONS_FILE = "decisions.jsonl"


class MonitorInputError(DriftInputError):
    """The monitoring flow cannot run: no champion, no prediction log, or an empty window."""


@dataclass(frozen=True)
class Champion:
    """The champion the window is compared with, and the columns it is compared on."""

    version: str
    reference: pd.DataFrame
    threshold: float
    average_precision: float | None
    train_end: str | None
    columns: DriftColumns = HANDBOOK_COLUMNS
    importance: dict[str, float] = field(default_factory=dict)  # card's feature_importance
    score_reference: pd.DataFrame | None = None  # holdout scores (None: registered before them)


@dataclass
class Decision:
    """One monitoring run's outcome (``as_dict`` is what is recorded)."""

    window_start: str
    window_end: str
    champion_version: str
    drifted: bool
    retrain: bool
    reasons: list[str]
    figures: dict[str, Any]
    report_html: str | None = None
    retrain_result: dict[str, Any] | None = None
    champion_spec: str = "handbook"
    days_with_rows: int | None = None
    online_gate: dict[str, Any] | None = None  # the challenger judged first, if one is live
    risk: dict[str, Any] | None = None  # the risk rule's figures (drift_rule: risk)
    estimated: dict[str, Any] | None = None  # CBPE of the current window (before its labels)
    recorded_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_champion_reference(settings: Settings) -> Champion:
    """The ``@champion`` version, its columns, its stored drift reference and holdout figures.

    Raises:
        MonitorInputError: there is no champion yet, its spec cannot be read
            (:func:`champion_columns`), it has no stored reference, or its reference cannot be
            compared (:func:`check_reference`: "not enough rows", missing columns...).
    """
    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    version = registry.version_by_alias(client, settings.model_name, registry.CHAMPION)
    if version is None:
        raise MonitorInputError(
            f"no @champion for {settings.model_name!r} yet: train one with `fraudops train`"
        )
    columns = champion_columns(settings.resolved_tracking_uri, version)
    try:
        reference = _reference(settings.resolved_tracking_uri, str(version.run_id))
    except Exception as exc:
        raise MonitorInputError(
            f"champion v{version.version} has no drift reference ({registry.REFERENCE_ARTIFACT})"
        ) from exc
    check_reference(reference, str(version.version), columns=columns)
    try:
        card = ModelCard.from_tags(dict(version.tags))
    except ModelCardError as exc:
        raise MonitorInputError(f"champion v{version.version}: {exc}") from None
    return Champion(
        version=str(version.version),
        reference=reference,
        threshold=card.threshold,
        average_precision=card.metrics.get("average_precision"),
        train_end=card.windows.get("train_end"),
        columns=columns,
        importance=card.feature_importance,
        score_reference=_score_reference(settings.resolved_tracking_uri, str(version.run_id)),
    )


def champion_columns(tracking_uri: str, version: Any) -> DriftColumns:
    """The columns a champion version is monitored on, typed by the spec it was trained with.

    The features are its ``features`` tag, in order; which of them are categorical comes from
    the spec stored with its run (:data:`registry.SPEC_ARTIFACT`). A version without a
    ``spec_sha256`` tag, and without a ``spec_name`` other than ``handbook``, was registered
    before specs existed and trained on the handbook schema: the shipped handbook spec
    applies, with no download. When a run lacks the artifact, the shipped spec whose sha256
    the version records applies.

    Args:
        tracking_uri: the registry's URI (to download the artifact).
        version: the MLflow model version (``version``, ``run_id``, ``tags``).

    Raises:
        MonitorInputError: the version names a spec that is neither stored with its run nor
            shipped, or its stored spec does not parse.
    """
    tags = dict(version.tags or {})
    spec = _version_spec(tracking_uri, version, tags)
    listed = tags.get("features")
    features = [name for name in listed.split(",") if name] if listed else None
    try:
        return DriftColumns.from_spec(spec, features)
    except DriftInputError as exc:
        raise MonitorInputError(f"champion v{version.version}: {exc}") from None


def _version_spec(tracking_uri: str, version: Any, tags: dict[str, str]) -> DatasetSpec:
    if "spec_sha256" not in tags and tags.get("spec_name", "handbook") == "handbook":
        return default_spec()  # registered before specs existed: the handbook schema
    where = f"champion v{version.version}'s {registry.SPEC_ARTIFACT}"
    try:
        text = _spec_text(tracking_uri, str(version.run_id))
    except Exception:
        for name in SHIPPED_SPECS:
            shipped = load_spec(name)
            if tags.get("spec_sha256") == spec_sha256(shipped):
                return shipped
        raise MonitorInputError(
            f"champion v{version.version} was trained with the dataset spec "
            f"{tags.get('spec_name', '?')!r}, but its run has no {registry.SPEC_ARTIFACT} "
            "and it is not a shipped spec: its categorical columns are unknown; retrain it"
        ) from None
    try:
        return parse_spec(text, where)
    except SpecError as exc:
        raise MonitorInputError(f"{exc}; retrain it") from None


@functools.lru_cache(maxsize=8)
def _spec_text(tracking_uri: str, run_id: str) -> str:
    """A run's stored dataset spec (YAML); cached, since a run's artifacts never change."""
    client = registry.client_for_uri(tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(run_id, registry.SPEC_ARTIFACT, tmp)
        return Path(path).read_text(encoding="utf-8")


def check_reference(
    reference: pd.DataFrame,
    version: str,
    min_rows: int = MIN_ROWS,
    columns: DriftColumns = HANDBOOK_COLUMNS,
) -> None:
    """Raise :class:`MonitorInputError` unless champion ``version``'s reference can be compared.

    Args:
        reference: the stored reference, rows × at least ``columns.monitored``.
        version: the champion's version, named in the message.
        min_rows: fewest rows (:data:`fraudops.drift.report.MIN_ROWS`, what :func:`run_drift`
            needs).
        columns: the champion's compared columns and their types.

    Raises:
        MonitorInputError: it is empty or lacks monitored columns; it holds fewer than
            ``min_rows`` rows ("champion vN: not enough rows in the reference: R rows, at least
            K needed; ..."); a monitored column has no finite value (all null or infinite).
    """
    try:
        check_columns(reference, "reference", columns.monitored)
        if len(reference) < min_rows:
            raise DriftInputError(
                f"not enough rows in the reference: {len(reference)} rows, "
                f"at least {min_rows} needed"
            )
        check_finite(reference, "reference", columns)
    except DriftInputError as exc:
        raise MonitorInputError(f"champion v{version}: {exc}; retrain it") from None


@functools.lru_cache(maxsize=8)
def _reference(tracking_uri: str, run_id: str) -> pd.DataFrame:
    """A run's stored drift reference; cached, since a run's artifacts never change."""
    client = registry.client_for_uri(tracking_uri)
    return registry.load_frame_artifact(client, run_id, registry.REFERENCE_ARTIFACT)


@functools.lru_cache(maxsize=8)
def _score_reference(tracking_uri: str, run_id: str) -> pd.DataFrame | None:
    """A run's holdout scores (:data:`registry.SCORE_REFERENCE_ARTIFACT`); None for a run
    registered before they were stored."""
    client = registry.client_for_uri(tracking_uri)
    folder, _ = registry.SCORE_REFERENCE_ARTIFACT.split("/")
    stored = {a.path for a in client.list_artifacts(run_id, folder)}
    if registry.SCORE_REFERENCE_ARTIFACT not in stored:
        return None
    return registry.load_frame_artifact(client, run_id, registry.SCORE_REFERENCE_ARTIFACT)


#: Prediction-log columns the drift job reads besides the champion's compared columns.
WINDOW_KEYS = (LOG_ID, LOG_TIME)
#: Prediction-log columns the drift job reads for a handbook champion.
WINDOW_COLUMNS = (*WINDOW_KEYS, *HANDBOOK_COLUMNS.monitored)


def current_window(
    settings: Settings,
    window_end: dt.date | None = None,
    columns: DriftColumns = HANDBOOK_COLUMNS,
    champion: str | None = None,
) -> tuple[pd.DataFrame, dt.date, dt.date]:
    """The last ``monitor_window_days`` days of the prediction log, on ``columns``.

    Args:
        settings: where the log is, the window's length, the sample's size and seed.
        window_end: the window's last day; None: the log's last day.
        columns: the champion's compared columns (the handbook's by default).
        champion: the champion's version, named in the message of missing columns.

    Returns:
        (rows × ``transaction_id``, ``tx_datetime`` and ``columns.monitored``, sampled by day to
        exactly ``min(rows, monitor_max_rows)`` rows, at least one from every day with rows;
        first day; last day).

    Raises:
        MonitorInputError: the log is empty, the window holds no rows, or a log file of the
            window lacks some of the columns ("current window lacks column(s) [...] of champion
            vN (spec S)"), checked on the files' schemas before any row is read.
    """
    root = settings.prediction_log_dir
    days = log_days(root)
    if not days:
        raise MonitorInputError(f"the prediction log {root} is empty: nothing was scored yet")
    end = window_end or days[-1]
    start = end - dt.timedelta(days=settings.monitor_window_days - 1)
    wanted = (*WINDOW_KEYS, *columns.monitored)
    _check_log_columns(root, start, end, wanted, columns, champion)
    try:
        current = read_log(root, start, end, wanted)
    except (KeyError, ValueError) as exc:  # a file the schema check could not open
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MonitorInputError(
            f"current window lacks columns of {list(wanted)}: {first_line}"
        ) from None
    if current.empty:
        raise MonitorInputError(f"the window {start}..{end} of the prediction log has no rows")
    current = sample_by_day(current, LOG_TIME, settings.monitor_max_rows, settings.seed)
    return current.reset_index(drop=True), start, end


def days_with_rows(current: pd.DataFrame) -> int:
    """Days of a window (:func:`current_window`'s rows) that have scored traffic."""
    return int(pd.to_datetime(current[LOG_TIME]).dt.normalize().nunique())


def _check_log_columns(
    root: Path,
    start: dt.date,
    end: dt.date,
    wanted: tuple[str, ...],
    columns: DriftColumns,
    champion: str | None,
) -> None:
    """Raise :class:`MonitorInputError` naming ``wanted`` columns some log file lacks."""
    missing: dict[str, None] = {}
    for path in log_files(root, start, end):
        present = set(pq.read_schema(path).names)
        missing.update(dict.fromkeys(col for col in wanted if col not in present))
    if not missing:
        return
    names = [col for col in wanted if col in missing]
    whose = f" of champion v{champion}" if champion is not None else ""
    hint = (
        "; was the log written by a service of another spec or champion? "
        "`fraudops monitor` compares the champion's features only"
    )
    raise MonitorInputError(
        f"current window {start}..{end} lacks column(s) {names}{whose} "
        f"(spec {columns.spec_name!r}){hint}"
    )


def labelled_window(settings: Settings, window_end: dt.date) -> pd.DataFrame | None:
    """The window one label delay before ``window_end``, its arrived labels joined.

    Returns:
        Scored rows with ``is_fraud`` (only rows whose label arrived), or None if there are none.
    """
    end = window_end - dt.timedelta(days=settings.label_delay_days)
    start = end - dt.timedelta(days=settings.monitor_window_days - 1)
    # labels arrive after their transactions: only label days from the window's start matter
    labels = read_log(settings.label_log_dir, start, window_end)
    try:
        scored = read_log(settings.prediction_log_dir, start, end, (LOG_ID, SCORE))
    except (KeyError, ValueError):
        return None
    if labels.empty or scored.empty:
        return None
    last = resolve_labels(labels)  # a chargeback wins over an analyst's decision
    scored[LABEL_COLUMN] = scored[LOG_ID].map(last[LABEL_VALUE])
    scored = scored.dropna(subset=[LABEL_COLUMN])
    return scored if len(scored) else None


def read_decisions(settings: Settings) -> list[dict[str, Any]]:
    """Every recorded decision, oldest first."""
    return read_jsonl(settings.reports_dir / DECISIONS_FILE)


def assess_risk(
    figures: DriftFigures, champion: Champion, settings: Settings, days: int | None = None
) -> RiskFigures:
    """The risk rule's view of the window (:mod:`fraudops.drift.risk`): thresholds calibrated
    once per champion on its reference (cached in the reports folder), its features weighed by
    its importance; ``days``: the window's days with traffic (:func:`days_with_rows`; fewer
    than ``monitor_window_days`` is a partial window, never judged drifted; None: full)."""
    calibration = cached_calibration(
        settings.reports_dir,
        champion.version,
        lambda: calibrate(
            champion.reference,
            champion.columns,
            figures.column_methods,
            settings.monitor_window_days,
            margin=settings.drift_noise_margin,
            score_reference=champion.score_reference,
        ),
    )
    weights = importance_weights(champion.columns.features, champion.importance)
    return assess(
        figures.column_scores,
        figures.column_methods,
        figures.drifted_columns,
        calibration,
        weights,
        settings.drift_risk_threshold,
        full_window=days is None or days >= settings.monitor_window_days,
    )


def estimate_current(
    labelled: pd.DataFrame | None, current: pd.DataFrame, champion: Champion
) -> EstimatedPerformance | None:
    """The current window's expected performance before its labels arrive (CBPE,
    :mod:`fraudops.drift.estimate`), calibrated on the labelled window (one label delay
    earlier, same champion's scores); None without enough labelled rows."""
    if labelled is None or LABEL_COLUMN not in labelled:
        return None
    return estimate(
        labelled[SCORE].to_numpy(dtype=float),
        labelled[LABEL_COLUMN].to_numpy(dtype=float),
        current[SCORE].to_numpy(dtype=float),
        champion.threshold,
    )


def _drifted(
    figures: DriftFigures, risk: RiskFigures | None, settings: Settings
) -> tuple[bool, str]:
    """Whether the window drifted under ``settings.drift_rule``, and why in words."""
    if settings.drift_rule == "share" or risk is None:
        drifted = figures.drift_share > settings.drift_share_threshold
        return drifted, (
            f"drift share {figures.drift_share:.2f} {'>' if drifted else '<='} "
            f"{settings.drift_share_threshold:.2f} ({len(figures.drifted_columns)} columns"
            f"{': ' + ', '.join(figures.drifted_columns[:6]) if figures.drifted_columns else ''})"
        )
    named = ", ".join(risk.drifted_features[:6])
    if not risk.full_window:
        return False, (
            f"partial window (fewer than {settings.monitor_window_days} days of traffic): "
            f"the risk rule judges full windows only (risk {risk.risk:.2f})"
        )
    return risk.drifted, (
        f"drift risk {risk.risk:.2f} {'>=' if risk.risk >= settings.drift_risk_threshold else '<'}"
        f" {settings.drift_risk_threshold:.2f} of the champion's importance"
        f"{' (' + named + ')' if named else ''}; prediction drift "
        f"{'yes' if risk.prediction_drift else 'no'}"
    )


def decide(
    figures: DriftFigures,
    champion: Champion,
    history: list[dict[str, Any]],
    window_end: dt.date,
    settings: Settings,
    risk: RiskFigures | None = None,
    estimated: EstimatedPerformance | None = None,
) -> tuple[bool, bool, list[str]]:
    """Debounced retraining decision.

    Args:
        figures: this window's drift and quality figures.
        champion: the champion compared with (its holdout AP is the performance bar).
        history: earlier decisions (dicts as recorded), oldest first.
        window_end: last day of this window (transaction time).
        risk: the risk rule's figures (:func:`assess_risk`); None (or ``drift_rule: share``):
            the share-of-columns rule decides whether the window drifted.
        estimated: the current window's CBPE (:func:`estimate_current`): its AP below the bar
            is a performance trigger too, unless enough real labels already judge it.

    Returns:
        (retrain, this window drifted, reasons).
    """
    reasons: list[str] = []
    if figures.current_rows < settings.monitor_min_rows:
        return (
            False,
            False,
            [f"only {figures.current_rows} rows (< {settings.monitor_min_rows}): no decision"],
        )
    drifted, why = _drifted(figures, risk, settings)
    reasons.append(why)
    same_champion = [h for h in history if h.get("champion_version") == champion.version]
    recent = [
        bool(h.get("drifted")) for h in same_champion[-(settings.drift_windows_considered - 1) :]
    ]
    recent.append(drifted)
    drift_trigger = sum(recent) >= settings.drift_windows_needed
    reasons.append(
        f"{sum(recent)} of the last {len(recent)} windows drifted "
        f"(retrain at {settings.drift_windows_needed} of {settings.drift_windows_considered})"
    )
    performance_trigger = False
    if figures.average_precision is not None and champion.average_precision is not None:
        bar = champion.average_precision - settings.performance_drop
        performance_trigger = (
            figures.labelled_rows >= settings.min_labelled_rows and figures.average_precision < bar
        )
        reasons.append(
            f"labelled AP {figures.average_precision:.3f} on {figures.labelled_rows} rows vs "
            f"champion {champion.average_precision:.3f} - {settings.performance_drop:.2f}"
            f"{' (dropped)' if performance_trigger else ''}"
        )
    if (
        estimated is not None
        and champion.average_precision is not None
        and figures.labelled_rows < settings.min_labelled_rows
    ):
        bar = champion.average_precision - settings.performance_drop
        performance_trigger = performance_trigger or estimated.average_precision < bar
        reasons.append(
            f"estimated AP (CBPE, before labels) {estimated.average_precision:.3f} vs champion "
            f"{champion.average_precision:.3f} - {settings.performance_drop:.2f}"
            f"{' (dropped)' if estimated.average_precision < bar else ''}"
        )
    retrains = [h for h in history if h.get("retrain")]
    if (drift_trigger or performance_trigger) and retrains:
        last = dt.date.fromisoformat(retrains[-1]["window_end"])
        waited = (window_end - last).days
        if waited < settings.retrain_cooldown_days:
            reasons.append(
                f"cooldown: last retrain {waited} days ago (< {settings.retrain_cooldown_days})"
            )
            return False, drifted, reasons
    retrain = drift_trigger or performance_trigger
    reasons.append("retrain" if retrain else "no retrain")
    return retrain, drifted, reasons


def last_labelled_day(settings: Settings, window_end: dt.date) -> dt.date:
    """The retrain's last test day: labels of later transactions have not arrived yet."""
    return window_end - dt.timedelta(days=settings.label_delay_days)


def record(
    settings: Settings, decision: Decision, snapshot: Any | None, quality: Any | None = None
) -> Decision:
    """Write the HTML report, its decision JSON, the decisions log line and a workspace run
    (and the labelled-quality snapshot ``quality``, when there is one, for the dashboard)."""
    reports = settings.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    stem = f"drift-{decision.window_end}-v{decision.champion_version}"
    if snapshot is not None:
        html = reports / f"{stem}.html"
        earlier = sorted(p.name for p in reports.glob("drift-*.html") if p.name < html.name)
        snapshot.save_html(str(html))
        header = _header(settings, decision, earlier[-1] if earlier else None)
        html.write_text(with_header(html.read_text(encoding="utf-8"), header), encoding="utf-8")
        decision.report_html = str(html)
        _add_to_workspace(settings, snapshot, decision)
        if quality is not None:
            _add_to_workspace(settings, quality)
        for old in sorted(reports.glob("drift-*.html"), key=lambda p: p.stat().st_mtime)[
            : -settings.reports_keep
        ]:
            old.unlink()
    (reports / f"{stem}.json").write_text(json.dumps(decision.as_dict(), indent=2, default=str))
    append_jsonl(reports / DECISIONS_FILE, decision.as_dict())
    return decision


def verdict_of(decision: Decision) -> str:
    """The decision in a few words: ``retrain``, ``drift, no retrain yet`` or ``no drift``."""
    if decision.retrain:
        return "retrain"
    return "drift, no retrain yet" if decision.drifted else "no drift"


def _header(settings: Settings, decision: Decision, previous: str | None) -> ReportHeader:
    figures = decision.figures
    verdict = verdict_of(decision)
    return ReportHeader(
        window_start=decision.window_start,
        window_end=decision.window_end,
        window_days=settings.monitor_window_days,
        days_with_rows=decision.days_with_rows or settings.monitor_window_days,
        current_rows=int(figures.get("current_rows", 0)),
        reference_rows=int(figures.get("reference_rows", 0)),
        champion_version=decision.champion_version,
        spec_name=decision.champion_spec,
        verdict=verdict,
        reasons=decision.reasons,
        previous_report=previous,
        review=review_summary(settings),
    )


def review_summary(settings: Settings) -> str | None:
    """The review queue's figures in one line (:mod:`fraudops.cases.figures`); None when the
    home has no case store (none is created to say so), the error when it cannot be read."""
    from fraudops.cases.figures import review_figures
    from fraudops.cases.store import CaseStore

    if settings.case_store_url is None and not (settings.home / "cases.db").is_file():
        return None
    try:
        store = CaseStore.open(settings.resolved_case_store_url)
    except Exception as exc:  # the report is still worth writing
        return f"case store unreadable ({type(exc).__name__}: {exc})"
    try:
        return review_figures(store, settings.label_log_dir).summary()
    finally:
        store.close()


def workspace_path(settings: Settings) -> Path:
    return settings.reports_dir / "workspace"


@functools.lru_cache(maxsize=4)
def _workspace_project(path: str) -> tuple[Any, Any]:
    """The Evidently workspace at ``path`` and its drift project (opening one costs ~1 s)."""
    from evidently.ui.workspace import Workspace

    workspace = Workspace.create(path)
    found = workspace.search_project(PROJECT_NAME)
    return workspace, found[0] if found else workspace.create_project(PROJECT_NAME)


PROJECT_NAME = "fraudops drift"


def _add_to_workspace(settings: Settings, snapshot: Any, decision: Decision | None = None) -> None:
    """Add a run's snapshot to the project, tagged with its decision; the dashboard's panels
    are added first where missing (:mod:`fraudops.drift.dashboard`)."""
    workspace, project = _workspace_project(str(workspace_path(settings)))
    if decision is not None:
        tag_decision(
            snapshot,
            "retrain" if decision.retrain else ("drift" if decision.drifted else "no-drift"),
            promoted=bool((decision.retrain_result or {}).get("promoted")),
        )
        ensure_panels(
            workspace.get_project(project.id),
            decision.champion_version,
            settings.drift_share_threshold,
        )
    workspace.add_run(project.id, snapshot, include_data=False)
