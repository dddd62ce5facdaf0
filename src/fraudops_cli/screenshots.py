"""``fraudops screenshots``: the README's pictures, taken from the real UIs of a demo's home.

Starts the Evidently UI on the home's workspace and ``mlflow server`` on its registry (each on a
free loopback port, stopped afterwards), opens them and the newest drift report in Debian's
Chromium through Playwright, and renders the demo's week table (its ``demo-summary.json``) with
rich. Writes four PNGs: ``dashboard.png``, ``drift-report.png``, ``mlflow-version.png``,
``week-table.png``. Regenerate them when a screen changes:
``FRAUDOPS_HOME=.fraudops/demo fraudops screenshots --out .github/screenshots``.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fraudops.drift.monitor import workspace_path
from fraudops.processes import free_port, stop, wait_http_ok
from fraudops.settings import Settings
from fraudops_cli.demo import SUMMARY_FILE, DemoResult, week_table

if TYPE_CHECKING:
    from playwright.sync_api import ViewportSize

#: Files written, by what they show.
PICTURES = ("dashboard.png", "drift-report.png", "mlflow-version.png", "week-table.png")
VIEWPORT: ViewportSize = {"width": 1400, "height": 1000}


class ScreenshotError(RuntimeError):
    """The home lacks what a picture needs, or no Chromium is installed; says which."""


def chromium() -> str:
    """Debian's Chromium (Playwright's own browser is never downloaded)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise ScreenshotError("no chromium on PATH (apt-get install chromium)")
    return found


@contextlib.contextmanager
def _process(command: list[str], ready: str, log: Path) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http_ok(ready, process, timeout=180, log=log)
        yield
    finally:
        stop(process, timeout=30)


def take(settings: Settings, out: Path) -> list[Path]:
    """Take the four pictures of ``settings.home`` (a demo's home) into ``out``.

    Raises:
        ScreenshotError: no demo summary, drift report or registered version in the home, or
            no Chromium.
    """
    from playwright.sync_api import sync_playwright

    summary = settings.home / SUMMARY_FILE
    reports = sorted(settings.reports_dir.glob("drift-*.html"))
    if not summary.is_file() or not reports:
        raise ScreenshotError(
            f"{settings.home} holds no demo run ({SUMMARY_FILE}, drift reports): run "
            "`fraudops demo` and point FRAUDOPS_HOME at its home (<home>/demo)"
        )
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=VIEWPORT)
            _week_table(page, DemoResult.from_json(summary.read_text()), settings, out)
            page.goto(reports[-1].as_uri())
            page.wait_for_timeout(3_000)
            page.screenshot(path=str(out / "drift-report.png"))
            _dashboard(page, settings, out, Path(tmp))
            _mlflow_version(page, settings, out, Path(tmp))
        finally:
            browser.close()
    return [out / name for name in PICTURES]


def _week_table(page: Any, result: DemoResult, settings: Settings, out: Path) -> None:
    from rich.console import Console

    console = Console(record=True, width=160, file=io.StringIO())
    console.print(week_table(result, settings.label_delay_days))
    svg = console.export_svg(title="fraudops demo")
    page.set_content(f'<html><body style="margin:0;background:#fff">{svg}</body></html>')
    page.locator("svg").first.screenshot(path=str(out / "week-table.png"))


def _dashboard(page: Any, settings: Settings, out: Path, tmp: Path) -> None:
    port = free_port()
    command = [sys.executable, "-c", "from evidently.cli import app; app()", "ui"]
    command += ["--workspace", str(workspace_path(settings)), "--host", "127.0.0.1"]
    command += ["--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with _process(command, f"{base}/api/projects", tmp / "evidently.log"):
        import httpx

        project = httpx.get(f"{base}/api/projects", timeout=30).json()[0]["id"]
        page.set_viewport_size({"width": 1400, "height": 2000})
        page.goto(f"{base}/projects/{project}")
        page.locator(".MuiMarkElement-root").first.wait_for(timeout=60_000)
        page.wait_for_timeout(2_000)
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page.set_viewport_size(VIEWPORT)


def _mlflow_version(page: Any, settings: Settings, out: Path, tmp: Path) -> None:
    from fraudops import registry

    client = registry.client_for(settings)
    champion = registry.version_by_alias(client, settings.model_name, "champion")
    if champion is None:
        raise ScreenshotError(f"{settings.model_name} has no @champion in {settings.home}")
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--backend-store-uri", settings.resolved_tracking_uri]
    command += ["--artifacts-destination", (settings.home / "mlartifacts").as_uri()]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    base = f"http://127.0.0.1:{port}"
    with _process(command, f"{base}/health", tmp / "mlflow.log"):
        page.goto(f"{base}/#/models/{settings.model_name}/versions/{champion.version}")
        page.get_by_text("Gate:", exact=False).first.wait_for(timeout=60_000)
        page.wait_for_timeout(1_000)
        page.screenshot(path=str(out / "mlflow-version.png"))
