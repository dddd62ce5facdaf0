"""The champion/challenger gate: promote the challenger only if it is at least as good.

Both models are scored on the same holdout. Rule (``../shared/docs/design.md``): the challenger's
average precision may trail the champion's by at most ``ap_tolerance`` and its recall at the
operating false-positive rate by at most ``recall_tolerance``. With no champion yet the
challenger must clear absolute minimums of average precision and ROC AUC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fraudops.model.evaluation import Metrics


@dataclass(frozen=True)
class GateRule:
    """Tolerances and minimums, all in [0, 1]."""

    ap_tolerance: float = 0.01
    recall_tolerance: float = 0.0
    min_average_precision: float = 0.2
    min_roc_auc: float = 0.7


@dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate: whether to promote, every reason, and the figures compared."""

    promote: bool
    reasons: list[str]
    rule: GateRule
    challenger: dict[str, float]
    champion: dict[str, float] | None = None
    champion_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def summary(self) -> str:
        verdict = "promote" if self.promote else "keep champion"
        return f"{verdict}: " + "; ".join(self.reasons)


def decide(
    challenger: Metrics,
    champion: Metrics | None,
    rule: GateRule,
    champion_version: str | None = None,
    slices: tuple[list[str], list[str]] | None = None,
) -> GateDecision:
    """Apply ``rule`` to the two models' holdout metrics (``champion`` None: no champion yet).

    Args:
        slices: the slice gate's (failures, notes) (:func:`fraudops.model.slices.
            compare_slices`); any failure keeps the champion and is listed in the reasons.
    """
    reasons: list[str] = []
    passed = True
    if champion is None:
        minimums = [
            ("average precision", challenger.average_precision, rule.min_average_precision),
            ("ROC AUC", challenger.roc_auc, rule.min_roc_auc),
        ]
        for name, value, minimum in minimums:
            ok = value >= minimum
            passed &= ok
            reasons.append(
                f"first model: {name} {value:.4f} {'>=' if ok else '<'} minimum {minimum:.4f}"
            )
    else:
        checks = [
            (
                "average precision",
                challenger.average_precision,
                champion.average_precision,
                rule.ap_tolerance,
            ),
            (
                "recall at operating FPR",
                challenger.recall_at_fpr,
                champion.recall_at_fpr,
                rule.recall_tolerance,
            ),
        ]
        for name, new, old, tolerance in checks:
            ok = new >= old - tolerance
            passed &= ok
            reasons.append(
                f"{name} {new:.4f} vs champion {old:.4f} "
                f"({'within' if ok else 'below'} tolerance {tolerance:.4f})"
            )
    if slices is not None:
        failures, notes = slices
        passed &= not failures
        reasons.extend(failures or ["no gated slice lost recall or raised false positives"])
        reasons.extend(notes)
    return GateDecision(
        promote=bool(passed),
        reasons=reasons,
        rule=rule,
        challenger=challenger.as_dict(),
        champion=None if champion is None else champion.as_dict(),
        champion_version=champion_version,
    )
