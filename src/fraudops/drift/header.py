"""The header and title of a saved drift report: which window, which champion, what was decided.

Evidently's HTML has no page title (browsers show an SVG's ``plotly-logomark``) and says
nothing of the monitoring run around it. :func:`with_header` adds a ``<title>`` and a header
block: the window and the rows compared, the champion, the decision with its reasons, a link
to the previous report, and a warning when the window is not full (fewer days with traffic than
its length: day-of-week features such as a weekend share then drift by construction).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

_STYLE = (
    "font-family:system-ui,sans-serif;margin:16px;padding:12px 16px;background:#f3f4f6;"
    "border-left:4px solid #2563eb;color:#1f2933"
)
_WARNING = "margin:8px 0;padding:6px 10px;background:#fef3c7;border-left:4px solid #d97706"


@dataclass(frozen=True)
class ReportHeader:
    """What the header says.

    Attributes:
        window_start, window_end: the window's first and last day (ISO dates).
        window_days: its length in days; days_with_rows: days of it with scored traffic.
        current_rows, reference_rows: rows compared (after sampling).
        champion_version, spec_name: the champion compared with and its dataset spec.
        verdict: the decision in a few words; reasons: the decision's reasons.
        previous_report: file name of the previous report (same folder), if any.
        review: the analysts' review queue when the report was made
            (:meth:`fraudops.cases.figures.ReviewFigures.summary`), None without a case store.
    """

    window_start: str
    window_end: str
    window_days: int
    days_with_rows: int
    current_rows: int
    reference_rows: int
    champion_version: str
    spec_name: str
    verdict: str
    reasons: Sequence[str]
    previous_report: str | None = None
    review: str | None = None

    @property
    def title(self) -> str:
        """The page's title."""
        return (
            f"Drift report {self.window_start}..{self.window_end}, champion "
            f"v{self.champion_version}: {self.verdict}"
        )


def header_html(header: ReportHeader) -> str:
    """The header block (escaped HTML)."""
    e = html.escape
    reasons = "".join(f"<li>{e(r)}</li>" for r in header.reasons)
    warning = ""
    if header.days_with_rows < header.window_days:
        warning = (
            f'<p style="{_WARNING}">Window not full: {header.days_with_rows} of '
            f"{header.window_days} days have scored traffic. Features that follow the day of "
            "the week (a weekend share, say) drift by construction in a short window.</p>"
        )
    previous = (
        f'<p><a href="{e(header.previous_report)}">previous report</a></p>'
        if header.previous_report
        else "<p>First report of this home.</p>"
    )
    return (
        f'<div id="fraudops-header" style="{_STYLE}">'
        f'<h1 style="font-size:1.3em;margin:0 0 6px">{e(header.title)}</h1>'
        f"<p>Window {e(header.window_start)} .. {e(header.window_end)} "
        f"({header.window_days} days): {header.current_rows:,} scored rows compared with "
        f"{header.reference_rows:,} reference rows of champion v{e(header.champion_version)} "
        f"(spec {e(header.spec_name)}).</p>{warning}"
        f"<p><strong>Decision: {e(header.verdict)}</strong></p><ul>{reasons}</ul>"
        + (f'<p id="review">Review queue: {e(header.review)}</p>' if header.review else "")
        + f"{previous}</div>"
    )


def with_header(page: str, header: ReportHeader) -> str:
    """``page`` (an Evidently report) with a ``<title>`` and the header as the body's first
    element; a page without ``<head>``/``<body>`` gets them prepended."""
    title = f"<title>{html.escape(header.title)}</title>"
    block = header_html(header)
    lower = page.lower()
    head = lower.find("<head>")
    page = page[: head + 6] + title + page[head + 6 :] if head >= 0 else title + page
    lower = page.lower()
    body = lower.find("<body")
    if body < 0:
        return block + page
    close = page.find(">", body) + 1
    return page[:close] + block + page[close:]
