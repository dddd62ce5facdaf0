"""Decided cases → labels in the label store, through the service's ``/feedback``.

The service is the one writer of the online state and of the label log, so an analyst's
label goes where a chargeback goes, with its provenance (``source: analyst``, the analyst,
the decision's time). A decided case is delivered once (its ``label_delivered_at`` is set only
after the service accepted it); an unreachable service leaves it for the next round.

Outcomes kept on the case: ``held`` (the service holds the transaction: the label counts in
its features at once), ``external`` (the service no longer holds it, e.g. restarted with the
in-memory state: label log only), ``superseded`` (the store already holds the event as a
confirmed fraud and the analyst cleared it: the earlier fraud label, a chargeback's, wins).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from fraudops.cases.store import FRAUD, Case, CaseStore
from fraudops.logs.records import ANALYST

logger = logging.getLogger(__name__)

#: Posts a ``/feedback`` body and returns (HTTP status, JSON body or None).
Post = Callable[[list[dict[str, Any]]], tuple[int, Any]]


@dataclass
class DeliveryReport:
    """One round of deliveries: labels by outcome, and why the round stopped early (None
    when every pending label was delivered)."""

    held: int = 0
    external: int = 0
    superseded: int = 0
    stopped: str | None = None


def label_body(case: Case, id_field: str, *, external: bool = False) -> dict[str, Any]:
    """The ``/feedback`` row of a decided case."""
    assert case.decided_at is not None and case.decided_by is not None
    return {
        id_field: case.event_id,
        "is_fraud": case.disposition == FRAUD,
        "label_time": case.decided_at.isoformat(),
        "external": external,
        "source": ANALYST,
        "labelled_by": case.decided_by,
    }


def http_poster(url: str, token: str | None, timeout: float = 10.0) -> Post:
    """A :data:`Post` to ``<url>/feedback`` with the label token as bearer."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    def post(body: list[dict[str, Any]]) -> tuple[int, Any]:
        response = httpx.post(
            f"{url.rstrip('/')}/feedback", json=body, headers=headers, timeout=timeout
        )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    return post


def _refused_field(answer: Any) -> str:
    """The field a 422 names (``labels[0].<field>: ...``), "" if none."""
    text = str(answer.get("error", "")) if isinstance(answer, dict) else str(answer or "")
    head = text.split(":", 1)[0]
    return head.rsplit(".", 1)[-1] if head.startswith("labels[") else ""


def deliver(store: CaseStore, post: Post, id_field: str, limit: int = 500) -> DeliveryReport:
    """Send the labels of decided cases not yet delivered: all in one request, and case by
    case when the service refuses the batch (one refused label refuses a whole request).

    Returns:
        What was delivered; ``stopped`` says why the round ended early (the service is
        unreachable or refused the token: the rest waits for the next round).
    """
    report = DeliveryReport()
    pending = store.undelivered_labels(limit)
    if not pending:
        return report
    try:
        status, answer = post([label_body(case, id_field) for case in pending])
    except httpx.HTTPError as exc:
        report.stopped = f"service unreachable: {exc}"
        logger.warning("labels wait for the next round: %s", report.stopped)
        return report
    if status == 200:
        store.mark_delivered([case.id for case in pending], "held")
        report.held = len(pending)
        return report
    if status != 422:
        report.stopped = f"/feedback answered {status}: {answer}"
        logger.warning("labels wait for the next round: %s", report.stopped)
        return report
    for case in pending:
        try:
            status, answer = post([label_body(case, id_field)])
            outcome = "held"
            if status == 422 and _refused_field(answer) == id_field:
                status, answer = post([label_body(case, id_field, external=True)])
                outcome = "external"
            elif status == 422 and _refused_field(answer) == "is_fraud":
                status, outcome = 200, "superseded"
        except httpx.HTTPError as exc:
            report.stopped = f"service unreachable: {exc}"
            break
        if status != 200:
            report.stopped = f"/feedback answered {status}: {answer}"
            break
        store.mark_delivered(case.id, outcome)
        setattr(report, outcome, getattr(report, outcome) + 1)
    if report.stopped:
        logger.warning("labels wait for the next round: %s", report.stopped)
    return report
