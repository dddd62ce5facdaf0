"""The slice gate in the training flow: a challenger as good overall but blind to small
amounts is kept out when the spec gates its amount band, and promoted when it does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from fraudops import training
from fraudops.settings import Settings
from fraudops.spec import load_spec, spec_yaml
from pipelines.training import run_training

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class BlindBelow(ClassifierMixin, BaseEstimator):
    """A fitted pipeline whose fraud score is 0 for amounts under ``below`` (a constructed
    challenger failing one segment)."""

    def __init__(self, pipeline=None, below: float = 50.0):
        self.pipeline = pipeline
        self.below = below

    def predict_proba(self, X):
        proba = self.pipeline.predict_proba(X).copy()
        small = np.asarray(X["TX_AMOUNT"]) < self.below
        proba[small] = [1.0, 0.0]
        return proba

    @property
    def named_steps(self):
        return {"model": self.pipeline.named_steps["model"]}


def _spec_gating_amounts(tmp_path: Path) -> Path:
    text = spec_yaml(load_spec("handbook"))
    assert text.count("gate: false") == 2  # amount_band first, then card_age
    path = tmp_path / "gated.yaml"
    path.write_text(text.replace("gate: false", "gate: true", 1))
    return path


@pytest.fixture
def with_champion(tmp_path, history) -> Settings:
    settings = Settings(home=tmp_path / "home", data_path=history)
    assert run_training(settings).promoted
    return settings


@pytest.mark.parametrize("gated", [True, False])
def test_a_challenger_blind_to_small_amounts_is_stopped_by_the_gated_slice_only(
    with_champion, tmp_path, monkeypatch, gated
):
    real_fit = training.fit_challenger
    monkeypatch.setattr(training, "fit_challenger", lambda *a, **k: BlindBelow(real_fit(*a, **k)))
    # a small holdout (about 20 frauds): judge segments from 3 frauds
    lenient = {
        "gate_ap_tolerance": 1.0,
        "gate_recall_tolerance": 1.0,
        "gate_slice_min_frauds": 3,
        "train_days": 21,
    }
    if gated:
        lenient["dataset_spec"] = str(_spec_gating_amounts(tmp_path))
    settings = Settings(**{**with_champion.model_dump(), **lenient})
    result = run_training(settings)

    slices = result.gate["extra"]["slices"]
    assert slices["gated"] == (["amount_band"] if gated else [])
    blind = [
        f
        for f in slices["challenger"]
        if f["slice"] == "amount_band" and f["segment"] in ("< 20", "20 – 50")
    ]
    assert blind and all(f["alerts"] == 0 for f in blind)
    failed = [r for r in result.reasons if r.startswith("slice amount_band=") and "tolerance" in r]
    if gated:
        assert not result.promoted
        # its alert budget moves to larger amounts: false positives rise in one band
        assert failed and all("vs champion" in r for r in failed), result.reasons
    else:
        assert result.promoted and not failed, result.reasons
