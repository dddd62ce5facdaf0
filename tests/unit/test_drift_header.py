"""The drift report's title and header: window, rows, champion, decision, previous, warning."""

from __future__ import annotations

import pytest

from fraudops.drift.header import ReportHeader, with_header

pytestmark = pytest.mark.unit

HEADER = ReportHeader(
    window_start="2018-06-01",
    window_end="2018-06-07",
    window_days=7,
    days_with_rows=3,
    current_rows=6000,
    reference_rows=20000,
    champion_version="2",
    spec_name="handbook",
    verdict="drift, no retrain yet",
    reasons=["drift share 0.33 > 0.15 <in 1 of 2 windows>"],
    previous_report="drift-2018-05-31-v2.html",
)
PAGE = "<html><head><meta charset='utf-8'></head><body class='x'><div>evidently</div></body></html>"


def test_the_report_gets_a_title_and_a_header_before_evidentlys_content():
    page = with_header(PAGE, HEADER)
    title = "<title>Drift report 2018-06-01..2018-06-07, champion v2: drift, no retrain yet</title>"
    assert page.startswith("<html><head>" + title)
    assert page.index('id="fraudops-header"') < page.index("<div>evidently</div>")
    assert "6,000 scored rows compared with 20,000 reference rows of champion v2" in page
    assert '<a href="drift-2018-05-31-v2.html">previous report</a>' in page
    assert "&lt;in 1 of 2 windows&gt;" in page and "<in 1 of 2" not in page


def test_a_short_window_is_flagged_and_a_full_one_is_not():
    assert "Window not full: 3 of 7 days" in with_header(PAGE, HEADER)
    from dataclasses import replace

    full = with_header(PAGE, replace(HEADER, days_with_rows=7, previous_report=None))
    assert "Window not full" not in full and "First report of this home." in full


def test_a_page_without_head_or_body_still_gets_both():
    page = with_header("<div>bare</div>", HEADER)
    assert "<title>Drift report" in page and 'id="fraudops-header"' in page
    assert page.endswith("<div>bare</div>")


def test_the_review_queue_line_appears_when_the_home_has_cases():
    from dataclasses import replace

    assert 'id="review"' not in with_header(PAGE, HEADER)
    line = "3 cases undecided (oldest 2.0 h), 1 decided in the last hour, 4 today; <none>"
    page = with_header(PAGE, replace(HEADER, review=line))
    assert "Review queue: 3 cases undecided (oldest 2.0 h)" in page and "&lt;none&gt;" in page
