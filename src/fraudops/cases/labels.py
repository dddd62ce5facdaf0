"""Labels with provenance: which label of an event counts, and where analysts and
chargebacks disagree.

An event may be labelled by an analyst's case decision (hours after the alert) and later by a
chargeback (weeks after). The chargeback is the ground truth and wins; among labels of one
source the latest counts (a correction replaces what it corrects). The analyst's label
counts from its arrival until a chargeback arrives, which is what shortens the label delay.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fraudops.logs.records import (
    ANALYST,
    CHARGEBACK,
    LABEL_BY,
    LABEL_ID,
    LABEL_SOURCE,
    LABEL_TIME,
    LABEL_VALUE,
)


def with_provenance(labels: pd.DataFrame) -> pd.DataFrame:
    """``labels`` with the provenance columns; rows of logs written before they existed are
    chargebacks (``/feedback`` had no other source then)."""
    out = labels.copy()
    if LABEL_SOURCE not in out:
        out[LABEL_SOURCE] = CHARGEBACK
    out[LABEL_SOURCE] = out[LABEL_SOURCE].fillna(CHARGEBACK)
    if LABEL_BY not in out:
        out[LABEL_BY] = ""
    return out


def resolve_labels(labels: pd.DataFrame) -> pd.DataFrame:
    """One label per event: the latest chargeback if any, else the latest analyst label.

    Args:
        labels: label-log rows (:meth:`fraudops.logs.records.LabelRecord.row`), any order.

    Returns:
        A frame indexed by event id with ``is_fraud``, ``label_time``, ``source`` and
        ``labelled_by`` of the label that counts.
    """
    frame = with_provenance(labels)
    rank = (frame[LABEL_SOURCE] == CHARGEBACK).astype(int)
    ordered = frame.assign(_rank=rank, _order=range(len(frame))).sort_values(
        ["_rank", LABEL_TIME, "_order"], kind="stable"
    )
    last = ordered.drop_duplicates(LABEL_ID, keep="last").set_index(LABEL_ID)
    return last[[LABEL_VALUE, LABEL_TIME, LABEL_SOURCE, LABEL_BY]]


@dataclass(frozen=True)
class Agreement:
    """Analyst decisions checked against chargebacks, on events that have both.

    Attributes:
        compared: events with an analyst label and a chargeback.
        agreed: of those, where the analyst's latest label equals the chargeback's.
        analyst_frauds_cleared: analyst said fraud, the chargeback said legitimate.
        analyst_misses: analyst said legitimate, the chargeback said fraud.
    """

    compared: int
    agreed: int
    analyst_frauds_cleared: int
    analyst_misses: int

    @property
    def rate(self) -> float | None:
        """Share of agreement in [0, 1]; None when nothing could be compared."""
        return self.agreed / self.compared if self.compared else None


def agreement(labels: pd.DataFrame) -> Agreement:
    """How often analysts agreed with the chargebacks that followed (label-log rows in)."""
    frame = with_provenance(labels).assign(_order=lambda f: range(len(f)))
    latest = (
        frame.sort_values([LABEL_TIME, "_order"], kind="stable")
        .drop_duplicates([LABEL_ID, LABEL_SOURCE], keep="last")
        .pivot(index=LABEL_ID, columns=LABEL_SOURCE, values=LABEL_VALUE)
    )
    if ANALYST not in latest or CHARGEBACK not in latest:
        return Agreement(0, 0, 0, 0)
    both = latest[[ANALYST, CHARGEBACK]].dropna().astype(int)
    analyst, chargeback = both[ANALYST], both[CHARGEBACK]
    return Agreement(
        compared=len(both),
        agreed=int((analyst == chargeback).sum()),
        analyst_frauds_cleared=int(((analyst == 1) & (chargeback == 0)).sum()),
        analyst_misses=int(((analyst == 0) & (chargeback == 1)).sum()),
    )
