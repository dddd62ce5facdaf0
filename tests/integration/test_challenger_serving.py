"""The service's scorer beside a staged challenger: shadow never changes an answer, canary
decides for its entities, a failing challenger costs nothing, a guardrail breach rolls back."""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time

import numpy as np
import pandas as pd
import pytest

from fraudops import registry
from fraudops.data import contract as c
from fraudops.logs.predlog import read_log
from fraudops.registry import stage as stages
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction
from pipelines.training import run_training

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(tmp_path_factory, history):
    """v1 the champion, v2 a staged challenger (another seed and kind)."""
    settings = Settings(
        home=tmp_path_factory.mktemp("challenger") / "home",
        data_path=history,
        log_flush_seconds=0.1,
        guardrail_min_requests=20,
    )
    assert run_training(settings).promoted
    second = run_training(
        settings.model_copy(update={"promotion": "staged", "model_kind": "logistic_regression"})
    )
    assert second.version == "2" and not second.promoted
    return settings


@pytest.fixture
def scorer(trained):
    client = registry.client_for(trained)
    stages.enter(client, trained.model_name, "2", stages.SHADOW, reason="test: shadow")
    scorer = Scorer.start(trained, poll=False)
    yield scorer
    scorer.close()


_ids = itertools.count(95_000_000)
_clock = itertools.count()
_lock = threading.Lock()


def events(small_history: pd.DataFrame, rows: int, seed: int | None = None) -> list[dict]:
    """``rows`` new transactions after the history, of known cards drawn with ``seed``
    (default ``rows``: the same cards for the same size)."""
    start = small_history[c.TX_DATETIME].max() + pd.Timedelta(minutes=1)
    cards = small_history.drop_duplicates(c.CUSTOMER_ID)
    known = cards.sample(rows, replace=True, random_state=rows if seed is None else seed)
    out = []
    with _lock:
        for r in known.itertuples(index=False):
            out.append(
                Transaction(
                    next(_ids),
                    (start + pd.Timedelta(seconds=next(_clock))).to_pydatetime(),
                    int(r.CUSTOMER_ID),
                    int(r.TERMINAL_ID),
                    float(r.TX_AMOUNT),
                ).as_event()
            )
    return out


def challenger_rows(settings: Settings, ids: list[int]) -> pd.DataFrame:
    """The challenger log's rows of ``ids``, once all are written (the writer flushes every
    0.1 s)."""
    for _ in range(100):
        log = read_log(settings.challenger_log_dir)
        mine = log[log["transaction_id"].isin(ids)] if len(log) else log
        if len(mine) == len(ids):
            return mine
        time.sleep(0.1)
    raise AssertionError(f"{len(mine)} of {len(ids)} challenger rows written")


def test_in_shadow_the_champion_answers_and_the_challenger_log_pairs_both_scores(
    scorer, small_history
):
    assert scorer.challenger is not None and scorer.challenger.stage.stage == stages.SHADOW
    batch = events(small_history, 80)
    out = scorer.score(batch)
    assert {(r["model_role"], r["model_version"]) for r in out} == {("champion", "1")}
    mine = challenger_rows(scorer.settings, [e[c.TRANSACTION_ID] for e in batch])
    assert set(mine["challenger_version"]) == {"2"} and set(mine["stage"]) == {"shadow"}
    answered = {r["transaction_id"]: r["fraud_probability"] for r in out}
    assert np.allclose(mine["champion_score"], mine["transaction_id"].map(answered))
    rows = [r["features"] for r in out]
    expected = scorer.challenger.model.predict(rows)
    assert np.allclose(mine.sort_values("transaction_id")["challenger_score"], expected)
    assert not mine["challenger_score"].equals(mine["champion_score"])


def test_a_canary_decides_for_its_entities_only_and_a_mode_change_needs_no_reload(
    scorer, trained, small_history
):
    model = scorer.challenger.model
    client = registry.client_for(trained)
    stages.enter(client, trained.model_name, "2", stages.CANARY, reason="test", share=0.5)
    scorer.poll_challenger()
    assert scorer.challenger.stage.stage == stages.CANARY and scorer.challenger.model is model
    batch = events(small_history, 200)
    out = scorer.score(batch)
    roles = {r["model_role"] for r in out}
    assert roles == {"champion", "challenger"}
    by_card: dict[int, str] = {}
    for event, row in zip(batch, out, strict=True):
        assert row["model_version"] == ("2" if row["model_role"] == "challenger" else "1")
        assert by_card.setdefault(event[c.CUSTOMER_ID], row["model_role"]) == row["model_role"]
    again = events(small_history, 200)  # the same cards (same sample), new transactions
    for event, row in zip(again, scorer.score(again), strict=True):
        assert by_card[event[c.CUSTOMER_ID]] == row["model_role"]
    log = challenger_rows(trained, [e[c.TRANSACTION_ID] for e in batch])
    decided = dict(zip(log["transaction_id"], log["decided_by"], strict=True))
    assert [decided[e[c.TRANSACTION_ID]] for e in batch] == [r["model_role"] for r in out]
    assert scorer.model_info()["challenger"]["stage"] == stages.CANARY


class Broken:
    def predict_proba(self, _inputs):
        raise RuntimeError("challenger broke")


def test_a_failing_challenger_never_fails_a_request_and_is_counted(scorer, small_history):
    scorer.challenger = dataclasses.replace(
        scorer.challenger,
        model=dataclasses.replace(scorer.challenger.model, estimator=Broken()),
        stage=dataclasses.replace(scorer.challenger.stage, stage=stages.CANARY, share=0.5),
    )
    out = scorer.score(events(small_history, 50))
    assert {r["model_role"] for r in out} == {"champion"}
    assert scorer.shadow.drain()
    assert scorer.challenger_counters.failures >= 50
    assert "challenger broke" in scorer.challenger_counters.last_error


def test_a_guardrail_breach_under_load_rolls_back_with_no_failed_request(
    scorer, trained, small_history
):
    client = registry.client_for(trained)
    stages.enter(client, trained.model_name, "2", stages.CANARY, reason="test", share=0.5)
    scorer.poll_challenger()
    loud = dataclasses.replace(scorer.challenger.model, threshold=1e-9)  # alerts on everything
    scorer.challenger = dataclasses.replace(scorer.challenger, model=loud)
    failures: list[BaseException] = []
    answered = {"challenger": 0, "champion": 0}
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                for row in scorer.score(events(small_history, 1, seed=next(_ids))):
                    answered[row["model_role"]] += 1
            except BaseException as exc:
                failures.append(exc)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + trained.poll_interval_seconds
    while scorer.challenger is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    rolled_back = scorer.challenger is None
    time.sleep(0.3)
    after = dict(answered)
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join()
    assert rolled_back and not failures
    assert answered["challenger"] == after["challenger"]  # nothing routed after the rollback
    assert answered["champion"] > after["champion"]
    for _ in range(50):
        tags = client.get_model_version(trained.model_name, "2").tags
        if tags.get("stage") == stages.ROLLED_BACK:
            break
        time.sleep(0.1)
    assert tags["stage"] == stages.ROLLED_BACK and "alert rate" in tags["stage_reason"]
    scorer.poll_challenger()
    assert scorer.challenger is None  # a rolled-back version is not loaded again
