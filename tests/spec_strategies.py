"""Hypothesis strategies of random dataset specs and event streams, shared by the parity tests
(online vs offline engine, partitioned vs single-process engine)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from hypothesis import strategies as st

from fraudops.spec.model import DatasetSpec

START = pd.Timestamp("2024-03-01")
WINDOWS = [60, 600, 3_600, 6 * 3_600, 86_400, 2 * 86_400, 7 * 86_400]
KINDS = ["count", "sum", "mean", "max", "ratio_to_mean", "distinct_count", "label_rate"]
INT_KEYS, STR_KEYS = [0, 1, 2, 3], ["a", "b", "c", "d"]


@st.composite
def specs(draw: st.DrawFn) -> DatasetSpec:
    """Random specs: 1–3 entities (int or text keys), 1–3 blocks of random kinds and windows."""
    n_entities = draw(st.integers(1, 3))
    entities = [{"name": f"e{i}", "column": f"k{i}"} for i in range(n_entities)]
    delay = draw(st.sampled_from([0, 60, 3_600, 86_400, 2 * 86_400]))
    blocks = []
    for b in range(draw(st.integers(1, 3))):
        lag = draw(st.sampled_from(["none", "label_delay", "label_arrival"]))
        kinds = draw(st.sets(st.sampled_from(KINDS if lag != "none" else KINDS[:-1]), min_size=1))
        features = []
        for kind in sorted(kinds):
            feature: dict[str, Any] = {"kind": kind}
            if kind in {"sum", "mean", "max", "ratio_to_mean"}:
                feature["of"] = draw(st.sampled_from(["amt", "v"]))
            elif kind == "distinct_count":
                others = ["cat", "amt", *(e["column"] for e in entities)]
                feature["of"] = draw(st.sampled_from(others))
            feature["name"] = f"b{b}_{kind}_{feature.get('of', '')}_{{window}}"
            features.append(feature)
        windows = draw(st.lists(st.sampled_from(WINDOWS), min_size=1, max_size=3, unique=True))
        blocks.append(
            {
                "entity": draw(st.sampled_from(entities))["name"],
                "windows": windows,
                "lag": lag,
                "features": features,
            }
        )
    gaps = draw(st.sets(st.sampled_from([e["name"] for e in entities])))
    label: dict[str, Any] = {"column": "y", "delay": delay}
    if any(block["lag"] == "label_arrival" for block in blocks):
        label["known_at"] = "known"
    return DatasetSpec.model_validate(
        {
            "name": "random",
            "event_id": {"column": "id"},
            "event_time": {"column": "ts"},
            "label": label,
            "entities": entities,
            "numeric": [{"column": "amt", "min": 0}, {"column": "v", "feature": False}],
            "categorical": [{"column": "cat"}],
            "calendar": [
                {"name": "hour", "kind": "hour"},
                {"name": "weekend", "kind": "weekend"},
                {"name": "night", "kind": "night", "hours": [22, 5]},
            ],
            "aggregations": blocks,
            "time_since_previous": [{"name": f"gap_{e}", "entity": e} for e in sorted(gaps)],
        }
    )


@st.composite
def streams(draw: st.DrawFn, spec: DatasetSpec) -> tuple[pd.DataFrame, list[bool]]:
    """A stream in arrival order: mostly in time, with same-second ties and some late events.

    With labels counted by arrival (``label.known_at``) the stream is in time order (a late
    event counts the labels fed before it arrived, which its time cannot say offline) and the
    ``known`` column says when ``replay`` feeds each label: at its event when ``early``."""
    n = draw(st.integers(1, 50))
    seconds = sorted(
        draw(
            st.lists(
                st.one_of(st.integers(0, 4 * 86_400), st.sampled_from([0, 3_600, 86_400])),
                min_size=n,
                max_size=n,
            )
        )
    )
    late = 0 if spec.label.known_at else draw(st.integers(0, 3))
    for _ in range(late):  # late arrivals: move an event later in the stream
        i, j = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        seconds.insert(max(i, j), seconds.pop(min(i, j)))
    columns: dict[str, Any] = {
        "id": draw(st.permutations(range(1000, 1000 + n))),
        "ts": list(START + pd.to_timedelta(seconds, unit="s")),
        "amt": [c / 100 for c in draw(st.lists(st.integers(0, 99_999), min_size=n, max_size=n))],
        "v": [c / 8 for c in draw(st.lists(st.integers(-40, 40), min_size=n, max_size=n))],
        "cat": draw(st.lists(st.sampled_from(["pos", "web", "atm"]), min_size=n, max_size=n)),
        "y": draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)),
    }
    for entity in spec.entities:
        pool = draw(st.sampled_from([INT_KEYS, STR_KEYS]))[: draw(st.integers(1, 4))]
        columns[entity.column] = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    early = draw(st.lists(st.booleans(), min_size=n, max_size=n))  # labels fed at once
    if spec.label.known_at:
        columns[spec.label.known_at] = [
            t if e else pd.NaT for t, e in zip(columns["ts"], early, strict=True)
        ]
    return pd.DataFrame(columns), early
