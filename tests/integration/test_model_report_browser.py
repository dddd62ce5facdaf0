"""A person opens a version's model report in a browser (Playwright driving Debian's Chromium):
the curves are drawn, the confusion matrices and the slices are there, for both shipped specs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from fraudops import registry
from fraudops.report_step import REPORT_TAG
from fraudops.settings import Settings
from pipelines.training import run_training

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
#: Plotly's first two trace colours (#636efa, #ef553b): the challenger's and champion's curves
#: (the champion's is drawn over the challenger's where they coincide).
CURVE_RGB = np.array([[99, 110, 250], [239, 85, 59]])


def _cards_history():
    spec = importlib.util.spec_from_file_location("fuzz_api_h", ROOT / "benchmarks/fuzz_api.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.simulated_history("cards"), module.training_settings


def _report_path(settings: Settings, version: str) -> Path:
    client = registry.client_for(settings)
    uri = client.get_model_version(settings.model_name, version).tags[REPORT_TAG]
    run_id, artifact = uri.removeprefix("runs:/").split("/", 1)
    (path,) = settings.home.rglob(f"{run_id}/artifacts/{artifact}")
    return path


@pytest.fixture(scope="module", params=["handbook", "cards"])
def report(request, tmp_path_factory) -> tuple[str, Path]:
    """The report of v2 (gated against v1) of the spec ``request.param``."""
    name = request.param
    root = tmp_path_factory.mktemp(f"report-{name}")
    data = root / "history.parquet"
    if name == "handbook":
        request.getfixturevalue("small_history").to_parquet(data)
        settings = Settings(home=root / "home", data_path=data)
    else:
        history, training_settings = _cards_history()
        history.to_parquet(data)
        settings = training_settings(name, root / "home", data)
    assert run_training(settings).promoted
    second = settings.model_copy(update={"gate_ap_tolerance": 1.0, "gate_recall_tolerance": 1.0})
    run_training(second)
    return name, _report_path(settings, "2")


def test_the_report_draws_its_curves_matrices_and_slices(report, browser, tmp_path):
    name, path = report
    figures = sorted(p.stem for p in (path.parent / "figures").glob("*.json"))
    assert figures == [
        "calibration",
        "feature_importance",
        "precision_at_k_by_day",
        "precision_recall",
        "roc",
    ]  # the charts as MLflow artifacts too
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    try:
        page.goto(path.as_uri())
        page.wait_for_selector(".js-plotly-plot .main-svg")
        assert page.title() == "Model report: fraud-detector v2"
        plots = page.locator(".js-plotly-plot")
        count = plots.count()
        assert count == 5  # ROC, PR, calibration, Precision@k by day, feature importance
        text = page.inner_text("body")
        assert "ROC curve" in text and "AUC" in text and "Precision-recall curve" in text
        assert "champion v1" in text and "Brier" in text and "Precision@" in text
        assert page.locator("table.matrix").count() == 4  # both models, two operating points
        assert "actual \\ decision" in page.inner_text("table.matrix >> nth=0")
        slices = page.inner_text("table.slices")
        assert "amount_band" in slices and "card_age" in slices
        if name == "cards":
            assert "channel" in slices and "Global feature importance" in text

        roc = tmp_path / "roc.png"
        plots.nth(0).screenshot(path=str(roc))
        matrix = tmp_path / "matrix.png"
        page.locator("table.matrix >> nth=0").screenshot(path=str(matrix))
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    finally:
        page.close()

    from PIL import Image

    pixels = np.asarray(Image.open(roc).convert("RGB")).reshape(-1, 3).astype(int)
    drawn = (np.abs(pixels[:, None, :] - CURVE_RGB[None]).sum(axis=2) < 40).any(axis=1).sum()
    assert drawn > 200, f"the ROC plot shows {drawn} pixels of the curves' colours"
    cells = np.asarray(Image.open(matrix).convert("L"))
    assert cells.min() < 100 and cells.max() > 200  # text and borders on a light background
