"""``fraudops spec init``: a first spec drafted from a file, for the user to read and edit.

Heuristics, each stated in the YAML it writes: the event id is a column whose values are all
distinct (else row order); the event time is a datetime column, or text that parses as ISO 8601;
the label is a two-valued column named like fraud/label/target/class; entities are id-like
columns (names with id, card, customer, account, merchant, terminal, device, ip, policy) whose
values repeat; the event id and each entity get ``type: int`` when every value is a whole number
(as :func:`fraudops.spec.data.int_keys` reads them: ints, whole floats, text such as ``123``
but not ``0123``), ``type: str`` otherwise; the type is always written, to be read and checked.
Numbers with more than 20 distinct values are numeric (the amount: a name with
amount/amt/value/price), other low-cardinality columns are categorical. Numeric bounds: min 0
when no value is negative, max ten times the largest value seen, rounded up to a power of ten.
Left out (with the reason in the header): columns that follow the event time (correlation above
0.95) and columns whose every value has only frauds or only genuine rows (they give the label
away, like the handbook's ``TX_FRAUD_SCENARIO``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pandas as pd
import yaml
from pandas.api.types import is_bool_dtype, is_datetime64_any_dtype, is_numeric_dtype

from fraudops.data.contract import parse_iso_times
from fraudops.spec.data import int_keys
from fraudops.spec.model import DatasetSpec, KeyType, Reading

_ENTITY = re.compile(
    r"(id|card|customer|client|account|merchant|terminal|device|ip|policy|user)", re.IGNORECASE
)
_LABEL = re.compile(r"(fraud|label|target|class|is_bad|chargeback)", re.IGNORECASE)
_AMOUNT = re.compile(r"(amount|amt|value|price|sum)", re.IGNORECASE)
_TIME = re.compile(r"(time|date|step|day|timestamp|ts)", re.IGNORECASE)
#: Most categories a drafted categorical column may have.
MAX_DRAFT_CATEGORIES = 250


@dataclass(frozen=True)
class ColumnProfile:
    """What the draft saw in one column."""

    name: str
    dtype: str
    distinct: int
    missing: int
    role: str


def _is_time(series: pd.Series) -> bool:
    if is_datetime64_any_dtype(series):
        return True
    if is_numeric_dtype(series) or is_bool_dtype(series):
        return False
    sample = series.dropna().head(200)
    return len(sample) > 0 and bool(parse_iso_times(sample).notna().all())


def draft_spec(frame: pd.DataFrame, name: str, reading: Reading | None = None) -> str:
    """A commented YAML spec for ``frame`` (validated as a :class:`DatasetSpec` before return).

    Args:
        frame: the user's rows (a sample is enough) × their columns.
        name: the spec's name.
        reading: how the file was read (kept in the spec).

    Raises:
        ValueError: no time column was found and no column looks like a step index; the
            message lists the columns seen.
    """
    n = len(frame)
    profiles: list[ColumnProfile] = []
    roles: dict[str, Any] = {"name": name}
    if reading is not None and reading != Reading():
        roles["reading"] = reading.model_dump(exclude_defaults=True)
    columns = list(frame.columns)
    time = next((c for c in columns if _is_time(frame[c])), None)
    if time is not None:
        roles["event_time"] = {"column": time}
    else:
        steps = [c for c in columns if _TIME.search(str(c)) and is_numeric_dtype(frame[c])]
        if not steps:
            raise ValueError(f"no time column found among {columns}: add one, or a step index")
        time = steps[0]
        roles["event_time"] = {"column": time, "unit": "1h", "origin": "2020-01-01"}
    binary = [c for c in columns if frame[c].nunique(dropna=True) == 2]
    label = next((c for c in binary if _LABEL.search(str(c))), binary[0] if binary else None)
    if label is None:
        raise ValueError(f"no two-valued label column found among {columns}")
    label_values = sorted(pd.unique(frame[label].dropna()), key=str)
    positive = label_values[-1]
    positive = positive.item() if hasattr(positive, "item") else positive
    roles["label"] = {"column": label, "positive": [positive], "delay": "7d"}
    unique = [
        c for c in columns if c not in {time, label} and frame[c].is_unique and _ENTITY.search(c)
    ]
    event_id = unique[0] if unique else None
    roles["event_id"] = (
        {"column": event_id, "type": _key_type(frame[event_id])}
        if event_id
        else {"generate": "row_order"}
    )

    entities, numeric, categorical = [], [], []
    amount = None
    fraud = frame[label].astype(str).eq(str(positive))
    clock = _clock(frame[time])
    for column in columns:
        series = frame[column]
        distinct = int(series.nunique(dropna=True))
        role = "ignored"
        if column in {time, label, event_id}:
            role = {time: "event time", label: "label", event_id: "event id"}[column]
            if column == event_id:
                role += f" (type {roles['event_id']['type']})"
        elif _gives_label_away(series, fraud):
            role = "LEFT OUT: each value has only frauds or only genuine rows (label leak?)"
        elif is_numeric_dtype(series) and _follows(series, clock):
            role = "LEFT OUT: follows the event time"
        elif (
            _ENTITY.search(str(column))
            and 1 < distinct < max(n, 2)
            and (not is_numeric_dtype(series) or str(series.dtype).startswith("int"))
        ):
            kind = _key_type(series)
            role = f"entity (type {kind})"
            entities.append(
                {"name": _identifier(column), "column": column, "type": kind, "pii": True}
            )
        elif is_numeric_dtype(series) and not is_bool_dtype(series) and distinct > 20:
            role = "numeric"
            numeric.append(
                {"column": column, "min": float(series.min()), "max": float(series.max())}
            )
            if amount is None and _AMOUNT.search(str(column)) and series.min() >= 0:
                amount = column
        elif 1 < distinct <= MAX_DRAFT_CATEGORIES:
            role = "categorical"
            categorical.append({"column": column, "max_categories": min(50, max(distinct, 2))})
        profiles.append(
            ColumnProfile(column, str(series.dtype), distinct, int(series.isna().sum()), role)
        )
    roles["amount"] = amount
    roles["entities"] = entities
    roles["numeric"] = numeric
    roles["categorical"] = categorical
    roles["calendar"] = (
        [
            {"name": "hour_of_day", "kind": "hour"},
            {"name": "during_weekend", "kind": "weekend"},
        ]
        if time is not None and "unit" not in roles["event_time"]
        else []
    )
    roles["aggregations"] = [_entity_block(e["name"], amount) for e in entities[:3]]
    if entities:
        roles["aggregations"].append(
            {
                "entity": entities[-1]["name"],
                "windows": ["7d", "30d"],
                "lag": "label_delay",
                "features": [
                    {"name": f"{entities[-1]['name']}_fraud_rate_{{window}}", "kind": "label_rate"}
                ],
            }
        )
        roles["evaluation"] = {"precision_at_k_entity": entities[0]["name"]}
    DatasetSpec.model_validate(roles)  # a draft that does not validate is a bug here
    header = "\n".join(
        [
            f"# Dataset spec drafted by `fraudops spec init` from {n:,} rows: read it, edit it,",
            "# then run `fraudops spec check <this file> --data <file>`.",
            "# column: dtype, distinct values, missing values -> role guessed",
            *(
                f"#   {p.name}: {p.dtype}, {p.distinct:,} distinct, {p.missing:,} missing"
                f" -> {p.role}"
                for p in profiles
            ),
        ]
    )
    return header + "\n" + yaml.safe_dump(roles, sort_keys=False, allow_unicode=True)


def _key_type(series: pd.Series) -> KeyType:
    """``int`` when every present value is read as an int key, ``str`` otherwise."""
    present = series.dropna()
    return "int" if len(present) and bool(int_keys(present)[1].all()) else "str"


def _clock(times: pd.Series) -> pd.Series:
    """Event times as numbers (seconds or steps) for the correlation test."""
    if is_numeric_dtype(times):
        return times.astype(float)
    return pd.Series(pd.DatetimeIndex(parse_iso_times(times.astype(str))).asi8, index=times.index)


def _follows(series: pd.Series, clock: pd.Series) -> bool:
    if series.nunique() < 3:
        return False
    return bool(abs(series.astype(float).corr(clock.astype(float))) > 0.95)


def _gives_label_away(series: pd.Series, fraud: pd.Series) -> bool:
    """True when every value of the column (2+ values) has only frauds or only genuine rows."""
    if series.nunique() < 2 or series.nunique() > MAX_DRAFT_CATEGORIES or not fraud.any():
        return False
    rates = fraud.groupby(series.astype(str)).mean()
    return bool(rates.isin([0.0, 1.0]).all() and (rates == 1.0).any())


def _bounds(series: pd.Series) -> dict[str, float]:
    largest = float(series.abs().max())
    bound = 10.0 ** math.ceil(math.log10(largest * 10)) if largest > 0 else 1.0
    return {"min": 0.0 if series.min() >= 0 else -bound, "max": bound}


def _identifier(column: str) -> str:
    name = re.sub(r"\W+", "_", str(column)).strip("_").lower() or "entity"
    return name if not name[0].isdigit() else f"e_{name}"


def _entity_block(entity: str, amount: str | None) -> dict[str, Any]:
    features: list[dict[str, Any]] = [{"name": f"{entity}_count_{{window}}", "kind": "count"}]
    if amount is not None:
        features += [
            {"name": f"{entity}_mean_{amount}_{{window}}", "kind": "mean", "of": amount},
            {"name": f"{entity}_ratio_{amount}_{{window}}", "kind": "ratio_to_mean", "of": amount},
        ]
    return {"entity": entity, "windows": ["1d", "7d", "30d"], "features": features}
