"""Replay a labelled history of any dataset spec through a running service, day by day.

:class:`DriftInjector` applies the simulator's drift knobs to replayed rows from a date:
``amount`` multiplies every amount by ``amount_scale``; ``terminals`` compromises
``terminals_per_day`` new keys a day of the spec's label-rate entity (the handbook's terminal),
whose events in the next 28 days become frauds (the handbook's scenario 2).
:class:`ReplayClient` sends events in time order to ``/score_batch`` and labels, once older
than the label delay, to ``/feedback``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import numpy as np
import pandas as pd

from fraudops.spec.model import DatasetSpec, api_field

DriftKind = Literal["amount", "terminals"]


def drift_entity(spec: DatasetSpec) -> str:
    """The column whose keys the ``terminals`` drift compromises: the entity of the spec's
    ``label_rate`` features (the handbook's terminal), else its last entity.

    Raises:
        ValueError: the spec has no entity.
    """
    for agg in spec.aggregations:
        if any(f.kind == "label_rate" for f in agg.features):
            return spec.entity(agg.entity).column
    if not spec.entities:
        raise ValueError(f"spec {spec.name!r} has no entity to compromise")
    return spec.entities[-1].column


@dataclass
class DriftInjector:
    """Drift applied to replayed rows (prepared events of ``spec``) on and after ``start``.

    Attributes:
        kind: ``amount`` (every amount × ``amount_scale``; the spec's ``amount`` column) or
            ``terminals`` (``terminals_per_day`` new keys a day of :func:`drift_entity`, whose
            events in the next 28 days become frauds).
        start: first drifted day.
        spec: the dataset spec of the rows.
        amount_scale: factor on amounts (``amount``).
        terminals_per_day: newly compromised keys a day (``terminals``).
        seed: random seed of the key choice.

    Raises:
        ValueError: ``amount`` drift on a spec without an amount column.
    """

    kind: DriftKind
    start: dt.date
    spec: DatasetSpec
    amount_scale: float = 2.0
    terminals_per_day: int = 40
    seed: int = 0
    _until: dict[Any, pd.Timestamp] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)
        if self.kind == "amount" and not self.spec.amount:
            raise ValueError(f"spec {self.spec.name!r} has no amount column to drift")

    def apply(self, day: pd.DataFrame, date: dt.date, keys: np.ndarray) -> pd.DataFrame:
        """The day's rows with the drift of ``date`` applied (a copy when anything changes);
        ``keys``: the candidate keys of :func:`drift_entity` (``terminals``)."""
        if date < self.start or day.empty:
            return day
        spec = self.spec
        day = day.copy()
        if self.kind == "amount":
            amount = spec.amount or ""
            day[amount] = (day[amount] * self.amount_scale).round(2)
            return day
        new = self._rng.choice(keys, size=min(self.terminals_per_day, len(keys)), replace=False)
        until = pd.Timestamp(date) + pd.Timedelta(days=28)
        self._until.update({key: until for key in new.tolist()})
        compromised = day[drift_entity(spec)].map(self._until)
        hit = (compromised.notna() & (day[spec.event_time.column] < compromised)).to_numpy()
        day.loc[hit, spec.label.column] = 1
        return day


def _json_value(value: Any) -> Any:
    """A frame value as JSON: numpy scalars as Python ones, times as ISO 8601 text."""
    if isinstance(value, pd.Timestamp | dt.datetime):
        return value.isoformat()
    return value.item() if isinstance(value, np.generic) else value


def to_requests(frame: pd.DataFrame, spec: DatasetSpec) -> list[dict[str, Any]]:
    """API payloads of prepared events: the spec's raw columns, named as the API names them."""
    columns = spec.raw_columns()
    names = [api_field(column) for column in columns]
    return [
        {name: _json_value(value) for name, value in zip(names, row, strict=True)}
        for row in frame[columns].itertuples(index=False, name=None)
    ]


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


class ReplayClient:
    """HTTP client of the scoring service (bounded timeouts; raises on any non-2xx answer).

    Args:
        url: the service's base URL.
        spec: the dataset spec the service serves (names the request fields).
        token: its scoring bearer token, if any.
        label_token: the bearer token of ``/feedback``; None: ``token`` (one-token mode).
        batch_rows: rows per ``/score_batch`` and per ``/feedback`` request (at most the
            service's ``max_batch_rows`` and ``max_feedback_rows``, 10,000 by default).
    """

    def __init__(
        self,
        url: str,
        spec: DatasetSpec,
        token: str | None = None,
        batch_rows: int = 5_000,
        *,
        label_token: str | None = None,
    ) -> None:
        self.client = httpx.Client(base_url=url, headers=_bearer(token), timeout=120)
        self.label_headers = _bearer(label_token or token)
        self.spec = spec
        self.batch_rows = batch_rows

    def score(self, frame: pd.DataFrame) -> list[dict[str, Any]]:
        """Score prepared events in time order; returns the service's answers."""
        answers: list[dict[str, Any]] = []
        order = [self.spec.event_time.column, self.spec.event_id.column]
        payload = to_requests(frame.sort_values(order, kind="stable"), self.spec)
        for start in range(0, len(payload), self.batch_rows):
            response = self.client.post(
                "/score_batch", json=payload[start : start + self.batch_rows]
            )
            response.raise_for_status()
            answers.extend(response.json())
        return answers

    def feedback(
        self,
        frame: pd.DataFrame,
        label_time: dt.datetime,
        corrections: Collection[Hashable] = (),
    ) -> int:
        """Send the rows' labels (all of them, frauds and genuine) as chargebacks; returns how
        many. A genuine row whose id is in ``corrections`` (an analyst labelled it fraud) is
        flagged ``correction``: the chargeback wins, and /feedback refuses a silent
        downgrade of a fraud."""
        spec = self.spec
        ids = frame[spec.event_id.column].map(_json_value)
        labels = [
            {
                api_field(spec.event_id.column): i,
                "is_fraud": bool(y),
                "label_time": label_time.isoformat(),
                **({"correction": True} if not y and i in corrections else {}),
            }
            for i, y in zip(ids, frame[spec.label.column], strict=True)
        ]
        for start in range(0, len(labels), self.batch_rows):
            chunk = labels[start : start + self.batch_rows]
            self.client.post("/feedback", json=chunk, headers=self.label_headers).raise_for_status()
        return len(labels)

    def close(self) -> None:
        self.client.close()
