"""Benchmark: ``fraudops score-batch`` (offline, vectorised) vs the service's online path.

Both score the same real transactions of the shared file with the same champion. The batch path
(:func:`fraudops.serving.batch.score_file`) reads the file, validates it, computes the 18
features with vectorised pandas over the whole history and predicts all rows at once. The peer
is the path of ``/score_batch`` without HTTP: :class:`fraudops.serving.scorer.Scorer` warmed
with the 37 days before the scored days, then updating the online state and scoring in 1,000-row
batches (log writes included). Prints JSON: rows, seconds, rows/s of both, and the largest score
difference on the rows of the first label delay, where both see the same labels (the two paths
must agree).

Usage: python benchmarks/batch_scoring.py [--days 61] [--peer-rows 100000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import emit, load_handbook

from fraudops import registry
from fraudops.data import contract as c
from fraudops.serving.batch import score_file
from fraudops.serving.scorer import Scorer
from fraudops.settings import Settings
from fraudops.streaming.handbook_state import Transaction
from pipelines.training import run_training

TRAIN_START = "2018-05-01"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=61, help="Days of transactions scored.")
    parser.add_argument("--peer-rows", type=int, default=100_000, help="Rows the peer scores.")
    args = parser.parse_args()
    handbook = load_handbook()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        history = root / "history.parquet"
        handbook[handbook[c.TX_DATETIME] < pd.Timestamp("2018-07-15")].to_parquet(history)
        settings = Settings(home=root / "home", data_path=history)
        run_training(Settings(home=root / "home", data_path=history, train_start=TRAIN_START))
        registry.configure_mlflow(settings)

        first = pd.Timestamp("2018-07-15")
        window = handbook[
            (handbook[c.TX_DATETIME] >= first - pd.Timedelta(days=37))
            & (handbook[c.TX_DATETIME] < first + pd.Timedelta(days=args.days))
        ]
        source = root / "to-score.parquet"
        window.to_parquet(source)
        result = score_file(settings, source, root / "scored.parquet")
        scored = pd.read_parquet(root / "scored.parquet").set_index(c.TRANSACTION_ID)

        peer_rows = window[window[c.TX_DATETIME] >= first].head(args.peer_rows)
        scorer = Scorer.start(
            Settings(
                home=root / "peer", data_path=history, tracking_uri=settings.resolved_tracking_uri
            ),
            poll=False,
        )
        transactions = [
            Transaction(
                r.TRANSACTION_ID, r.TX_DATETIME, r.CUSTOMER_ID, r.TERMINAL_ID, r.TX_AMOUNT
            ).as_event()
            for r in peer_rows.itertuples(index=False)
        ]
        began = time.perf_counter()
        peer_scores = []
        for i in range(0, len(transactions), 1000):
            peer_scores += [
                row["fraud_probability"] for row in scorer.score(transactions[i : i + 1000])
            ]
        peer_seconds = time.perf_counter() - began
        scorer.close()
        # the peer gets no labels after the history; within one label delay of its end both
        # paths see the same labels, so their scores must agree there
        ours = scored.loc[peer_rows[c.TRANSACTION_ID], "fraud_probability"].to_numpy()
        same_labels = (peer_rows[c.TX_DATETIME] < first + pd.Timedelta(days=7)).to_numpy()
        diff = np.abs(ours - np.asarray(peer_scores))[same_labels]
    emit(
        "batch_scoring",
        {
            "rows": result.rows,
            "days": args.days,
            "score_batch_seconds": round(result.seconds, 2),
            "score_batch_rows_per_s": round(result.rows_per_second),
            "online_path_rows": len(peer_rows),
            "online_path_seconds": round(peer_seconds, 2),
            "online_path_rows_per_s": round(len(peer_rows) / peer_seconds),
            "speedup": round(result.rows_per_second / (len(peer_rows) / peer_seconds), 1),
            "rows_compared": int(same_labels.sum()),
            "max_abs_score_difference": float(diff.max()),
        },
    )


if __name__ == "__main__":
    main()
