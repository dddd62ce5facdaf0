"""`fraudops serve` before any model is trained: it says it waits for @champion, answers 503
with the reason, and its Swagger page (opened in Chromium by Playwright) is fraudops'."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest

from fraudops.processes import free_port, stop, wait_http_ok

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.slow]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def no_model_service(tmp_path_factory, history):
    """A real `fraudops serve` on an empty home (no registry, no champion)."""
    root = tmp_path_factory.mktemp("pages")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FRAUDOPS_", "MLFLOW_"))}
    env.update({"FRAUDOPS_HOME": str(root / "home"), "FRAUDOPS_DATA_PATH": str(history)})
    log = root / "server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "fraudops_cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/livez", server, timeout=180, log=log)
        yield base, log
    finally:
        stop(server)


def test_without_a_champion_the_service_says_it_waits_and_scoring_gets_503(no_model_service):
    base, log = no_model_service
    text = log.read_text()
    assert "serving nothing yet (no model is registered under" in text
    assert "no @champion of fraud-detector in the registry yet: waiting for one" in text
    assert httpx.get(f"{base}/readyz").status_code == 503
    answer = httpx.post(
        f"{base}/score",
        json={
            "transaction_id": 1,
            "tx_datetime": "2018-06-01T10:00:00",
            "customer_id": 1,
            "terminal_id": 1,
            "tx_amount": 10.0,
        },
    )
    assert answer.status_code == 503
    assert answer.json() == {
        "error": "no @champion model is loaded yet; train one with `fraudops train`"
    }
    assert "Traceback" not in log.read_text()


def test_the_swagger_page_is_titled_fraudops_with_grouped_endpoints(no_model_service):
    if CHROMIUM is None:
        pytest.fail("Chromium is required (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    base, _ = no_model_service
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{base}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            title = page.inner_text(".swagger-ui .info .title")
            groups = page.locator(".opblock-tag").all_inner_texts()
            page_title = page.title()
        finally:
            browser.close()
    assert page_title == "fraudops scoring API"
    assert title.startswith("fraudops scoring API (handbook spec)") and "None" not in title
    assert [g.split("\n")[0] for g in groups][:3] == ["scoring", "labels", "model"]
