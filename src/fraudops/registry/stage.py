"""Staged promotion: where a version stands between the offline gate and ``@champion``.

A version that passed the offline gate under ``promotion: staged`` becomes ``@challenger`` in
a live stage, ``shadow`` (it scores every request beside the champion, the champion decides)
or ``canary`` (it decides for a share of entities). The online gate
(:mod:`fraudops.model.online_gate`) then promotes it to ``@champion`` or rejects it; a canary
guardrail breach rolls it back. Every stage is a :class:`Stage` kept in the version's tags
(``stage``, ``stage_since``...: the service reads them at each poll, so a stage change needs
no restart), as a JSON artifact of its run (``stage/<time>-<stage>.json``, with the evidence)
and as an event of the audit log.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from mlflow import MlflowClient

from fraudops import registry
from fraudops.registry import audit

SHADOW, CANARY = "shadow", "canary"
#: Stages in which the service scores with the challenger.
LIVE_STAGES = (SHADOW, CANARY)
PROMOTED, REJECTED, ROLLED_BACK = "promoted", "rejected", "rolled_back"
#: Every stage a version can be in, live or concluded.
STAGES = (*LIVE_STAGES, PROMOTED, REJECTED, ROLLED_BACK)
#: Prefix of the stage's tags on a version.
TAG = "stage"
#: Longest tag value kept of a reason (MLflow limits tag values).
MAX_REASON_CHARS = 1000


class StageError(registry.RegistryError):
    """A stage change that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Stage:
    """One version's stage.

    Attributes:
        stage: one of :data:`STAGES`.
        since: when it entered the stage (aware UTC).
        champion_version: the champion it is judged against (None: none then).
        share: the share of entities a canary decides for, in (0, 1); 0.0 in other stages.
        reason: why it entered the stage (the gate's verdict, an operator's words).
        evidence: the figures behind the decision (kept in the JSON artifact, not in tags).
    """

    stage: str
    since: dt.datetime
    champion_version: str | None = None
    share: float = 0.0
    reason: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise StageError(f"stage {self.stage!r} is not one of {', '.join(STAGES)}")
        if self.stage == CANARY and not (math.isfinite(self.share) and 0.0 < self.share < 1.0):
            raise StageError(f"canary share {self.share!r} is not in (0, 1)")

    @property
    def live(self) -> bool:
        """The service scores with the version (shadow or canary)."""
        return self.stage in LIVE_STAGES

    def to_tags(self) -> dict[str, str]:
        """The stage as version tags (strings)."""
        return {
            TAG: self.stage,
            f"{TAG}_since": self.since.isoformat(timespec="seconds"),
            f"{TAG}_champion": self.champion_version or "",
            f"{TAG}_share": repr(self.share),
            f"{TAG}_reason": self.reason[:MAX_REASON_CHARS],
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Stage | None:
        """The stage a version's tags record; None when it never entered one.

        Raises:
            StageError: the tags are not a stage (naming the tag).
        """
        if TAG not in tags:
            return None
        try:
            since = dt.datetime.fromisoformat(tags[f"{TAG}_since"])
            share = float(tags.get(f"{TAG}_share", "0.0"))
        except (KeyError, ValueError) as exc:
            raise StageError(f"tag {TAG}_since or {TAG}_share unreadable: {exc}") from None
        return cls(
            stage=tags[TAG],
            since=since if since.tzinfo else since.replace(tzinfo=dt.UTC),
            champion_version=tags.get(f"{TAG}_champion") or None,
            share=share,
            reason=tags.get(f"{TAG}_reason", ""),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``since`` as ISO text)."""
        return {**asdict(self), "since": self.since.isoformat()}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def write(client: MlflowClient, name: str, version: str, stage: Stage) -> None:
    """Record ``stage`` on the version: its JSON (with the evidence) on the version's run
    first, then its tags, then an audit event.

    MLflow sets one tag per call, so the ``stage`` tag is written last: a reader that sees
    the new stage also sees its start, champion, share and reason (written before it was
    seen with the previous stage's reason under load).
    """
    found = registry.require_version(client, name, version)
    stamp = stage.since.strftime("%Y%m%dT%H%M%S")
    if found.run_id:
        client.log_dict(found.run_id, stage.as_dict(), f"stage/{stamp}-{stage.stage}.json")
    tags = stage.to_tags()
    details = {key: value for key, value in tags.items() if key != TAG}
    registry.set_version_tags(client, name, version, {**details, TAG: tags[TAG]})
    audit.record(
        client, name, f"stage-{stage.stage}", version, stage.reason, stage.champion_version
    )


def current(client: MlflowClient, name: str) -> tuple[str, Stage] | None:
    """(version, stage) of ``@challenger`` when it is in a live stage, else None."""
    version = registry.version_by_alias(client, name, registry.CHALLENGER)
    if version is None:
        return None
    stage = Stage.from_tags(dict(version.tags))
    if stage is None or not stage.live:
        return None
    return str(version.version), stage


def enter(
    client: MlflowClient,
    name: str,
    version: str,
    stage: str,
    *,
    reason: str,
    share: float = 0.0,
) -> Stage:
    """Put ``version`` in a live stage as ``@challenger``, judged against today's champion.

    Moving a live challenger from shadow to canary (or back) keeps its start time and
    champion: the evidence gathered so far still counts. Another live challenger is concluded
    ``rejected`` (superseded) first: one challenger at a time.

    Raises:
        StageError: ``stage`` is not live, the version is ``@champion``, or the share is
            not in (0, 1) for a canary.
        RegistryError: the version does not exist.
    """
    if stage not in LIVE_STAGES:
        raise StageError(f"a challenger enters {' or '.join(LIVE_STAGES)}, not {stage!r}")
    found = registry.require_version(client, name, version)
    champion = registry.version_by_alias(client, name, registry.CHAMPION)
    champion_version = None if champion is None else str(champion.version)
    if champion_version == str(version):
        raise StageError(f"version {version} is @champion already")
    live = current(client, name)
    if live is not None and live[0] != str(version):  # one challenger at a time
        conclude(client, name, live[0], REJECTED, reason=f"superseded by version {version}")
    before = Stage.from_tags(dict(found.tags))
    keeps = before is not None and before.live and before.champion_version == champion_version
    entered = Stage(
        stage=stage,
        since=before.since if keeps and before is not None else _now(),
        champion_version=champion_version,
        share=share if stage == CANARY else 0.0,
        reason=reason,
    )
    write(client, name, version, entered)
    client.set_registered_model_alias(name, registry.CHALLENGER, str(version))
    return entered


def conclude(
    client: MlflowClient,
    name: str,
    version: str,
    outcome: str,
    *,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> Stage:
    """End a live stage: ``promoted`` (``@champion`` moves, compare-and-set against the
    champion it was judged against), ``rejected`` or ``rolled_back`` (the service stops using
    it at its next poll). ``@challenger`` stays on the version: it names the last candidate.

    Raises:
        StageError: ``outcome`` is not a concluding stage, or the version is not live.
        ChampionMoved: promotion asked but ``@champion`` moved since the stage began.
    """
    if outcome not in (PROMOTED, REJECTED, ROLLED_BACK):
        raise StageError(f"a stage ends {PROMOTED}, {REJECTED} or {ROLLED_BACK}, not {outcome!r}")
    found = registry.require_version(client, name, version)
    before = Stage.from_tags(dict(found.tags))
    if before is None or not before.live:
        was = "no stage" if before is None else before.stage
        raise StageError(f"version {version} is not in shadow or canary ({was})")
    if outcome == PROMOTED:
        registry.promote(
            client,
            name,
            version,
            reason=f"online gate: {reason}",
            expected=before.champion_version,
        )
    ended = Stage(
        stage=outcome,
        since=_now(),
        champion_version=before.champion_version,
        reason=reason,
        evidence=dict(evidence or {}),
    )
    write(client, name, version, ended)
    return ended
