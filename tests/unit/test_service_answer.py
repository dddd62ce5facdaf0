"""The scoring answers are written by orjson, not BentoML's pydantic serialisation, and say
the same: the parsed body equals what BentoML would have sent for the same value."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import numpy as np
import pytest
from _bentoml_impl.serde import JSONSerde

from services.service import FraudService, answer

pytestmark = pytest.mark.unit

ROW = {
    "transaction_id": 7,
    "fraud_probability": np.float64(0.25),
    "decision": "alert",
    "threshold": 0.1,
    "model_version": "3",
    "features": {"TX_AMOUNT": 12.5, "GAP": math.nan, "COUNT": np.int64(4), "CHANNEL": "pos"},
    "reasons": [{"feature": "TX_AMOUNT", "contribution": np.float32(0.5)}],
    "latency_ms": math.inf,
    "nothing": None,
}


def bentoml_body(api: str, value: Any) -> bytes:
    """The body BentoML 1.4 sends for ``value`` returned by ``api``."""
    spec = FraudService.apis[api].output_spec

    async def render() -> bytes:
        response = await spec.to_http_response(value, JSONSerde())
        chunks = getattr(response, "body_iterator", None)
        if chunks is None:
            return bytes(response.body)
        return b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)

    return asyncio.run(render())


@pytest.mark.parametrize(("api", "value"), [("score", ROW), ("score_batch", [ROW, ROW])])
def test_an_answer_parses_to_what_bentoml_would_have_sent(api: str, value: Any) -> None:
    plain = json.loads(json.dumps(value, default=lambda v: v.item()))  # numpy → Python
    expected = json.loads(bentoml_body(api, plain))
    response = answer(value)
    assert response.media_type == "application/json"
    assert json.loads(response.body) == expected
    got = json.loads(response.body)
    first = got if api == "score" else got[0]
    assert first["features"]["GAP"] is None and first["latency_ms"] is None
    assert first["fraud_probability"] == 0.25 and first["features"]["COUNT"] == 4
