"""``fraudops`` command line: train, promote, simulate, demo.

Each command reads the settings once, points the tools' state under ``FRAUDOPS_HOME`` and calls
importable functions; heavy modules are imported inside the commands so ``--help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from fraudops.settings import MODEL_KINDS, Settings

app = typer.Typer(
    help="fraudops: train, gate and register fraud models; serve and monitor them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

SHARED_DATA = Path("../shared/data/handbook_transactions.parquet")  # beside the checkout


def _fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    """Settings from the environment with CLI overrides; a bad value exits 2 naming the field."""
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise _fail(f"invalid setting: {problems}") from None
    _point_tools_home(settings)
    return settings


def _point_tools_home(settings: Settings) -> None:
    """Keep Prefect's and BentoML's state under the home folder; telemetry off."""
    settings.prefect_home.mkdir(parents=True, exist_ok=True)  # Prefect does not make parents
    defaults = {
        "PREFECT_HOME": str(settings.prefect_home),
        "BENTOML_HOME": str(settings.home / "bentoml"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "DO_NOT_TRACK": "true",
        "BENTOML_DO_NOT_TRACK": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_TRACKING_URI": settings.resolved_tracking_uri,
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def _user_errors() -> tuple[type[BaseException], ...]:
    from fraudops.contract import DataValidationError
    from fraudops.evaluation import EvaluationError
    from fraudops.model import UnknownModelError
    from fraudops.registry import RegistryError
    from fraudops.sources import DataSourceError
    from fraudops.splits import SplitError

    return (
        DataValidationError,
        DataSourceError,
        SplitError,
        EvaluationError,
        UnknownModelError,
        RegistryError,
    )


def _train(settings: Settings, as_json: bool) -> dict[str, Any]:
    if as_json:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    from pipelines.training import training_flow

    overrides: dict[str, Any] = {
        "data_path": None if settings.data_path is None else str(settings.data_path),
        "model_kind": settings.model_kind,
        "train_days": settings.train_days,
        "train_start": None if settings.train_start is None else settings.train_start.isoformat(),
    }
    try:
        return training_flow(**overrides)
    except _user_errors() as exc:
        raise _fail(str(exc)) from None


def _print_summary(result: dict[str, Any]) -> None:
    verdict = "promoted to @champion" if result["promoted"] else "kept the champion"
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
        typer.Option(exists=True, dir_okay=False, help="Parquet/CSV file; default: simulator."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=f"Model kind: {', '.join(MODEL_KINDS)}.")
    ] = None,
    train_days: Annotated[int | None, typer.Option(min=1, help="Training window, days.")] = None,
    train_start: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="First training day.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Train a challenger, gate it against @champion on the same holdout, register it."""
    settings = _settings(
        data_path=data,
        model_kind=model,
        train_days=train_days,
        train_start=None if train_start is None else train_start.date(),
    )
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
        raise _fail("give exactly one of --version N or --rollback")
    settings = _settings()
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
        raise _fail(str(exc)) from None
    typer.echo(f"@champion -> v{version}" + (f" (@previous v{old})" if old else ""))


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
) -> None:
    """Write a simulated labelled transaction history (the handbook's generative process)."""
    from fraudops.simulator import SimulationConfig, simulate_transactions
    from fraudops.sources import write_transactions

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
        frame = simulate_transactions(config)
        write_transactions(frame, out)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {len(frame):,} transactions ({frame['TX_FRAUD'].mean():.2%} fraud) to {out}")


@app.command()
def serve(
    port: Annotated[
        int | None, typer.Option(help="Port; default FRAUDOPS_SERVE_PORT (3000).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address; default 127.0.0.1.")] = None,
    data: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="History that warms the online state."),
    ] = None,
) -> None:
    """Serve @champion over REST (BentoML): /score, /score_batch, /feedback, /model."""
    settings = _settings(data_path=data, serve_port=port, serve_host=host)
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "FRAUDOPS_HOME": str(settings.home),
        "FRAUDOPS_SERVE_WORKERS": str(settings.serve_workers),
    }
    if settings.data_path is not None:
        env["FRAUDOPS_DATA_PATH"] = str(settings.data_path.resolve())
    if settings.serve_workers > 1 and settings.feature_store == "memory":
        raise _fail("more than one worker needs FRAUDOPS_FEATURE_STORE=redis://... (shared state)")
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
    typer.echo(
        f"serving @champion of {settings.model_name} on "
        f"http://{settings.serve_host}:{settings.serve_port} (docs at /docs)"
    )
    os.execvpe(command[0], command, env)


@app.command()
def demo(
    data: Annotated[Path | None, typer.Option(help="Default: the shared handbook file.")] = None,
) -> None:
    """Train a first champion, then a weaker challenger that the gate rejects."""
    path = data or (SHARED_DATA if SHARED_DATA.is_file() else None)
    typer.echo(f"data: {path or 'built-in simulator'}")
    settings = _settings(data_path=path)
    typer.echo("1/2 challenger: HistGradientBoosting on the default 28-day window")
    _print_summary(_train(settings, as_json=False))
    weak = _settings(data_path=path, model_kind="logistic_regression", train_days=2)
    typer.echo("2/2 challenger: logistic regression on 2 days (should not win)")
    _print_summary(_train(weak, as_json=False))
    typer.echo(
        f"registry: {settings.resolved_tracking_uri}\n"
        f"  browse it with: mlflow ui --backend-store-uri {settings.resolved_tracking_uri}"
    )
