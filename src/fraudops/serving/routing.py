"""Canary routing: which events the challenger decides for, sticky by entity.

An entity (the card, say) is in the canary when the keyed hash of its value, read as a number
in [0, 1), is below the share. The key is the challenger's version, so an entity stays in (or
out of) one canary for its whole life, every replica routes it the same way, and the next
canary draws another population. BLAKE2b (Python's ``hashlib``) spreads keys uniformly, so
the share of entities routed follows the binomial law around ``share``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np

from fraudops.spec.model import DatasetSpec

_SCALE = float(2**64)


def bucket(value: Hashable, salt: str) -> float:
    """The entity's position in [0, 1): the first 8 bytes of BLAKE2b(``salt``, ``value``)."""
    digest = hashlib.blake2b(
        repr(value).encode(), digest_size=8, key=salt.encode()[:64], person=b"fraudops-canary"
    ).digest()
    return int.from_bytes(digest, "big") / _SCALE


def routing_column(spec: DatasetSpec) -> str:
    """The raw column whose value makes routing sticky: the entity ranked by Precision@k (the
    card, in the shipped specs), else the first entity, else the event id."""
    ranked = spec.roles().entity
    if ranked is not None:
        return ranked
    if spec.entities:
        return spec.entities[0].column
    return spec.event_id.column


def canary_rows(
    events: Sequence[Mapping[str, Any]], column: str, share: float, salt: str
) -> np.ndarray:
    """Which of ``events`` (raw columns) the canary decides for: a boolean array of n.

    Args:
        column: :func:`routing_column`; share: in [0, 1]; salt: the challenger's version.
    """
    if share <= 0.0:
        return np.zeros(len(events), dtype=bool)
    return np.fromiter(
        (bucket(event[column], salt) < share for event in events), dtype=bool, count=len(events)
    )
