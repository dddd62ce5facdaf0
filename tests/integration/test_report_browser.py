"""A person opens the drift report and the Evidently UI in a browser (headless Chromium)."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from fraudops.data import contract as c
from fraudops.drift.dashboard import (
    DRIFT_SHARE_PANEL,
    RECALL_PANEL,
    RETRAIN_PANEL,
    ROC_AUC_PANEL,
    SCORE_DRIFT_PANEL,
    SnapshotLabels,
)
from fraudops.drift.monitor import Decision, _add_to_workspace, workspace_path
from fraudops.drift.report import LABEL_COLUMN, SCORE, quality_snapshot, run_drift
from fraudops.offline.handbook import compute_features
from fraudops.processes import free_port
from fraudops.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def rendered_dom(url: str, tmp_path: Path) -> str:
    if CHROMIUM is None:
        pytest.fail("Chromium is required (apt-get install chromium; .ci/run installs it)")
    result = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory, small_history):
    features = compute_features(small_history)
    frame = features.assign(
        **{
            SCORE: np.random.default_rng(0).random(len(features)),
            c.TX_DATETIME: small_history[c.TX_DATETIME],
        }
    )
    reference = frame[frame[c.TX_DATETIME] < "2018-05-20"]
    current = frame[frame[c.TX_DATETIME] >= "2018-06-01"].copy()
    current[c.TX_AMOUNT] *= 3
    end = dt.date(2018, 6, 7)
    labels = SnapshotLabels(end - dt.timedelta(days=6), end, "1", "handbook")
    snapshot, figures = run_drift(reference, current, threshold=0.5, labels=labels)
    home = tmp_path_factory.mktemp("ui")
    html = home / "report.html"
    snapshot.save_html(str(html))
    settings = Settings(home=home)
    decision = Decision(
        window_start="2018-06-01",
        window_end=end.isoformat(),
        champion_version="1",
        drifted=True,
        retrain=True,
        reasons=[],
        figures={},
    )
    _add_to_workspace(settings, snapshot, decision)
    labelled = current.assign(**{LABEL_COLUMN: small_history.loc[current.index, c.LABEL]})
    _add_to_workspace(settings, quality_snapshot(labelled, 0.5, 1_000, labels))
    return html, settings, figures


def test_saved_report_shows_the_per_feature_drift_table(report, tmp_path):
    html, _, figures = report
    dom = rendered_dom(html.as_uri(), tmp_path)
    assert "TX_AMOUNT" in dom and "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW" in dom
    assert "Drift" in dom and "Wasserstein" in dom
    assert c.TX_AMOUNT in figures.drifted_columns


#: Per panel title, its marks: points of a line (MUI X charts' mark elements) or bars.
MARKS_JS = """titles => titles.map(title => {
    const heading = Array.from(document.querySelectorAll('h5, h6, p, span, div'))
        .find(e => e.childElementCount === 0 && e.innerText === title);
    let card = heading;
    while (card && !card.querySelector('svg')) card = card.parentElement;
    return card ? card.querySelectorAll('.MuiMarkElement-root, .MuiBarElement-root').length : -1;
})"""


def test_evidently_ui_serves_the_workspace_project(report, tmp_path, browser):
    _, settings, _ = report
    port = free_port()
    ui = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from evidently.cli import app; app()",
            "ui",
            "--workspace",
            str(workspace_path(settings)),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                projects = httpx.get(f"{base}/api/projects", timeout=2).json()
                break
            except (httpx.HTTPError, ValueError):
                assert time.monotonic() < deadline, "Evidently UI did not start"
                time.sleep(0.5)
        assert [p["name"] for p in projects] == ["fraudops drift"]
        dom = rendered_dom(f"{base}/projects/{projects[0]['id']}/reports", tmp_path)
        assert "fraudops drift" in dom
        assert "drift 2018-06-01..2018-06-07, champion v1" in dom  # the snapshot's name
        page = browser.new_page(viewport={"width": 1400, "height": 2400})
        try:  # the dashboard: every panel plots its point (one window here)
            page.goto(f"{base}/projects/{projects[0]['id']}")
            page.locator(".MuiMarkElement-root").first.wait_for(timeout=60_000)
            titles = [DRIFT_SHARE_PANEL, SCORE_DRIFT_PANEL, RETRAIN_PANEL, RECALL_PANEL]
            titles += [ROC_AUC_PANEL, "Drift share, champion v1"]
            assert page.evaluate(MARKS_JS, titles) == [1] * len(titles)
            assert page.get_by_text("This dashboard is currently empty").count() == 0
        finally:
            page.close()
    finally:
        ui.terminate()
        ui.wait(30)
