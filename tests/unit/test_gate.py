import pytest

from fraudops.model.evaluation import Metrics
from fraudops.model.gate import GateRule, decide

pytestmark = pytest.mark.unit
RULE = GateRule(ap_tolerance=0.01, recall_tolerance=0.0, min_average_precision=0.2, min_roc_auc=0.7)


def metrics(ap: float, recall: float = 0.5, auc: float = 0.9) -> Metrics:
    return Metrics(ap, auc, 0.3, recall, 0.5, 0.5, 0.5, 1000, 10)


def test_gate_keeps_champion_when_challenger_pr_auc_is_lower():
    decision = decide(metrics(0.60), metrics(0.70), RULE, champion_version="3")
    assert not decision.promote
    assert "average precision 0.6000 vs champion 0.7000 (below" in decision.summary


def test_gate_promotes_challenger_that_is_better_on_both_figures():
    assert decide(metrics(0.75, 0.6), metrics(0.70, 0.5), RULE).promote


def test_gate_allows_average_precision_within_tolerance():
    assert decide(metrics(0.695, 0.5), metrics(0.70, 0.5), RULE).promote


def test_gate_keeps_champion_when_recall_at_operating_fpr_drops():
    decision = decide(metrics(0.80, 0.49), metrics(0.70, 0.50), RULE)
    assert not decision.promote
    assert "recall at operating FPR 0.4900 vs champion 0.5000 (below" in decision.summary


def test_first_model_must_clear_absolute_minimums():
    assert decide(metrics(0.25, auc=0.75), None, RULE).promote
    assert not decide(metrics(0.15, auc=0.75), None, RULE).promote
    low_auc = decide(metrics(0.5, auc=0.65), None, RULE)
    assert not low_auc.promote and "ROC AUC 0.6500 < minimum" in low_auc.summary


def test_decision_records_both_models_figures():
    decision = decide(metrics(0.8), metrics(0.7), RULE, champion_version="2").as_dict()
    assert decision["challenger"]["average_precision"] == 0.8
    assert decision["champion"]["average_precision"] == 0.7
    assert decision["champion_version"] == "2"
