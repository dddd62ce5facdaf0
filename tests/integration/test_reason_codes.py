"""Reason codes through the service's scorer: on every alert, on request for any event, in the
log as names and contributions only; the trained version's card gives the "usual" values."""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from fraudops.cases.store import CaseStore
from fraudops.data import contract as c
from fraudops.logs.predlog import read_log
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction
from pipelines.training import run_training

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def scorer(tmp_path_factory, history, small_history):
    settings = Settings(
        home=tmp_path_factory.mktemp("reasons") / "home",
        data_path=history,
        log_flush_seconds=0.1,
    )
    assert run_training(settings).promoted
    scorer = Scorer.start(settings, poll=False)
    yield scorer
    scorer.close()


def _events(small_history: pd.DataFrame, first_id: int, rows: int) -> list[dict]:
    """``rows`` new transactions of known cards and terminals, after the history."""
    start = small_history[c.TX_DATETIME].max() + pd.Timedelta(minutes=1)
    known = small_history.tail(rows)
    return [
        Transaction(
            first_id + i,
            (start + pd.Timedelta(seconds=30 * i)).to_pydatetime(),
            int(r.CUSTOMER_ID),
            int(r.TERMINAL_ID),
            float(r.TX_AMOUNT) * (1 + 4 * (i % 3 == 0)),
        ).as_event()
        for i, r in enumerate(known.itertuples(index=False))
    ]


def test_every_alert_and_only_alerts_get_reason_codes_which_the_log_keeps(scorer, small_history):
    events = _events(small_history, 90_000_000, 60)
    scores = np.array([row["fraud_probability"] for row in scorer.score(events)])
    # the same events again (retries: same features, same scores) with half of them alerts
    champion = scorer.champion
    scorer.champion = dataclasses.replace(champion, threshold=float(np.median(scores)))
    try:
        out = scorer.score(events)
    finally:
        scorer.champion = champion
    alerts = [row for row in out if row["decision"] == "alert"]
    assert 20 <= len(alerts) <= 40
    for row in out:
        assert (row["reasons"] is not None) == (row["decision"] == "alert")
    for row in alerts:
        assert 1 <= len(row["reasons"]) <= scorer.settings.reason_codes
        top = row["reasons"][0]
        assert top["value"] == row["features"][top["feature"]] and top["contribution"] > 0
        assert "(usual: " in top["phrase"]  # the card of a version trained now has the means
    ids = {e[c.TRANSACTION_ID] for e in events}
    deadline = time.monotonic() + 30
    while True:  # the writer flushes every 0.1 s
        logged = read_log(scorer.settings.prediction_log_dir)
        retried = logged[logged["transaction_id"].isin(ids)] if len(logged) else logged
        if len(retried) == 120 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    retried = retried.sort_values("scored_at", kind="stable").tail(60)  # the second request
    assert len(retried) == 60
    by_id = {row["transaction_id"]: row for row in out}
    for logged_row in retried.itertuples(index=False):
        served = by_id[logged_row.transaction_id]["reasons"] or []
        assert json.loads(logged_row.reason_codes or "[]") == [
            [r["feature"], round(r["contribution"], 6)] for r in served
        ]


def test_every_alert_opens_one_case_with_its_figures_and_ids_even_when_retried(
    scorer, small_history
):
    events = _events(small_history, 92_000_000, 30)
    champion = scorer.champion
    scorer.champion = dataclasses.replace(champion, threshold=0.0)  # every event alerts
    try:
        out = scorer.score(events)
        scorer.score(events)  # a retry of the same request
    finally:
        scorer.champion = champion
    store = CaseStore.open(scorer.settings.resolved_case_store_url)
    deadline = time.monotonic() + 30
    while len(cases := [c for c in store.queue(10_000)[0] if c.event_id >= 92_000_000]) < 30:
        assert time.monotonic() < deadline, f"{len(cases)} of 30 cases opened"
        time.sleep(0.1)
    store.close()
    assert len(cases) == 30  # the retry opened none
    by_id = {row["transaction_id"]: row for row in out}
    for case in cases:
        served, event = by_id[case.event_id], events[case.event_id - 92_000_000]
        assert case.score == served["fraud_probability"] and case.model_version == "1"
        assert case.entities == {"customer": event[c.CUSTOMER_ID], "terminal": event[c.TERMINAL_ID]}
        assert case.entity_hashes["customer_hash"] == scorer.hasher(event[c.CUSTOMER_ID])
        assert [r[0] for r in case.reasons] == [r["feature"] for r in served["reasons"]]


def test_explain_gives_reasons_for_a_pass_that_add_up_with_the_rest(scorer, small_history):
    events = _events(small_history, 91_000_000, 5)
    out = scorer.score(events, explain=True)
    model = scorer.champion
    for row in out:
        assert row["reasons"] is not None
        matrix = np.array([[row["features"][f] for f in model.features]])
        contributions = model.explainer.contributions(matrix)[0]
        assert model.explainer.base + contributions.sum() == pytest.approx(
            logit(row["fraud_probability"]), abs=1e-6
        )
        expected = sorted((v for v in contributions if v > 0), reverse=True)[:3]
        assert [r["contribution"] for r in row["reasons"]] == pytest.approx(expected)


def test_reason_codes_off_gives_none_and_model_says_why(scorer):
    off = dataclasses.replace(scorer.champion, explainer=None, explain_error="off for a test")
    champion, scorer.champion = scorer.champion, off
    try:
        assert scorer.model_info()["reason_codes"] == "off for a test"
    finally:
        scorer.champion = champion
    assert scorer.model_info()["reason_codes"] == "top 3 for alerts"
