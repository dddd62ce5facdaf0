"""Typed configuration, read once at start-up from ``FRAUDOPS_*`` environment variables.

Every embedded default lives under one home folder (``FRAUDOPS_HOME``, default ``./.fraudops``):
the MLflow sqlite database and artifact folder, Prefect's and BentoML's state, the prediction log
and the reports. Nothing is created or configured when this module is imported; call
:meth:`Settings.ensure_home` and :func:`fraudops.registry.configure_mlflow` from an entry point.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fraudops.spec import DatasetSpec, SpecError, format_duration, load_spec

ModelKind = Literal["hist_gradient_boosting", "logistic_regression", "isolation_forest"]
MODEL_KINDS: tuple[str, ...] = ("hist_gradient_boosting", "logistic_regression", "isolation_forest")
#: How the example env files' placeholders start; a secret that does is refused.
PLACEHOLDER = "change-me"
#: Fewest characters of ``model_signing_key`` (a 128-bit secret written as hex).
MIN_SIGNING_KEY_CHARS = 32


class Settings(BaseSettings):
    """All settings of the platform; each field is overridable as ``FRAUDOPS_<FIELD>``.

    Durations are whole days; rates are fractions in [0, 1].
    """

    model_config = SettingsConfigDict(env_prefix="FRAUDOPS_", extra="ignore")

    home: Path = Field(Path(".fraudops"), description="Folder for every embedded store.")
    tracking_uri: str | None = Field(
        None, description="MLflow tracking and registry URI; default sqlite:///<home>/mlflow.db."
    )
    artifact_location: str | None = Field(
        None,
        description="Artifact root for new experiments; default <home>/mlartifacts, or the "
        "tracking server's own (proxied) store when the tracking URI is http(s).",
    )
    experiment_name: str = "fraudops-training"
    model_name: str = "fraud-detector"

    data_path: Path | None = Field(
        None, description="Parquet or CSV transactions file; None uses the built-in simulator."
    )
    dataset_spec: str | None = Field(
        None,
        description="Dataset spec: a YAML file or a shipped spec's name ('handbook', 'cards'); "
        "None: the handbook's. Read once, when the settings are built.",
    )
    column_mapping: dict[str, str] = Field(
        default_factory=dict,
        description="Your column name -> contract column name, e.g. {'ts': 'TX_DATETIME'}.",
    )
    simulator_days: int = Field(120, ge=1, description="Days simulated when no data path is set.")
    dask_address: str | None = Field(
        None,
        description="Scheduler of an existing Dask cluster (tls://host:8786; tcp:// only with "
        "a local registry) for the partitioned feature engine; None: a local cluster of "
        "dask_workers processes, or this process alone when that is 0.",
    )
    dask_workers: int = Field(
        0, ge=0, description="Processes of a local Dask cluster when no address is set; 0: none."
    )
    dask_tls_ca_file: Path | None = Field(None, description="CA certificate of the Dask cluster.")
    dask_tls_cert: Path | None = Field(None, description="This client's certificate (PEM).")
    dask_tls_key: Path | None = Field(None, description="This client's private key (PEM).")
    feature_shards: int | None = Field(
        None,
        ge=1,
        description="Shards each entity's history is split into on Dask (by key hash); None: "
        "one per million rows, so a shard stays small however long the history.",
    )
    simulator_seed: int = 0

    model_kind: ModelKind = "hist_gradient_boosting"
    seed: int = 0
    warmup_days: int = Field(30, ge=0, description="History that only fills feature windows.")
    train_days: int = Field(28, ge=1)
    train_max_rows: int | None = Field(
        None,
        ge=1,
        description="Training rows at most: every fraud, genuine rows sampled by event-id "
        "hash at one share on every day; None: the whole window.",
    )
    label_delay_days: int = Field(7, ge=0, description="Labels younger than this are unknown.")
    test_days: int = Field(7, ge=1)
    train_start: dt.date | None = Field(
        None, description="First training day; None ends the test window on the last data day."
    )

    test_end: dt.date | None = Field(
        None, description="Last test day of a retrain; training shrinks after the warm-up."
    )

    alert_rate: float = Field(
        0.01, gt=0, lt=1, description="Alert budget: share of transactions that raise an alert."
    )
    operating_fpr: float = Field(0.01, gt=0, lt=1, description="FPR for recall at a fixed FPR.")
    card_precision_k: int = Field(100, ge=1, description="k of Card Precision@k (cards per day).")
    gate_ap_tolerance: float = Field(
        0.01, ge=0, description="Challenger AP may trail the champion's by at most this much."
    )
    gate_recall_tolerance: float = Field(
        0.0, ge=0, description="Challenger recall at the operating FPR may trail by at most this."
    )
    gate_min_average_precision: float = Field(
        0.2, ge=0, le=1, description="Absolute minimum AP for a first champion."
    )
    gate_min_roc_auc: float = Field(
        0.7, ge=0, le=1, description="Absolute minimum ROC AUC for a first champion."
    )
    gate_slice_recall_tolerance: float = Field(
        0.10,
        ge=0,
        le=1,
        description="In a gated slice's segment, challenger recall may trail by at most this.",
    )
    gate_slice_fpr_tolerance: float = Field(
        0.01,
        ge=0,
        le=1,
        description="In a gated slice's segment, challenger FPR may exceed by at most this.",
    )
    gate_slice_min_frauds: int = Field(
        30, ge=1, description="Frauds a segment needs before the slice gate judges it."
    )
    promotion: Literal["direct", "staged"] = Field(
        "direct",
        description="After the offline gate passes: `direct` moves @champion at once; `staged` "
        "puts the version in shadow (or canary) as @challenger for the online gate to judge.",
    )
    staged_mode: Literal["shadow", "canary"] = Field(
        "shadow", description="The stage a staged challenger enters (`fraudops stage` moves it)."
    )
    canary_share: float = Field(
        0.1, gt=0, lt=1, description="Share of entities (sticky by key hash) a canary decides."
    )
    online_gate_ap_tolerance: float = Field(
        0.02, ge=0, le=1, description="Online gate: challenger AP may trail by at most this."
    )
    online_gate_recall_tolerance: float = Field(
        0.05, ge=0, le=1, description="Online gate: recall at the operating FPR may trail by this."
    )
    online_gate_min_frauds: int = Field(
        30, ge=1, description="Labelled frauds scored by both models before the online gate judges."
    )
    online_gate_max_days: int = Field(
        14,
        ge=1,
        description="Days in shadow/canary after which an undecided challenger is rejected.",
    )
    online_gate_confidence: float = Field(
        0.9, gt=0, lt=1, description="Level of the paired bootstrap's confidence intervals."
    )
    online_gate_resamples: int = Field(
        500, ge=50, description="Paired bootstrap resamples of the online gate."
    )
    guardrail_min_requests: int = Field(
        200, ge=10, description="Requests per role a canary guardrail waits for before judging."
    )
    guardrail_alert_rate_ratio: float = Field(
        3.0,
        gt=1,
        description="Canary rolls back when its alert rate exceeds the champion's x this.",
    )
    guardrail_error_rate: float = Field(
        0.01, ge=0, lt=1, description="Canary rolls back when this share of its scorings fail."
    )
    guardrail_p99_ratio: float = Field(
        3.0,
        gt=1,
        description="Canary rolls back when its p99 latency exceeds the champion's x this.",
    )

    reference_rows: int = Field(
        50_000, ge=100, description="Training rows kept (stratified by day) as drift reference."
    )
    monitor_window_days: int = Field(7, ge=1, description="Current window of the drift job.")
    drift_rule: Literal["risk", "share"] = Field(
        "risk",
        description="When a full window drifted: `risk` (importance-weighted features beyond "
        "thresholds calibrated on the reference, or the score beyond its threshold) or `share` "
        "(the former rule: more than drift_share_threshold of the columns beyond 0.1).",
    )
    drift_risk_threshold: float = Field(
        0.25, gt=0, le=1, description="Risk rule: share of the importance that must drift."
    )
    drift_noise_margin: float = Field(
        1.5, ge=1, description="Risk rule: a column's threshold is this x its clean-window noise."
    )
    monitor_max_rows: int = Field(
        20_000, ge=100, description="Current rows compared at most (sampled by day)."
    )
    drift_share_threshold: float = Field(
        0.15,
        gt=0,
        le=1,
        description="A window drifts when more than this share of the 19 columns drifted (3+).",
    )
    drift_windows_needed: int = Field(2, ge=1, description="N: drifted windows among the last M.")
    drift_windows_considered: int = Field(3, ge=1, description="M: windows considered.")
    monitor_min_rows: int = Field(1_000, ge=1, description="Fewer current rows: no decision.")
    retrain_cooldown_days: int = Field(
        7, ge=0, description="Days (of transaction time) after a retrain with no new retrain."
    )
    performance_drop: float = Field(
        0.1, gt=0, le=1, description="Retrain when labelled AP trails the champion's by this."
    )
    min_labelled_rows: int = Field(2_000, ge=1, description="Fewest labels for the AP check.")
    reports_keep: int = Field(
        40, ge=1, description="HTML reports kept (older ones pruned; decisions JSON kept)."
    )
    ui_port: int = Field(8000, ge=1, le=65535, description="Evidently UI port.")
    retrain_deployment: str | None = Field(
        None, description="Prefect deployment to retrain with (run_deployment); None: subflow."
    )
    retrain_event: bool = Field(
        False,
        description="Team mode: a retrain decision emits the Prefect event "
        "fraudops.drift.detected (figures in its payload); the trigger of the deployment "
        "train-on-drift (pipelines/prefect.yaml) trains. False: subflow or retrain_deployment.",
    )

    serve_host: str = Field("127.0.0.1", description="Address the service binds to.")
    serve_port: int = Field(3000, ge=1, le=65535)
    serve_workers: int = Field(
        1, ge=1, description="Service processes; more than 1 needs the Redis feature store."
    )
    feature_store: str = Field(
        "memory", description="Online feature state: 'memory' or a redis:// URL (shared)."
    )
    online_history_end: dt.date | None = Field(
        None, description="Last history day fed into the online state; None: the data's last."
    )
    max_event_skew_seconds: int = Field(
        86_400,
        ge=0,
        description="How far a transaction may be dated ahead of the online state's watermark "
        "(newest accepted time), on top of the wall time since it moved; further: 422.",
    )
    bundled_model: str | None = Field(
        None,
        description="BentoML model tag served when the registry has no @champion or is down "
        "at start; set inside a bento by `fraudops build-bento`.",
    )
    poll_interval_seconds: float = Field(
        10.0, gt=0, description="How often the service checks whether @champion moved."
    )
    max_batch_rows: int = Field(10_000, ge=1, description="Rows per /score_batch at most.")
    reason_codes: int = Field(
        3,
        ge=0,
        le=20,
        description="Reason codes per alert (top contributions); 0: none, even on request.",
    )
    max_body_bytes: int = Field(8 * 2**20, ge=1024, description="Request body size limit.")
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token required on scoring when set (and on /feedback too unless "
        "label_token is set); required on a non-loopback bind.",
    )
    label_token: SecretStr | None = Field(
        None,
        description="Bearer token of /feedback alone (labels are a separate scope from "
        "scoring); required, and different from api_token, on a non-loopback bind.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host header values the service answers; empty: the loopback names on a "
        "loopback bind (no DNS rebinding), any host otherwise.",
    )
    max_feedback_rows: int = Field(10_000, ge=1, description="Labels per /feedback at most.")
    hash_secret: SecretStr | None = Field(
        None, description="Key of the id hashes in logs; default: a random key in <home>/secrets."
    )
    model_signing_key: SecretStr | None = Field(
        None,
        description="HMAC key (at least 32 characters) with which training signs each "
        "version's model files and card, and with which the service, batch scoring and the "
        "gate verify them before loading; required with a remote (http) registry.",
    )
    log_flush_seconds: float = Field(
        1.0, gt=0, description="Longest a logged row waits before it is written."
    )
    freeze_heap: bool = Field(
        True,
        description="The service freezes what it holds after warm-up and after each model "
        "swap (gc.freeze), so the cycle collector's full collections skip it: shorter pauses "
        "(fraudops.serving.heap).",
    )
    gc_young_threshold: int = Field(
        50_000,
        ge=0,
        description="Container allocations between the cycle collector's young collections in "
        "the service (CPython's default 700 when 0): a batch's short-lived objects die before "
        "they are promoted (fraudops.serving.heap).",
    )
    log_max_buffered_rows: int = Field(
        200_000, ge=1, description="Log rows held while writes fail; more are counted dropped."
    )

    case_store_url: SecretStr | None = Field(
        None,
        description="Case store (SQLAlchemy URL, secret: it may hold a password): default "
        "sqlite:///<home>/cases.db; a postgresql:// URL in team mode (shared by the service "
        "replicas and the console).",
    )
    open_cases: bool = Field(True, description="Every alert of the service opens a case.")
    review_capacity: int = Field(
        200, ge=0, description="Cases the analysts review per day: the console's queue length."
    )
    case_lock_minutes: int = Field(
        30, ge=1, le=24 * 60, description="How long a claim holds a case for one analyst."
    )
    console_host: str = Field("127.0.0.1", description="Address the analyst console binds to.")
    console_port: int = Field(8300, ge=1, le=65535)
    console_secret: SecretStr | None = Field(
        None,
        description="Key of the console's session cookies; default: a random key in "
        "<home>/secrets; required on a non-loopback bind.",
    )
    label_service_url: str | None = Field(
        None,
        description="Service whose /feedback receives the analysts' labels; default "
        "http://<serve_host>:<serve_port>.",
    )

    _spec: DatasetSpec = PrivateAttr()

    @field_validator(
        "api_token", "label_token", "hash_secret", "model_signing_key", "console_secret"
    )
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().lower().startswith(PLACEHOLDER):
            raise ValueError(
                f"starts with {PLACEHOLDER!r}: it is the example file's placeholder, not a secret"
            )
        return value

    @field_validator("case_store_url")
    @classmethod
    def _no_placeholder_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and PLACEHOLDER in value.get_secret_value().lower():
            raise ValueError(f"holds {PLACEHOLDER!r}: the example file's placeholder password")
        return value

    @field_validator("model_signing_key")
    @classmethod
    def _strong_signing_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SIGNING_KEY_CHARS:
            raise ValueError(
                f"must have at least {MIN_SIGNING_KEY_CHARS} characters "
                "(e.g. the output of `openssl rand -hex 32`)"
            )
        return value

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _read_spec(self) -> Settings:
        """Read the dataset spec once; the spec's label delay unless the setting is given.

        A spec error becomes a validation error of ``dataset_spec`` naming the file and key.
        """
        try:
            spec = load_spec(self.dataset_spec)
        except SpecError as exc:
            raise ValueError(f"dataset_spec: {exc}") from None
        if spec.label.delay % 86_400:
            raise ValueError(
                f"dataset_spec: label.delay {format_duration(spec.label.delay)} is not a whole "
                "number of days (time-based splits and the label-delay gap work in days)"
            )
        if "label_delay_days" in self.model_fields_set:
            label = spec.label.model_copy(update={"delay": self.label_delay_days * 86_400})
            spec = spec.model_copy(update={"label": label})
        else:
            self.label_delay_days = spec.label.delay // 86_400  # whole days (the spec says)
        self._spec = spec
        return self

    @model_validator(mode="after")
    def _dask_authenticated(self) -> Settings:
        """Fail closed: a Dask scheduler runs whatever its clients send, so a team (remote
        registry) reaches one only over TLS with a client certificate, and TLS settings come
        whole."""
        tls = (self.dask_tls_ca_file, self.dask_tls_cert, self.dask_tls_key)
        if any(tls) and not all(tls):
            raise ValueError(
                "dask_tls_ca_file, dask_tls_cert and dask_tls_key: set all three or none"
            )
        address = self.dask_address
        if address is None:
            return self
        scheme = address.split("://", 1)[0] if "://" in address else ""
        if scheme not in {"tcp", "tls"}:
            raise ValueError(f"dask_address {address!r}: use tls://host:port (or tcp://)")
        if scheme == "tls" and not all(tls):
            raise ValueError(
                "dask_address is tls://: set dask_tls_ca_file, dask_tls_cert and dask_tls_key"
            )
        if scheme == "tcp" and self.remote_registry:
            raise ValueError(
                "dask_address: a tcp:// scheduler authenticates no one and runs any client's "
                "code; with a registry server (team mode) use tls:// with a client certificate"
            )
        return self

    @property
    def spec(self) -> DatasetSpec:
        """The dataset spec these settings were built with (label delay applied)."""
        return self._spec

    @property
    def resolved_tracking_uri(self) -> str:
        """The tracking URI, absolute: MLflow 3 would otherwise use ``./mlflow.db`` of the cwd."""
        return self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def remote_registry(self) -> bool:
        """The registry is a tracking server (``http(s)://``) that others may write to."""
        return self.resolved_tracking_uri.startswith(("http://", "https://"))

    @property
    def signing_key(self) -> bytes | None:
        """``model_signing_key`` as bytes (None when unset)."""
        key = self.model_signing_key
        return key.get_secret_value().encode() if key is not None else None

    @property
    def resolved_artifact_location(self) -> str | None:
        """Artifact root used when the experiment is first created.

        None with a tracking server (``http(s)://``): the server's own default applies, which
        is ``mlflow-artifacts:/`` (proxied to its artifact store) under ``--serve-artifacts``.
        """
        if self.artifact_location:
            return self.artifact_location
        if self.resolved_tracking_uri.startswith(("http://", "https://")):
            return None
        return (self.home / "mlartifacts").as_uri()

    @property
    def prefect_home(self) -> Path:
        """Prefect's own state (ephemeral API database) under the home folder."""
        return self.home / "prefect"

    @property
    def prediction_log_dir(self) -> Path:
        """Parquet prediction log, partitioned by day (written by the service)."""
        return self.home / "predictions"

    @property
    def challenger_log_dir(self) -> Path:
        """Parquet log of the challenger's scores beside the champion's, one row per event it
        scored in shadow or canary (the online gate's paired evidence), partitioned by day."""
        return self.home / "challenger"

    @property
    def label_log_dir(self) -> Path:
        """Parquet label store fed by ``/feedback``, partitioned by day."""
        return self.home / "labels"

    @property
    def reports_dir(self) -> Path:
        """Drift reports (written by the monitoring jobs)."""
        return self.home / "reports"

    @property
    def resolved_case_store_url(self) -> str:
        """The case store's URL: ``case_store_url``, or SQLite under the home."""
        if self.case_store_url is not None:
            return self.case_store_url.get_secret_value()
        return f"sqlite:///{self.home / 'cases.db'}"

    @property
    def resolved_label_service_url(self) -> str:
        """Where the console sends labels: ``label_service_url`` or the local service."""
        return self.label_service_url or f"http://{self.serve_host}:{self.serve_port}"

    def ensure_home(self) -> Path:
        """Create the home folder (and nothing else); return it."""
        self.home.mkdir(parents=True, exist_ok=True)
        return self.home
