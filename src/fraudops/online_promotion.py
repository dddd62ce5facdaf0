"""The online gate's step: judge ``@challenger`` in shadow or canary on its paired evidence,
then promote it, reject it, or wait.

Evidence: the challenger log's rows of this challenger against the champion it was staged
against, since its stage began (both scores of each event,
:class:`fraudops.logs.records.ChallengerRecord`), joined with the labels that have arrived
(:func:`fraudops.cases.labels.resolve_labels`: a chargeback wins over an analyst's decision),
for events at least one label delay older than the newest label: before that, the labels that
arrived are the analysts' decisions on the champion's own alerts, a sample the champion chose
that would judge the challenger on the champion's terms. The label delay is waited out, not
guessed. Every run appends its decision, with its figures, to ``reports/online_gate.jsonl``; a
promotion or rejection is also the version's stage record (:mod:`fraudops.registry.stage`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd

from fraudops import registry
from fraudops.cases.labels import resolve_labels
from fraudops.logs.jsonl import append_jsonl, read_jsonl
from fraudops.logs.predlog import read_log
from fraudops.logs.records import (
    CHALLENGER_SCORE,
    CHAMPION_SCORE,
    LABEL_TIME,
    LABEL_VALUE,
    LOG_ID,
    LOG_TIME,
    entity_log_column,
)
from fraudops.model import online_gate as og
from fraudops.registry import stage as stages
from fraudops.registry.card import ModelCard
from fraudops.settings import Settings

logger = logging.getLogger(__name__)

#: The online gate's decisions, one JSON line per run, under the reports folder.
DECISIONS_FILE = "online_gate.jsonl"


@dataclass(frozen=True)
class OnlineGateRun:
    """One run of the online gate: the challenger judged, its stage, the decision, and what was
    done (``promoted``, ``rejected``, ``waiting``, or ``stale``: the champion moved)."""

    version: str
    stage: stages.Stage
    decision: og.OnlineDecision
    outcome: str
    at: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "stage": self.stage.as_dict(),
            "decision": self.decision.as_dict(),
            "outcome": self.outcome,
            "at": self.at,
        }


def rule_of(settings: Settings) -> og.OnlineRule:
    """The online gate's rule from the settings (``online_gate_*``, ``operating_fpr``,
    ``card_precision_k``, ``seed``)."""
    return og.OnlineRule(
        ap_tolerance=settings.online_gate_ap_tolerance,
        recall_tolerance=settings.online_gate_recall_tolerance,
        min_frauds=settings.online_gate_min_frauds,
        max_days=settings.online_gate_max_days,
        confidence=settings.online_gate_confidence,
        resamples=settings.online_gate_resamples,
        fpr=settings.operating_fpr,
        k=settings.card_precision_k,
        seed=settings.seed,
    )


def paired_evidence(settings: Settings, version: str, stage: stages.Stage) -> pd.DataFrame:
    """The labelled events both models scored in this stage (columns of
    :func:`fraudops.model.online_gate.paired_differences`); empty when there are none."""
    empty = pd.DataFrame(columns=[og.CHAMPION_SCORE, og.CHALLENGER_SCORE, og.LABEL, og.TIME])
    log = read_log(settings.challenger_log_dir)
    if log.empty:
        return empty
    since = stage.since.astimezone(dt.UTC).replace(tzinfo=None)
    mine = log[
        (log["challenger_version"] == version)
        & (log["champion_version"] == (stage.champion_version or ""))
        & (pd.to_datetime(log["scored_at"]) >= since)
    ].drop_duplicates(LOG_ID, keep="last")
    if mine.empty:
        return empty
    # a label arrives after its event: label days before the first event cannot hold one
    labels = read_log(settings.label_log_dir, pd.Timestamp(mine[LOG_TIME].min()).date())
    if labels.empty:
        return empty
    known = resolve_labels(labels)[LABEL_VALUE]
    # only events whose labels are complete: before the label delay, the labels that arrived
    # are the analysts' decisions on the champion's own alerts, a sample the champion chose
    complete = pd.Timestamp(labels[LABEL_TIME].max()) - pd.Timedelta(days=settings.label_delay_days)
    mine = mine[pd.to_datetime(mine[LOG_TIME]) < complete]
    mine = mine.assign(**{og.LABEL: mine[LOG_ID].map(known)}).dropna(subset=[og.LABEL])
    ranked = settings.spec.evaluation.precision_at_k_entity
    column = LOG_ID if ranked is None else entity_log_column(settings.spec.entity(ranked))
    return pd.DataFrame(
        {
            og.CHAMPION_SCORE: mine[CHAMPION_SCORE].astype(float),
            og.CHALLENGER_SCORE: mine[CHALLENGER_SCORE].astype(float),
            og.LABEL: mine[og.LABEL].astype(int),
            og.TIME: pd.to_datetime(mine[LOG_TIME]),
            og.ENTITY: mine[column],
        }
    ).reset_index(drop=True)


def _threshold(client: Any, name: str, version: str) -> float:
    return ModelCard.from_tags(dict(client.get_model_version(name, version).tags)).threshold


def online_gate(settings: Settings, now: dt.datetime | None = None) -> OnlineGateRun | None:
    """Judge ``@challenger`` if it is in shadow or canary, and act on the verdict.

    Args:
        now: the time of the run (aware UTC; default now): measures the stage's length.

    Returns:
        What was judged and done; None when no challenger is in a live stage.

    Raises:
        RegistryError: the registry cannot be read; nothing was moved.
    """
    registry.configure_mlflow(settings)
    client = registry.client_for(settings)
    found = stages.current(client, settings.model_name)
    if found is None:
        return None
    version, stage = found
    now = now or dt.datetime.now(dt.UTC)
    evidence = paired_evidence(settings, version, stage)
    thresholds = (
        _threshold(client, settings.model_name, stage.champion_version)
        if stage.champion_version
        else 0.5,
        _threshold(client, settings.model_name, version),
    )
    stage_days = (now - stage.since).total_seconds() / 86_400
    decision = og.judge(evidence, thresholds, rule_of(settings), stage_days)
    figures = decision.as_dict()
    outcome = "waiting"
    if decision.verdict == og.PROMOTE:
        try:
            stages.conclude(
                client,
                settings.model_name,
                version,
                stages.PROMOTED,
                reason=decision.summary,
                evidence=figures,
            )
            outcome = "promoted"
        except registry.ChampionMoved as exc:
            reason = f"{exc}; {decision.summary}"
            stages.conclude(client, settings.model_name, version, stages.REJECTED, reason=reason)
            outcome = "stale"
    elif decision.verdict == og.REJECT:
        stages.conclude(
            client,
            settings.model_name,
            version,
            stages.REJECTED,
            reason=decision.summary,
            evidence=figures,
        )
        outcome = "rejected"
    run = OnlineGateRun(version, stage, decision, outcome, now.isoformat())
    _append(settings, run)
    logger.info("online gate, v%s in %s: %s (%s)", version, stage.stage, outcome, decision.summary)
    return run


def _append(settings: Settings, run: OnlineGateRun) -> None:
    append_jsonl(settings.reports_dir / DECISIONS_FILE, run.as_dict())


def read_runs(settings: Settings) -> list[dict[str, Any]]:
    """Every recorded online gate run, oldest first."""
    return read_jsonl(settings.reports_dir / DECISIONS_FILE)
