"""The whole loop on real data: train → serve → replay day by day → monitor → retrain → promote.

History before the replay lands in a "warehouse" folder (Parquet, :mod:`fraudops_cli.warehouse`)
that the training flow reads; each replayed day is appended to it with its labels (drift
included, and when the spec names ``label.known_at`` the time each label reached the service),
as a payment company's warehouse would receive them. The service is a real ``fraudops serve``
process; transactions go through its REST API in time order, labels through ``/feedback`` once
``label_delay_days`` old. After each day the monitoring steps compare the last week of the
prediction log with the champion's reference and may run the training flow, whose gate decides
promotion; the service picks a new champion up by polling.

Settings travel as the object passed to :func:`run_demo`, down to the training and monitoring
flows; only the service, a child process, gets them through its environment
(:func:`fraudops_cli.env.settings_env`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fraudops.cases.outbox import deliver, http_poster
from fraudops.cases.simulated import AnalystTeam, review_day
from fraudops.cases.store import FRAUD, Case, CaseStore
from fraudops.data.history import load
from fraudops.drift.monitor import MonitorInputError, read_decisions
from fraudops.logs.predlog import read_log
from fraudops.model.evaluation import card_precision_at_k
from fraudops.processes import free_port, stop, wait_http_ok
from fraudops.serving.api_models import spec_api
from fraudops.serving.replay import DriftInjector, DriftKind, ReplayClient, drift_entity
from fraudops.settings import Settings
from fraudops.spec.data import prepare_events
from fraudops_cli.demo_stages import (
    StagePlan,
    live_challenger,
    scheduled_retrain,
    stage_weak_challenger,
    week_stages,
)
from fraudops_cli.env import settings_env
from fraudops_cli.warehouse import DemoWarehouse

if TYPE_CHECKING:
    from rich.table import Table


@dataclass
class DemoPlan:
    """What to replay. Dates are whole days; ``days`` None replays to the end of the data."""

    data_path: Path | None
    replay_start: dt.date | None = None  # None: 61 days after the first day (2018-06-01)
    days: int | None = None
    inject: DriftKind | None = None
    drift_from: dt.date | None = None
    analysts: AnalystTeam | None = None  # None: no analyst reviews the alerts
    stages: StagePlan | None = field(default_factory=StagePlan)  # None: no staged challenger


#: The last run's summary (:meth:`DemoResult.to_json`), in the demo's home.
SUMMARY_FILE = "demo-summary.json"


@dataclass
class DemoResult:
    """Per-week table and totals of one demo run."""

    weeks: list[dict[str, Any]]
    retrains: int
    promotions: int
    champion_versions: list[str]
    seconds: float
    home: str
    reports: str
    notes: list[str] = field(default_factory=list)
    online_decisions: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """The summary as indented JSON (``fraudops demo --json`` prints it)."""
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> DemoResult:
        """A summary written by :meth:`to_json`."""
        return cls(**json.loads(text))


def week_table(result: DemoResult, label_delay_days: int) -> Table:
    """The week table the demo prints (a rich ``Table``; the README's screenshot of it)."""
    from rich.table import Table

    table = Table(
        title="fraudops demo: the loop, week by week",
        caption="AP and CP@100 in hindsight (every true label, known at the end of the run); "
        "fraud label h: median hours from a fraud to its first fraud label (an analyst's, or "
        f"the chargeback {label_delay_days} days later); known <1 d: share of frauds "
        "labelled within a day",
    )
    columns = ("days", "rows", "alerts", "drift share", "decision", "champion", "AP", "CP@100")
    staged = ("stage", "challenger", "paired AP diff [90 %]")
    for column in (*columns, *staged, "reviewed", "fraud label h", "known <1 d"):
        table.add_column(column, justify="right")
    for w in result.weeks:
        table.add_row(
            w["days"],
            f"{w['rows']:,}",
            f"{w['alerts']:,}",
            str(w["drift_share"]),
            w["decision"],
            w["champion"],
            str(w["average_precision"]),
            str(w["card_precision_at_100"]),
            w.get("stage", "-"),
            w.get("challenger", "-"),
            w.get("paired_ap_difference", "-"),
            f"{w['analyst_decisions']:,}",
            str(w["fraud_label_hours"]),
            str(w["frauds_known_in_a_day"]),
        )
    return table


#: Days of simulated history when the demo has no data file.
SIMULATED_DAYS = 183
#: Days of history before the replay, when the plan does not say (April-May of the handbook).
DAYS_BEFORE_REPLAY = 61


def _history(plan: DemoPlan, settings: Settings) -> pd.DataFrame:
    """The plan's file read as the settings' spec says, or its simulator's 183 days."""
    source = settings.model_copy(
        update={"data_path": plan.data_path, "simulator_days": SIMULATED_DAYS}
    )
    return prepare_events(load(source), settings.spec)


def _start_service(
    settings: Settings, warehouse: Path, history_end: dt.date, port: int, log: Path
) -> subprocess.Popen:
    """``fraudops serve`` on the demo's settings: the warehouse, no token, a quick poll."""
    service = settings.model_copy(
        update={
            "data_path": warehouse,
            "online_history_end": history_end,
            "poll_interval_seconds": 2.0,
            "api_token": None,  # the replay client sends none
        }
    )
    env = settings_env(service)
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_logged(settings: Settings, day: dt.date, rows: int, timeout: float = 15) -> None:
    """Wait until the service's background writer has flushed the day's rows."""
    folder = settings.prediction_log_dir / f"date={day}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logged = (
            sum(
                pd.read_parquet(f, columns=["transaction_id"]).shape[0]
                for f in folder.glob("part-*.parquet")
            )
            if folder.is_dir()
            else 0
        )
        if logged >= rows:
            return
        time.sleep(0.2)


def first_fraud_label_hours(
    log: pd.DataFrame, label: str, decided: list[Case], delay_days: int
) -> pd.Series:
    """Hours from each fraud (``log`` rows whose ``label`` is 1) to its first fraud label: an
    analyst's confirmation when one came, else the demo's chargeback (the event's day plus
    the label delay, at 23:59)."""
    frauds = log[log[label] == 1]
    confirmed = {c.event_id: c.decided_at for c in decided if c.disposition == FRAUD}
    chargeback = frauds["tx_datetime"].dt.normalize() + pd.Timedelta(
        days=delay_days, hours=23, minutes=59
    )
    analyst = pd.to_datetime(frauds["transaction_id"].map(confirmed))
    first = analyst.where(analyst.notna() & (analyst < chargeback), chargeback)
    return (first - frauds["tx_datetime"]).dt.total_seconds() / 3600


def _stage(
    plan: StagePlan,
    n: int,
    day: dt.date,
    first: Settings,
    settings: Settings,
    notes: list[str],
) -> None:
    """Day ``n``'s staging (:mod:`fraudops_cli.demo_stages`): the weak challenger, a
    scheduled retrain."""
    if n == plan.weak_challenger_day:
        version = stage_weak_challenger(first)
        notes.append(f"{day}: v{version} (isolation forest) staged in shadow by hand")
    elif n in plan.retrain_days and not live_challenger(settings):
        result = scheduled_retrain(settings, day)
        outcome = f"in {result['stage']}" if result.get("stage") else "refused by the offline gate"
        notes.append(f"{day}: scheduled retrain v{result['version']} {outcome}")


def weekly_table(
    settings: Settings, truth: pd.DataFrame, decided: list[Case] | None = None
) -> list[dict[str, Any]]:
    """Per replayed week: rows, alerts, drift share, decisions, champion, AP and CP@100; the
    analysts' decisions and the label delay the frauds saw (median hours to a first fraud
    label, share known within a day).

    AP and CP@100 are hindsight: computed with every true label, known at the end of the run,
    not with the labels the monitor had during that week."""
    from sklearn.metrics import average_precision_score

    roles = settings.spec.roles()
    log = read_log(settings.prediction_log_dir)
    if log.empty:
        return []
    known = [roles.label] + ([roles.entity] if roles.entity else [])
    truth = truth[[roles.event_id, *known]].rename(columns={roles.event_id: "transaction_id"})
    log = log.merge(truth, on="transaction_id", how="left")
    log["week"] = log["tx_datetime"].dt.to_period("W-SUN").dt.start_time.dt.date
    decisions = pd.DataFrame(read_decisions(settings))
    if not decisions.empty:
        decisions["week"] = (
            pd.to_datetime(decisions["window_end"]).dt.to_period("W-SUN").dt.start_time.dt.date
        )
    weeks = []
    for week, rows in log.groupby("week", sort=True):
        labels = rows[roles.label].to_numpy()
        scored = rows.rename(columns={"tx_datetime": roles.time, "transaction_id": roles.event_id})
        both = len(np.unique(labels)) == 2
        hours = first_fraud_label_hours(rows, roles.label, decided or [], settings.label_delay_days)
        in_rows = set(rows["transaction_id"].tolist())
        reviewed = [c for c in decided or [] if c.event_id in in_rows]
        in_week = decisions[decisions["week"] == week] if not decisions.empty else decisions
        weeks.append(
            {
                "week": str(week),
                # the days replayed in it: a 3-day replay is not "week 2018-05-28"
                "days": f"{rows['tx_datetime'].min():%m-%d}..{rows['tx_datetime'].max():%m-%d}",
                "rows": len(rows),
                "alerts": int((rows["decision"] == "alert").sum()),
                "drift_share": None
                if in_week.empty
                else round(float(in_week["figures"].map(lambda f: f["drift_share"]).max()), 2),
                "decision": "-"
                if in_week.empty
                else ("retrain" if in_week["retrain"].any() else "keep"),
                "champion": ",".join(sorted(rows["model_version"].unique(), key=int)),
                "average_precision": round(float(average_precision_score(labels, rows["score"])), 3)
                if both
                else None,
                "card_precision_at_100": round(
                    card_precision_at_k(scored, rows["score"].to_numpy(), 100, roles), 3
                )
                if both
                else None,
                **week_stages(in_week),
                "analyst_decisions": len(reviewed),
                "fraud_label_hours": round(float(hours.median()), 1) if len(hours) else None,
                "frauds_known_in_a_day": round(float((hours <= 24).mean()), 3)
                if len(hours)
                else None,
            }
        )
    return weeks


def _review(
    cases: CaseStore,
    team: AnalystTeam,
    truth: dict[Any, int],
    day: dt.date,
    rng: np.random.Generator,
    alerts: int,
    post: Any,
    id_field: str,
    analyst_frauds: set[Any],
) -> list[Any]:
    """The simulated analysts work the queue at the end of ``day``; their labels go to the
    service through the outbox, as the console's do. Returns the frauds they confirmed
    rightly (their labels known from the end of ``day``)."""
    deadline = time.monotonic() + 30
    while cases.count() < alerts and time.monotonic() < deadline:  # the service's intake
        time.sleep(0.1)
    confirmed = []
    for case in review_day(cases, team, truth, day, rng):
        if case.disposition == FRAUD:
            analyst_frauds.add(case.event_id)
            if truth.get(case.event_id) == 1:
                confirmed.append(case.event_id)
    deliver(cases, post, id_field)
    return confirmed


class _SayStep(logging.Handler):
    """Passes the training flow's progress records ("training: gate (9/11)") to ``say``."""

    def __init__(self, say: Callable[[str, int, int], None], stage: str) -> None:
        super().__init__(logging.INFO)
        self.say, self.stage = say, stage

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) == 3:
            step, done, total = args
            if isinstance(done, int) and isinstance(total, int):
                self.say(f"{self.stage}: {step}", done - 1, total)


@contextlib.contextmanager
def _steps_said(say: Callable[[str, int, int], None], stage: str) -> Iterator[None]:
    from pipelines.training import PROGRESS_LOGGER

    logger = logging.getLogger(PROGRESS_LOGGER)
    handler, level = _SayStep(say, stage), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def run_demo(
    plan: DemoPlan, settings: Settings, progress: Callable[[str, int, int], None] | None = None
) -> DemoResult:
    """Run the loop; ``settings.home`` is the demo's own home (wiped first by the caller)."""
    from prefect import tags

    from monitoring.flow import monitoring_flow
    from pipelines.training import flow_settings, training_flow, with_overrides

    began = time.perf_counter()
    say = progress or (lambda stage, done, total: None)
    spec = settings.spec
    times = spec.event_time.column
    history = _history(plan, settings)
    first_day = history[times].min().date()
    replay_start = plan.replay_start or first_day + dt.timedelta(days=DAYS_BEFORE_REPLAY)
    last_day = history[times].max().date()
    end = (
        last_day
        if plan.days is None
        else min(last_day, replay_start + dt.timedelta(days=plan.days - 1))
    )
    store = DemoWarehouse(settings.home / "warehouse", spec)
    warehouse = store.folder
    before = history[history[times] < pd.Timestamp(replay_start)]
    store.land_history(before)

    first_train = first_day + dt.timedelta(days=settings.warmup_days)
    span = (replay_start - first_train).days
    say("training the first champion", 0, 1)
    first_settings = with_overrides(
        settings,
        data_path=warehouse,
        train_start=first_train,
        train_days=span - settings.label_delay_days - settings.test_days,
    )
    with _steps_said(say, "training the first champion"):
        first = training_flow(flow_settings(first_settings))
    say("training the first champion", 1, 1)

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_log = settings.home / "service.log"
    server = _start_service(
        settings, warehouse, replay_start - dt.timedelta(days=1), port, server_log
    )
    injector = None
    if plan.inject:
        injector = DriftInjector(
            plan.inject, plan.drift_from or replay_start + dt.timedelta(days=7), spec
        )
    terminals = history[drift_entity(spec)].unique() if spec.entities else np.array([])
    replayed: dict[dt.date, pd.DataFrame] = {}
    notes: list[str] = []
    client = None
    team = plan.analysts
    cases = CaseStore.open(settings.resolved_case_store_url) if team else None
    analyst_frauds: set[Any] = set()
    truth_labels: dict[Any, int] = {}
    alerts_so_far = 0
    poster = http_poster(url, None)  # the demo's service has no token
    id_field = spec_api(spec).id_field
    rng = np.random.default_rng(team.seed if team else 0)
    try:
        wait_http_ok(f"{url}/readyz", server, log=server_log)
        client = ReplayClient(url, spec)
        days = [replay_start + dt.timedelta(days=i) for i in range((end - replay_start).days + 1)]

        def replay_day(day: dt.date) -> None:
            rows = history[history[times].dt.date == day]
            if injector is not None:
                rows = injector.apply(rows, day, terminals)
            answers = client.score(rows)
            confirmed: list[Any] = []
            if cases is not None and team is not None:
                nonlocal alerts_so_far
                alerts_so_far += sum(1 for a in answers if a["decision"] == "alert")
                truth_labels.update(
                    zip(
                        rows[spec.event_id.column].tolist(),
                        rows[spec.label.column].astype(int).tolist(),
                        strict=True,
                    )
                )
                confirmed = _review(
                    cases,
                    team,
                    truth_labels,
                    day,
                    rng,
                    alerts_so_far,
                    poster,
                    id_field,
                    analyst_frauds,
                )
            replayed[day] = store.land_day(day, rows)
            store.confirmed(confirmed, day)
            labelled = store.rows_of(day - dt.timedelta(days=settings.label_delay_days))
            if labelled is not None:
                client.feedback(
                    labelled,
                    dt.datetime.combine(day, dt.time(23, 59)),
                    corrections=analyst_frauds,
                )
            _wait_logged(settings, day, len(rows))

        # Day D+1 is replayed while day D is monitored: the service and the drift job each
        # get a core, and the monitored window never runs more than a day behind the traffic.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay") as pool:
            pending = pool.submit(replay_day, days[0])
            for n, day in enumerate(days, start=1):
                pending.result()
                if n < len(days):
                    pending = pool.submit(replay_day, days[n])
                try:
                    with tags("fraudops-demo", f"window-end:{day}"):  # a recorded flow run
                        monitoring_flow(
                            day.isoformat(), flow_settings(settings), steps_as_tasks=False
                        )
                except MonitorInputError as exc:
                    notes.append(f"{day}: {exc}")
                if plan.stages is not None:
                    _stage(plan.stages, n, day, first_settings, settings, notes)
                say("replay, monitoring", n, len(days))
    finally:
        if client is not None:
            client.close()
        stop(server)
        decided = cases.decided() if cases is not None else []
        if cases is not None:
            cases.close()
    truth = pd.concat([before, *replayed.values()], ignore_index=True)
    decisions = read_decisions(settings)
    versions = [first["version"]]
    for d in decisions:  # in order: an online promotion is judged first, then a retrain's gate
        gate = d.get("online_gate") or {}
        if gate.get("outcome") == "promoted":
            versions.append(gate["version"])
        if (d.get("retrain_result") or {}).get("promoted"):
            versions.append(d["retrain_result"]["version"])
    online = [d["online_gate"] for d in decisions if (d.get("online_gate") or {}).get("version")]
    return DemoResult(
        weeks=weekly_table(settings, truth, decided),
        retrains=sum(1 for d in decisions if d["retrain"]),
        promotions=len(versions) - 1,
        online_decisions=[g for g in online if g["outcome"] != "waiting"],
        champion_versions=versions,
        seconds=round(time.perf_counter() - began, 1),
        home=str(settings.home),
        reports=str(settings.reports_dir),
        notes=notes,
    )
