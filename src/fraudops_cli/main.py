"""``fraudops`` command line: train, promote, simulate, demo.

Each command reads the settings once, points the tools' state under ``FRAUDOPS_HOME`` and calls
importable functions with that Settings object; heavy modules are imported inside the commands so
``--help`` stays fast. A child process (``fraudops serve`` -> ``bentoml serve``) gets its
settings through its environment, built from the object by :func:`settings_env`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import sys
from collections.abc import Iterator
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from fraudops.settings import MODEL_KINDS, Settings
from fraudops_cli import quiet
from fraudops_cli.console_commands import analyst_app, console
from fraudops_cli.env import settings_env
from fraudops_cli.failure import fail
from fraudops_cli.spec_commands import spec_app
from fraudops_cli.stage_commands import stage, status

app = typer.Typer(
    help="fraudops: train, gate and register fraud models; serve and monitor them. Settings come "
    "from FRAUDOPS_* environment variables (README, Settings), read once at start-up; an option "
    "overrides the variable its help names; every store lives under FRAUDOPS_HOME (default "
    "./.fraudops). Start with: fraudops demo",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help: wraps to the terminal instead of cutting at 80 columns, no "<bool>" on flags
    rich_markup_mode=None,
)
#: ``--model``'s allowed values (listed by ``--help``, refused otherwise by the parser).
ModelKind = Enum("ModelKind", {kind: kind for kind in MODEL_KINDS}, type=str)  # type: ignore[misc]


class DriftScenario(StrEnum):
    """``demo --inject-drift``'s scenarios."""

    amount = "amount"
    terminals = "terminals"


app.add_typer(spec_app, name="spec")
app.add_typer(analyst_app, name="analyst")
app.command("console")(console)
app.command("status")(status)
app.command("stage")(stage)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"fraudops {version('fraudops')}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Show the tools' logs and full tracebacks."),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version, exit."
        ),
    ] = False,
) -> None:
    """Options of every command (the app's help says what fraudops is)."""
    if not verbose:
        ctx.call_on_close(quiet.quiet())


#: ``--spec``: the dataset spec, overriding FRAUDOPS_DATASET_SPEC.
SpecOption = Annotated[
    str | None,
    typer.Option(
        "--spec",
        help="Dataset spec: a YAML file or a shipped name (handbook, cards, handbook-arrival); "
        "default FRAUDOPS_DATASET_SPEC, else handbook.",
    ),
]

SHARED_DATA = Path("../shared/data/handbook_transactions.parquet")  # beside the checkout


def _require(settings: Settings, *conditions: Any) -> None:
    """Exit 2 with one line unless every precondition holds (see :mod:`fraudops_cli.quiet`)."""
    try:
        quiet.check(settings, *conditions)
    except quiet.Unmet as exc:
        raise fail(str(exc)) from None


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment with CLI overrides; a bad value exits 2 naming the field."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            ": ".join(
                part
                for part in (
                    ".".join(str(p) for p in e["loc"]),
                    str(e["msg"]).removeprefix("Value error, "),
                )
                if part
            )
            for e in exc.errors()
        )
        raise fail(f"invalid setting: {problems}") from None
    _point_tools_home(settings)
    return settings


def _tools_env(settings: Settings) -> dict[str, str]:
    """The environment Prefect, BentoML and MLflow read: their state under the home."""
    return {
        "PREFECT_HOME": str(settings.prefect_home),
        "BENTOML_HOME": str(settings.home / "bentoml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "DO_NOT_TRACK": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
    }


def _point_tools_home(settings: Settings, moving_from: Settings | None = None) -> None:
    """Keep Prefect's and BentoML's state under the home folder; telemetry off.

    A variable the user set is kept. ``moving_from``: the settings this process pointed the
    tools at before (the demo moves them to its own home); their values are replaced."""
    settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect does not make parents
    before = _tools_env(moving_from) if moving_from is not None else {}
    for key, value in _tools_env(settings).items():
        if key in before and os.environ.get(key) == before[key]:
            os.environ[key] = value
        else:
            os.environ.setdefault(key, value)


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[None]:
    """SIGTERM exits like Ctrl-C inside the block: the demo's ``finally`` blocks stop its
    service and Prefect's temporary server (the default action killed the demo alone and left
    both running)."""

    def interrupt(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _user_errors() -> tuple[type[BaseException], ...]:
    from fraudops.data.contract import DataValidationError
    from fraudops.data.sources import DataSourceError
    from fraudops.data.splits import SplitError
    from fraudops.drift.report import DriftInputError
    from fraudops.model.evaluation import EvaluationError
    from fraudops.model.pipeline import UnknownModelError
    from fraudops.registry import RegistryError
    from fraudops.registry.integrity import IntegrityError
    from fraudops.serving.scorer import ChampionRefused

    return (
        IntegrityError,
        ChampionRefused,
        DataValidationError,
        DriftInputError,
        DataSourceError,
        SplitError,
        EvaluationError,
        UnknownModelError,
        RegistryError,
    )


def _train(settings: Settings, as_json: bool) -> dict[str, Any]:
    if as_json:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from pipelines.training import flow_settings, training_flow

    try:
        if as_json:
            return training_flow(flow_settings(settings))
        with quiet.progress():
            return training_flow(flow_settings(settings))
    except _user_errors() as exc:
        raise fail(str(exc)) from None


def _print_summary(result: dict[str, Any]) -> None:
    verdict = (
        "promoted to @champion"
        if result["promoted"]
        else f"passed; @challenger in {result['stage']}"
        if result.get("stage")
        else "kept the champion"
    )
    m = result["metrics"]
    typer.echo(
        f"{result['model_name']} v{result['version']} ({result['model_kind']}), trained "
        f"{result['windows']['train_start']}..{result['windows']['train_end']}, tested "
        f"{result['windows']['test_start']}..{result['windows']['test_end']}"
    )
    typer.echo(
        f"  average precision {m['average_precision']:.3f}  ROC AUC {m['roc_auc']:.3f}  "
        f"CP@k {m['card_precision_at_k']:.3f}  recall@FPR {m['recall_at_fpr']:.3f}  "
        f"threshold {m['threshold']:.4f}"
    )
    typer.echo(f"  gate: {verdict}; champion is v{result['champion_version']}")
    for reason in result["reasons"]:
        typer.echo(f"    - {reason}")


@app.command()
def train(
    data: Annotated[
        Path | None,
        typer.Option(
            help="Parquet/CSV file or Parquet folder; default FRAUDOPS_DATA_PATH, else the "
            "simulator."
        ),
    ] = None,
    model: Annotated[
        ModelKind | None,
        typer.Option(help="Model kind; default FRAUDOPS_MODEL_KIND, else hist_gradient_boosting."),
    ] = None,
    train_days: Annotated[
        int | None,
        typer.Option(min=1, help="Training window, days; default FRAUDOPS_TRAIN_DAYS (28)."),
    ] = None,
    train_start: Annotated[
        dt.datetime | None,
        typer.Option(
            formats=["%Y-%m-%d"],
            help="First training day; default FRAUDOPS_TRAIN_START, else the latest window.",
        ),
    ] = None,
    spec: SpecOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Train a challenger, gate it against @champion on the same holdout, register it.

    Example: fraudops train --data claims.csv --spec claims.yaml
    """
    settings = _settings(
        dataset_spec=spec,
        data_path=data,
        model_kind=None if model is None else model.value,
        train_days=train_days,
        train_start=None if train_start is None else train_start.date(),
    )
    _require(settings, quiet.data_file)
    result = _train(settings, as_json)
    if as_json:
        import json

        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        _print_summary(result)


@app.command()
def promote(
    version: Annotated[str | None, typer.Option(help="Version to make @champion.")] = None,
    rollback: Annotated[bool, typer.Option(help="Return @champion to @previous.")] = False,
    reason: Annotated[
        str, typer.Option(help="Why, recorded on the version.")
    ] = "operator override",
) -> None:
    """Move @champion by hand (an operator's override), or roll back to @previous."""
    if (version is None) == (not rollback):
        raise fail("give exactly one of --version N or --rollback")
    settings = _settings()
    _require(settings, quiet.registry_exists)
    from fraudops import registry

    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    try:
        if rollback:
            champion, previous = registry.rollback(client, settings.model_name)
            typer.echo(f"rolled back: @champion v{champion}, @previous v{previous}")
            return
        assert version is not None
        registry.require_version(client, settings.model_name, version)
        old = registry.promote(
            client, settings.model_name, version, reason=f"operator override: {reason}"
        )
    except _user_errors() as exc:
        raise fail(str(exc)) from None
    typer.echo(f"@champion -> v{version}" + (f" (@previous v{old})" if old else ""))


@app.command()
def report(
    version: Annotated[
        str | None, typer.Option(help="Version whose model report to fetch (default @champion).")
    ] = None,
) -> None:
    """Fetch a version's model report (curves, matrices, calibration, slices) and print its path.

    Example: fraudops report --version 3
    """
    settings = _settings()
    _require(settings, quiet.registry_exists)
    from fraudops.report_step import fetch_report

    try:
        path = fetch_report(settings, version)
    except _user_errors() as exc:
        raise fail(str(exc)) from None
    typer.echo(f"model report: {path.as_uri()}")


@app.command()
def audit(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the model's audit log: every promotion, rollback and gate refusal, oldest first.

    Example: fraudops audit --json
    """
    settings = _settings()
    _require(settings, quiet.registry_exists)
    from fraudops import registry
    from fraudops.registry import audit as audit_log

    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    try:
        registry.require_model(client, settings.model_name)
        events = audit_log.read(client, settings.model_name)
    except registry.RegistryError as exc:
        raise fail(str(exc)) from None
    except ValueError as exc:  # a tag under the audit prefix that is not an event
        raise fail(str(exc)) from None
    for event in events:
        if as_json:
            typer.echo(event.to_json())
            continue
        was = f" (was v{event.previous})" if event.previous else ""
        what = f"{event.action:<16} v{event.version}{was}"
        typer.echo(f"{event.at}  {what}  by {event.actor}: {event.reason}")
    if not events and not as_json:
        typer.echo(f"model {settings.model_name!r}: no audit event yet")


@app.command()
def simulate(
    out: Annotated[Path, typer.Option(help="Output .parquet or .csv file.")],
    days: Annotated[int, typer.Option(min=1, help="Days of history.")] = 183,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    customers: Annotated[int, typer.Option(min=1)] = 5_000,
    terminals: Annotated[int, typer.Option(min=1)] = 10_000,
    drift_from: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First drifted day.")
    ] = None,
    amount_scale: Annotated[float, typer.Option(help="Amount factor from --drift-from.")] = 1.0,
    fraud_rate_scale: Annotated[float, typer.Option(help="Compromises/day factor.")] = 1.0,
    extra_compromised_terminals: Annotated[int, typer.Option(min=0)] = 0,
    scale: Annotated[
        int,
        typer.Option(
            min=1,
            help="Independent regions of the population (ids offset): N times the volume. "
            "Above 1, --out is a folder partitioned by day (as with --by-day).",
        ),
    ] = 1,
    by_day: Annotated[
        bool,
        typer.Option(
            help="Write a folder day=YYYY-MM-DD/part-0.parquet (the Dask engine's input)."
        ),
    ] = False,
) -> None:
    """Write a simulated labelled transaction history (the handbook's generative process)."""
    from fraudops.data.simulator import SimulationConfig, simulate_transactions
    from fraudops.data.sources import write_transactions

    try:
        config = SimulationConfig(
            days=days,
            seed=seed,
            n_customers=customers,
            n_terminals=terminals,
            drift_from=None if drift_from is None else drift_from.date(),
            amount_scale=amount_scale,
            fraud_rate_scale=fraud_rate_scale,
            extra_compromised_terminals_per_day=extra_compromised_terminals,
        )
        if scale > 1 or by_day:
            from fraudops.data.partitioned_history import simulate_by_day

            written = simulate_by_day(config, scale, out)
            typer.echo(
                f"wrote {written.rows:,} transactions ({written.frauds / written.rows:.2%} "
                f"fraud) to {written.path}, {written.days} day partitions"
            )
            return
        frame = simulate_transactions(config)
        write_transactions(frame, out)
    except ValueError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"wrote {len(frame):,} transactions ({frame['TX_FRAUD'].mean():.2%} fraud) to {out}")


@app.command()
def serve(
    port: Annotated[
        int | None, typer.Option(help="Port; default FRAUDOPS_SERVE_PORT (3000).")
    ] = None,
    host: Annotated[
        str | None, typer.Option(help="Address; default FRAUDOPS_SERVE_HOST (127.0.0.1).")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(help="History that warms the online state; default FRAUDOPS_DATA_PATH."),
    ] = None,
) -> None:
    """Serve @champion over REST (BentoML): /score, /score_batch, /feedback, /model."""
    settings = _settings(data_path=data, serve_port=port, serve_host=host)
    _require(settings, quiet.data_file)
    if settings.data_path is not None:
        settings = settings.model_copy(update={"data_path": settings.data_path.resolve()})
    from fraudops.serving.exposure import UnsafeExposure, require_safe_exposure

    try:
        require_safe_exposure(settings)
    except UnsafeExposure as exc:
        raise fail(str(exc)) from None
    env = {**settings_env(settings), "OMP_NUM_THREADS": "1"}
    if settings.serve_workers > 1 and settings.feature_store == "memory":
        raise fail("more than one worker needs FRAUDOPS_FEATURE_STORE=redis://... (shared state)")
    command = [
        sys.executable,
        "-m",
        "bentoml",
        "serve",
        "services.service:FraudService",
        "--host",
        settings.serve_host,
        "--port",
        str(settings.serve_port),
    ]
    try:
        quiet.champion(settings)
        what = f"@champion of {settings.model_name}"
    except quiet.Unmet as exc:  # the service starts anyway and picks the champion up later
        what = f"nothing yet ({exc}; the service waits for @champion)"
    typer.echo(
        f"serving {what} on http://{settings.serve_host}:{settings.serve_port} "
        "(API docs at /docs; ready when /readyz answers 200)"
    )
    os.execvpe(command[0], command, env)


@app.command()
def demo(
    data: Annotated[Path | None, typer.Option(help="Default: the shared handbook file.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Replay this many days.")] = None,
    inject_drift: Annotated[
        DriftScenario | None, typer.Option(help="Drift scenario injected into the replay.")
    ] = None,
    drift_from: Annotated[
        dt.datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="First drifted day (default: a week in)."),
    ] = None,
    analysts: Annotated[
        int,
        typer.Option(
            min=0, help="Cases simulated analysts decide per day (top of the queue); 0: none."
        ),
    ] = 100,
    review_hours: Annotated[
        float, typer.Option(min=0.01, help="Mean hours from an alert to its decision.")
    ] = 4.0,
    analyst_error: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of wrong analyst decisions.")
    ] = 0.02,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    spec: SpecOption = None,
) -> None:
    """The whole loop: train on the first two months, serve, replay the rest day by day through
    the API, let simulated analysts review the top alerts (their decisions become labels within
    hours), feed chargebacks back after the delay, monitor drift daily, retrain and promote
    when needed.

    Example: fraudops demo --spec cards --days 28"""
    import shutil

    from fraudops.data.history import HANDBOOK_SCHEMA_SPECS

    base = _settings(dataset_spec=spec)
    handbook = base.spec.name in HANDBOOK_SCHEMA_SPECS  # the shared file has their columns
    path = data or (SHARED_DATA if handbook and SHARED_DATA.is_file() else None)
    home = base.home / "demo"
    shutil.rmtree(home, ignore_errors=True)  # the demo's own state, rebuilt every run
    # staged: a challenger that passes the offline gate is judged in shadow before promotion
    settings = _settings(
        home=home, data_path=home / "warehouse", dataset_spec=spec, promotion="staged"
    )
    _point_tools_home(settings, moving_from=base)  # Prefect's and BentoML's state too
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # Prefect's own, read at import
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from fraudops.cases.simulated import AnalystTeam
    from fraudops_cli.demo import SUMMARY_FILE, DemoPlan, run_demo, week_table

    # a pipe or a file gets rich's 80 columns, which cut the week table's columns to "…"
    console = Console(stderr=as_json, width=None if sys.stdout.isatty() else 160)
    console.print(
        f"data: {path or 'built-in simulator (183 days)'}, dataset spec {settings.spec.name!r}"
    )
    plan = DemoPlan(
        data_path=path,
        days=days,
        inject=None if inject_drift is None else inject_drift.value,
        drift_from=None if drift_from is None else drift_from.date(),
        analysts=AnalystTeam(analysts, review_hours, error_rate=analyst_error)
        if analysts
        else None,
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bars:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = stage.split(":")[0]  # "training the first champion: gate": one bar, its step
            if bar not in tasks:
                tasks[bar] = bars.add_task(stage, total=total)
            bars.update(tasks[bar], description=stage, completed=done, total=total)

        try:
            with _stop_on_sigterm():
                result = run_demo(plan, settings, progress)
        except _user_errors() as exc:
            raise fail(str(exc)) from None
    (home / SUMMARY_FILE).write_text(result.to_json(), encoding="utf-8")
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
        return
    table = week_table(result, settings.label_delay_days)
    console.print(table)
    console.print(
        f"{result.retrains} retrain(s), {result.promotions} promotion(s); champions "
        f"{' -> '.join('v' + v for v in result.champion_versions)}; {result.seconds:.0f} s\n"
        f"reports: {result.reports}/*.html (browse them: FRAUDOPS_HOME={home} fraudops ui)\n"
        f"registry: mlflow ui --backend-store-uri {settings.resolved_tracking_uri}"
    )


@app.command()
def monitor(
    window_end: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="Last day of the window.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the decision as JSON.")] = False,
) -> None:
    """Run the monitoring flow once on the latest window of the prediction log."""
    import json

    settings = _settings()
    _require(settings, quiet.champion)
    if as_json:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from monitoring.flow import monitoring_flow
    from pipelines.training import flow_settings

    try:
        decision = monitoring_flow(
            None if window_end is None else window_end.date().isoformat(),
            settings=flow_settings(settings),
        )
    except _user_errors() as exc:
        raise fail(str(exc)) from None
    if as_json:
        sys.stdout.write(json.dumps(decision, indent=2) + "\n")
        return
    typer.echo(
        f"window {decision['window_start']}..{decision['window_end']} vs champion "
        f"v{decision['champion_version']}: {'RETRAIN' if decision['retrain'] else 'no retrain'}"
    )
    for reason in decision["reasons"]:
        typer.echo(f"  - {reason}")
    typer.echo(f"report: {decision['report_html']}  ({settings.reports_dir})")


@app.command()
def replay(
    data: Annotated[Path, typer.Option(exists=True, help="Labelled transactions to replay.")],
    start: Annotated[dt.datetime, typer.Option("--from", formats=["%Y-%m-%d"], help="First day.")],
    days: Annotated[int, typer.Option(min=1, help="Days to replay.")] = 7,
    url: Annotated[str, typer.Option(help="Service URL.")] = "http://127.0.0.1:3000",
    spec: SpecOption = None,
) -> None:
    """Send events day by day to a running service, and labels after the delay.

    Example: fraudops replay --data history.parquet --from 2018-06-01 --days 7"""
    settings = _settings(dataset_spec=spec, data_path=data)
    from fraudops.data.history import load
    from fraudops.serving.replay import ReplayClient
    from fraudops.spec.data import prepare_events

    try:
        history = prepare_events(load(settings), settings.spec)
    except _user_errors() as exc:
        raise fail(str(exc)) from None
    token = settings.api_token.get_secret_value() if settings.api_token else None
    label_token = settings.label_token.get_secret_value() if settings.label_token else token
    client = ReplayClient(url, settings.spec, token, label_token=label_token)
    delay = dt.timedelta(days=settings.label_delay_days)
    times = history[settings.spec.event_time.column].dt.date
    for i in range(days):
        day = (start + dt.timedelta(days=i)).date()
        rows = history[times == day]
        answers = client.score(rows)
        labelled = history[times == day - delay]
        sent = (
            client.feedback(labelled, dt.datetime.combine(day, dt.time(23, 59)))
            if len(labelled)
            else 0
        )
        alerts = sum(1 for a in answers if a["decision"] == "alert")
        typer.echo(f"{day}: {len(answers):,} scored, {alerts:,} alerts, {sent:,} labels sent")
    client.close()


@app.command()
def ui() -> None:
    """Start the Evidently UI on the reports workspace; print the MLflow and Prefect UI commands."""
    settings = _settings()
    from fraudops.drift.monitor import workspace_path

    workspace = workspace_path(settings)
    local = settings.resolved_tracking_uri.removeprefix("sqlite:///")
    registry_file = Path(local) if local != settings.resolved_tracking_uri else None
    if (
        registry_file is not None  # a team registry keeps its runs on its server
        and not registry_file.exists()
        and not any(settings.reports_dir.glob("drift-*.html"))
    ):
        demo = settings.home / "demo"
        hint = (
            f"; the demo's are under {demo}: FRAUDOPS_HOME={demo} fraudops ui"
            if (demo / "mlflow.db").exists()
            else "; train or run the demo first"
        )
        typer.secho(f"warning: {settings.home} holds no run yet{hint}", fg=typer.colors.YELLOW)
    workspace.mkdir(parents=True, exist_ok=True)
    typer.echo(
        f"Evidently UI: http://127.0.0.1:{settings.ui_port} (workspace {workspace})\n"
        f"HTML reports: {settings.reports_dir}/*.html\n"
        f"Model reports: fraudops report [--version N] (writes {settings.reports_dir}/models/)\n"
        f"MLflow UI:    mlflow ui --backend-store-uri {settings.resolved_tracking_uri}\n"
        f"Prefect UI:   PREFECT_HOME={settings.prefect_home} prefect server start --host "
        "127.0.0.1 (then http://127.0.0.1:4200)\n"
        f"Cases:        fraudops console (http://{settings.console_host}:"
        f"{settings.console_port}; users: fraudops analyst add NAME)"
    )
    command = [
        sys.executable,
        "-c",
        "from evidently.cli import app; app()",
        "ui",
        "--workspace",
        str(workspace),
        "--host",
        "127.0.0.1",
        "--port",
        str(settings.ui_port),
    ]
    os.execvpe(command[0], command, dict(os.environ))


@app.command()
def screenshots(
    out: Annotated[Path, typer.Option(help="Folder of the four PNGs.")] = Path(
        ".github/screenshots"
    ),
) -> None:
    """Take the README's pictures from the real UIs of a demo's home: the Evidently dashboard,
    the newest drift report, the champion's MLflow page and the week table (Chromium).

    Example: FRAUDOPS_HOME=.fraudops/demo fraudops screenshots"""
    from fraudops_cli.screenshots import ScreenshotError, take

    try:
        pictures = take(_settings(), out)
    except ScreenshotError as exc:
        raise fail(str(exc)) from None
    for picture in pictures:
        typer.echo(str(picture))


@app.command()
def schedule(
    train_cron: Annotated[str, typer.Option(help="Training schedule.")] = "0 3 * * 1",
    monitor_cron: Annotated[str, typer.Option(help="Monitoring schedule.")] = "0 2 * * *",
) -> None:
    """Serve the training (weekly) and monitoring (daily) flows on cron schedules.

    Needs a Prefect server (``PREFECT_API_URL``): schedules are refused on the ephemeral API.
    """
    settings = _settings()
    if not os.environ.get("PREFECT_API_URL"):
        raise fail(
            "schedules need a Prefect server: start `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api"
        )
    from prefect import serve as prefect_serve

    from monitoring.flow import monitoring_flow
    from pipelines.training import training_flow

    typer.echo(f"training: {train_cron}; monitoring: {monitor_cron} ({settings.model_name})")
    deployments: list[Any] = [
        training_flow.to_deployment(name="train-weekly", cron=train_cron),
        monitoring_flow.to_deployment(name="monitor-daily", cron=monitor_cron),
    ]
    prefect_serve(*deployments)


@app.command("score-batch")
def score_batch(
    input_file: Annotated[
        Path,
        typer.Option(
            "--input",
            exists=True,
            help="Parquet or CSV transactions to score, or a folder partitioned by day "
            "(scored by the features flow: on Dask when FRAUDOPS_DASK_* say so).",
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(help="Output .parquet or .csv, or a folder for a partitioned input (atomic)."),
    ],
    version: Annotated[
        str | None, typer.Option(help="Registry version; default the one @champion points to.")
    ] = None,
    spec: SpecOption = None,
) -> None:
    """Score a file offline with @champion: same features and threshold as the service."""
    settings = _settings(dataset_spec=spec)
    from fraudops import registry
    from fraudops.serving.batch import BatchResult, score_file

    try:
        registry.configure_mlflow(settings)
        if input_file.is_dir():
            from pipelines.features import run_batch_score

            # before the flow starts (Prefect's server, a cluster): no champion, no wait
            registry.resolve_version(registry.client_for(settings), settings.model_name, version)

            with quiet.progress():
                scored = run_batch_score(settings, input_file, output, version)
            result = BatchResult(**{**scored, "output": Path(scored["output"])})
        else:
            result = score_file(settings, input_file, output, version)
    except _user_errors() as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"{result.rows:,} rows scored by v{result.model_version} ({result.alerts:,} alerts) "
        f"-> {result.output} in {result.seconds:.1f} s ({result.rows_per_second:,.0f} rows/s)"
    )


@app.command("features")
def features(
    history: Annotated[
        Path,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Folder of Parquet files partitioned by day (fraudops simulate --by-day).",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder, one file per day (atomic).")],
    dask_address: Annotated[
        str | None,
        typer.Option(help="Dask scheduler (tls:// or tcp://); default FRAUDOPS_DASK_ADDRESS."),
    ] = None,
    dask_workers: Annotated[
        int | None,
        typer.Option(
            min=0, help="Local Dask cluster of N processes; default FRAUDOPS_DASK_WORKERS (0)."
        ),
    ] = None,
    spec: SpecOption = None,
) -> None:
    """Features of a partitioned history: on Dask (by entity) or in this process."""
    settings = _settings(dataset_spec=spec, dask_address=dask_address, dask_workers=dask_workers)
    from pipelines.features import run_features

    try:
        with quiet.progress():
            result = run_features(settings, history, out)
    except _user_errors() as exc:
        raise fail(str(exc)) from None
    typer.echo(f"{result['rows']:,} rows, {result['parts']} files -> {result['path']}")


@app.command("build-bento")
def build_bento(
    version: Annotated[
        str | None, typer.Option(help="Registry version to bundle; default @champion.")
    ] = None,
) -> None:
    """Build the service's bento with a registry version inside (run from the repository root)."""
    settings = _settings()
    from services.bento import build_bento as build

    try:
        bento, model = build(settings, version)
    except (*_user_errors(), FileNotFoundError) as exc:  # type: ignore[misc]
        raise fail(str(exc)) from None
    typer.echo(
        f"bento {bento.tag} with {model.tag} (registry v{model.info.labels['registry_version']})\n"
        f"containerize: bentoml containerize {bento.tag} -t fraudops-service:latest"
    )


def main() -> None:
    """The ``fraudops`` entry point (see :func:`fraudops_cli.quiet.run`)."""
    quiet.run(app)
