"""HTTP tests of the BentoML service through its ASGI app (no server process)."""

from __future__ import annotations

import collections
import datetime as dt
import json
import time

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from fraudops.data import contract as c
from fraudops.logs.predlog import read_log
from fraudops.offline.handbook import compute_features
from fraudops.settings import Settings
from pipelines.training import run_training

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_history):
    """A registry whose @champion was trained on the 80-day simulated history."""
    root = tmp_path_factory.mktemp("service")
    data = root / "history.parquet"
    small_history.to_parquet(data)
    settings = Settings(home=root / "home", data_path=data)
    run_training(settings)
    return settings


TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: (method, path) → the statuses the service answered in this module's tests (all of them, as
#: the client records every response); the last test checks the OpenAPI document declares them.
OBSERVED: collections.defaultdict[tuple[str, str], set[int]] = collections.defaultdict(set)


def _observe(response) -> None:
    OBSERVED[(response.request.method.lower(), response.request.url.path)].add(response.status_code)


@pytest.fixture(scope="module")
def client(trained):
    """One ASGI app per test process (BentoML registers its metrics once per process)."""
    env = {
        "FRAUDOPS_HOME": str(trained.home),
        "FRAUDOPS_DATA_PATH": str(trained.data_path),
        "FRAUDOPS_POLL_INTERVAL_SECONDS": "3600",
        "FRAUDOPS_MAX_BATCH_ROWS": "5",
        "FRAUDOPS_MAX_FEEDBACK_ROWS": "4",
        "FRAUDOPS_MAX_BODY_BYTES": "4096",
        "FRAUDOPS_API_TOKEN": TOKEN,
    }
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        from services.service import FraudService

        app = FraudService.to_asgi()
        with TestClient(app, base_url="http://127.0.0.1:3000", headers=AUTH) as test_client:
            test_client.event_hooks = {"request": [], "response": [_observe]}
            yield test_client


def tx(
    i: int,
    when: str = "2018-06-20T10:00:00",
    card: int = 3,
    terminal: int = 4,
    amount: float = 25.0,
) -> dict:
    return {
        "transaction_id": 10_000_000 + i,
        "tx_datetime": when,
        "customer_id": card,
        "terminal_id": terminal,
        "tx_amount": amount,
    }


def test_score_returns_probability_decision_version_and_features(client):
    body = client.post("/score", json=tx(1)).json()
    assert 0.0 <= body["fraud_probability"] <= 1.0
    assert body["decision"] == (
        "alert" if body["fraud_probability"] >= body["threshold"] else "pass"
    )
    assert body["model_name"] == "fraud-detector" and body["model_version"] == "1"
    assert list(body["features"]) == list(c.FEATURES)
    assert body["latency_ms"] > 0


def test_explain_true_gives_reason_codes_for_a_pass_and_a_bad_value_gets_422(client):
    plain = client.post("/score", json=tx(3)).json()
    assert plain["decision"] == "pass" and plain["reasons"] is None
    explained = client.post("/score?explain=true", json=tx(3)).json()  # a retry: same score
    assert explained["fraud_probability"] == plain["fraud_probability"]
    assert explained["reasons"] and {"feature", "value", "contribution", "phrase"} == set(
        explained["reasons"][0]
    )
    batch = client.post("/score_batch?explain=1", json=[tx(4), tx(5)]).json()
    assert all(row["reasons"] is not None for row in batch)
    refused = client.post("/score?explain=maybe", json=tx(6))
    assert refused.status_code == 422 and "explain" in refused.json()["error"]


def test_served_features_equal_the_offline_features_of_the_same_history(client, small_history):
    card, terminal = (int(v) for v in small_history.iloc[-1][[c.CUSTOMER_ID, c.TERMINAL_ID]])
    when = small_history[c.TX_DATETIME].max() + pd.Timedelta(hours=1)
    request = tx(2, when.isoformat(), card, terminal, 99.0)
    served = client.post("/score", json=request).json()["features"]
    new_row = pd.DataFrame(
        [
            {
                c.TRANSACTION_ID: request["transaction_id"],
                c.TX_DATETIME: when,
                c.CUSTOMER_ID: card,
                c.TERMINAL_ID: terminal,
                c.TX_AMOUNT: 99.0,
                c.LABEL: 0,
            }
        ]
    )
    offline = compute_features(pd.concat([small_history, new_row], ignore_index=True)).iloc[-1]
    np.testing.assert_allclose(
        [served[f] for f in c.FEATURES], offline[list(c.FEATURES)], atol=1e-9
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"tx_amount": None}, "tx_amount"),
        ({"tx_amount": "a lot"}, "tx_amount"),
        ({"tx_amount": -3.0}, "tx_amount"),
        ({"tx_datetime": "not a time"}, "tx_datetime"),
        ({"customer_id": "card-7"}, "customer_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_transaction_gets_422_naming_the_field(client, change, field):
    payload = {k: v for k, v in {**tx(3), **change}.items() if v is not None}
    response = client.post("/score", json=payload)
    assert response.status_code == 422
    assert field in response.text


def test_missing_field_and_non_finite_amount_get_422(client):
    payload = tx(4)
    del payload["terminal_id"]
    missing = client.post("/score", json=payload)
    assert missing.status_code == 422 and "terminal_id" in missing.text
    nan = client.post(
        "/score",
        content=json.dumps({**tx(5), "tx_amount": float("nan")}),
        headers={"content-type": "application/json"},
    )
    assert nan.status_code == 422 and "tx_amount" in nan.text
    garbage = client.post("/score", content=b"{nope", headers={"content-type": "application/json"})
    assert garbage.status_code == 422 and "not valid JSON" in garbage.text


def test_batch_is_scored_in_order_and_limits_are_enforced(client):
    batch = [tx(10 + i, f"2018-06-21T10:0{i}:00", card=77, amount=10.0 * (i + 1)) for i in range(5)]
    rows = client.post("/score_batch", json=batch).json()
    assert [r["transaction_id"] for r in rows] == [t["transaction_id"] for t in batch]
    counts = [r["features"][c.customer_count_feature(1)] for r in rows]
    assert counts == sorted(counts) and counts[-1] - counts[0] == 4  # each saw the earlier ones
    too_many = client.post("/score_batch", json=[*batch, tx(20)])
    assert too_many.status_code == 413 and "at most 5" in too_many.text
    too_big = client.post("/score_batch", json=[tx(30 + i) for i in range(40)])
    assert too_big.status_code == 413
    empty = client.post("/score_batch", json=[])
    assert empty.status_code == 422


def test_bearer_token_is_required_when_configured(client):
    bare = {"Authorization": ""}
    assert client.post("/score", json=tx(40), headers=bare).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert client.post("/score", json=tx(41), headers=wrong).status_code == 401
    assert client.post("/score", json=tx(42)).status_code == 200
    feedback = [{"transaction_id": 1, "is_fraud": True}]
    assert client.post("/feedback", json=feedback, headers=bare).status_code == 401
    assert client.get("/model", headers=bare).status_code == 200  # the model card needs no token


def test_model_readyz_and_docs(client, trained):
    info = client.get("/model").json()
    assert info["version"] == "1" and info["alias"] == "champion"
    assert info["training_window"]["train_start"] and info["metrics"]["average_precision"] > 0
    assert client.get("/readyz").status_code == 200
    docs = client.get("/docs")
    assert docs.status_code == 200 and "<title>fraudops scoring API</title>" in docs.text
    assert "googletagmanager" not in docs.text  # BentoML's page at / loads it; ours does not
    paths = client.get("/docs.json").json()["paths"]
    assert {"/score", "/score_batch", "/feedback"} <= set(paths)


def test_every_scored_row_and_label_is_logged_without_clear_ids(client, trained):
    ours = set(range(10_000_100, 10_000_125))

    def logged() -> pd.DataFrame:
        log = read_log(trained.prediction_log_dir)
        return log[log["transaction_id"].isin(ours)] if len(log) else log

    for start in range(100, 125, 5):  # batches of 5: the limit set for this module
        batch = [tx(i, card=424242, terminal=515151) for i in range(start, start + 5)]
        assert client.post("/score_batch", json=batch).status_code == 200
    assert client.post(
        "/feedback",
        json=[
            {"transaction_id": 10_000_100, "is_fraud": True, "label_time": "2018-06-29T00:00:00"}
        ],
    ).json() == {"accepted": 1, "external": 0}
    deadline = time.monotonic() + 10  # the writer flushes every second, off the request path
    while len(logged()) < 25 and time.monotonic() < deadline:
        time.sleep(0.2)
    log = logged()
    assert len(log) == 25
    assert {"customer_hash", "terminal_hash", "score", "decision", "model_version"} <= set(log)
    assert not {"customer_id", "terminal_id"} & set(log.columns)
    text = log.astype(str).to_string()
    assert "424242" not in text and "515151" not in text
    while read_log(trained.label_log_dir).empty and time.monotonic() < deadline:
        time.sleep(0.2)
    labels = read_log(trained.label_log_dir)
    assert 10_000_100 in set(labels["transaction_id"])
    assert labels["label_time"].max() == pd.Timestamp(dt.datetime(2018, 6, 29))


def test_log_writers_use_the_configured_flush_interval(tmp_path):
    from fraudops.serving.scorer import Scorer

    scorer = Scorer.start(Settings(home=tmp_path, log_flush_seconds=0.2), warm_up=False, poll=False)
    try:
        assert scorer.predictions.flush_seconds == 0.2 == scorer.labels.flush_seconds
    finally:
        scorer.close()


def refused_count() -> float:
    """``fraudops_events_refused_total{reason="ahead"}`` of this process (the ASGI app is
    in-process; BentoML's ``/metrics`` needs its server's multiprocess folder)."""
    import prometheus_client

    labels = {"reason": "ahead"}
    value = prometheus_client.REGISTRY.get_sample_value("fraudops_events_refused_total", labels)
    return value or 0.0


def test_a_request_two_months_ahead_gets_422_is_counted_and_changes_nothing(client, trained):
    card, terminal = 616161, 727272
    base = client.post("/score", json=tx(200, "2018-06-20T12:00:00", card, terminal, 30.0))
    assert base.status_code == 200
    counted = refused_count()
    future = client.post("/score", json=tx(201, "2018-08-20T12:00:00", card, terminal, 30.0))
    assert future.status_code == 422, future.text
    error = future.json()["error"]
    assert "tx_datetime" in error and "watermark" in error and "2018-08-20T12:00:00" in error
    batch = [tx(202, "2018-06-20T12:01:00", card, terminal), tx(203, "2018-08-20T12:02:00")]
    refused = client.post("/score_batch", json=batch)
    assert refused.status_code == 422 and "transactions[1].tx_datetime" in refused.json()["error"]
    assert refused_count() == counted + 3  # the request's one row, the batch's two
    after = client.post("/score", json=tx(204, "2018-06-20T12:03:00", card, terminal, 30.0))
    assert after.status_code == 200
    assert after.json()["features"][c.customer_count_feature(1)] == 2.0  # 200 and 204 only
    deadline = time.monotonic() + 10
    ids = {10_000_200 + i for i in range(5)}
    while time.monotonic() < deadline:
        log = read_log(trained.prediction_log_dir)
        if len(log) and {10_000_200, 10_000_204} <= set(log["transaction_id"]):
            break
        time.sleep(0.2)
    assert set(log["transaction_id"]) & ids == {10_000_200, 10_000_204}  # refused: not logged


def test_a_retried_transaction_id_is_not_counted_twice(client):
    first = client.post("/score", json=tx(210, "2018-06-20T13:00:00", 626262, 737373, 30.0))
    retry = client.post("/score", json=tx(210, "2018-06-20T13:00:00", 626262, 737373, 30.0))
    assert first.status_code == retry.status_code == 200
    assert retry.json()["features"] == first.json()["features"]
    following = client.post("/score", json=tx(211, "2018-06-20T13:01:00", 626262, 737373, 30.0))
    assert following.json()["features"][c.customer_count_feature(1)] == 2.0


def refused_conflicts() -> float:
    """``fraudops_events_refused_total{reason="conflict"}`` of this process."""
    import prometheus_client

    labels = {"reason": "conflict"}
    value = prometheus_client.REGISTRY.get_sample_value("fraudops_events_refused_total", labels)
    return value or 0.0


def test_a_transaction_id_reused_with_other_values_gets_422_not_500(client, small_history):
    """The API fuzz test's 500: an id of the warmed history (another card, another time), on a
    card and terminal the state has never seen, with amount 0 (its card window was empty)."""
    held = small_history.iloc[-1]
    assert int(held[c.CUSTOMER_ID]) != 560 and int(held[c.TERMINAL_ID]) != 1170707
    reused = {
        "customer_id": 560,
        "terminal_id": 1170707,
        "tx_datetime": "2018-06-20T00:00:01Z",  # inside the retention
        "tx_amount": 0.0,
        "transaction_id": int(held[c.TRANSACTION_ID]),
    }
    counted = refused_conflicts()
    response = client.post("/score", json=reused)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error.startswith("transaction_id ") and "already scored with other values" in error
    batch = [tx(220, "2018-06-20T00:00:02", 560, 1170707, 1.0), reused]
    refused = client.post("/score_batch", json=batch)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"].startswith("transactions[1].transaction_id ")
    assert refused_conflicts() == counted + 3  # the request's one row, the batch's two
    # nothing of either request entered the state: a new transaction of the card is its first
    first = client.post("/score", json=tx(221, "2018-06-20T00:00:03", 560, 1170707, 1.0))
    assert first.status_code == 200
    assert first.json()["features"][c.customer_count_feature(1)] == 1.0
    # the same id with the original's values is a retry: scored, 200
    retry = {
        "customer_id": int(held[c.CUSTOMER_ID]),
        "terminal_id": int(held[c.TERMINAL_ID]),
        "tx_datetime": held[c.TX_DATETIME].isoformat(),
        "tx_amount": float(held[c.TX_AMOUNT]),
        "transaction_id": int(held[c.TRANSACTION_ID]),
    }
    assert client.post("/score", json=retry).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"transaction_id": False}, "transaction_id"),
        ({"transaction_id": "123"}, "transaction_id"),
        ({"customer_id": True}, "customer_id"),
        ({"terminal_id": 4.5}, "terminal_id"),
        ({"tx_amount": "12.5"}, "tx_amount"),
        ({"tx_amount": True}, "tx_amount"),
        ({"tx_datetime": 1529488800}, "tx_datetime"),
        ({"tx_datetime": "2018-06-20"}, "tx_datetime"),
    ],
)
def test_a_value_of_another_json_type_gets_422_naming_the_field(client, change, field):
    response = client.post("/score", json={**tx(300), **change})
    assert response.status_code == 422, response.text
    assert field in response.json()["error"], response.text
    batch = client.post("/score_batch", json=[tx(301), {**tx(302), **change}])
    assert batch.status_code == 422 and field in batch.json()["error"]


def test_whole_numbers_are_ids_and_labels_are_booleans_or_0_or_1(client):
    payload = {**tx(310, "2018-06-20T14:00:00"), "transaction_id": 10_000_310.0, "tx_amount": 7}
    scored = client.post("/score", json=payload)
    assert scored.status_code == 200, scored.text
    assert scored.json()["transaction_id"] == 10_000_310
    labels = [
        {"transaction_id": 10_000_310, "is_fraud": 1},
        {"transaction_id": 1, "is_fraud": False, "external": True},
    ]
    assert client.post("/feedback", json=labels).json() == {"accepted": 2, "external": 1}
    for wrong in ("true", 2, None):
        refused = client.post("/feedback", json=[{"transaction_id": 1, "is_fraud": wrong}])
        assert refused.status_code == 422 and "is_fraud" in refused.json()["error"]
    bad_id = client.post("/feedback", json=[{"transaction_id": False, "is_fraud": True}])
    assert bad_id.status_code == 422 and "transaction_id" in bad_id.json()["error"]


def test_a_body_that_is_not_json_gets_415(client):
    for path in ("/score", "/score_batch", "/feedback"):
        response = client.post(path, content=b"a=1", headers={"content-type": "text/plain"})
        assert response.status_code == 415 and "application/json" in response.json()["error"]


def test_a_post_without_a_content_type_gets_415_as_a_cross_site_form_would(client):
    body = json.dumps(tx(320, "2018-06-20T14:00:00")).encode()
    for path in ("/score", "/score_batch", "/feedback"):
        response = client.post(path, content=body)
        _observe(response)
        assert response.status_code == 415, response.text
        assert "content-type application/json is required" in response.json()["error"]


def test_a_request_for_another_host_name_gets_400_before_anything_else(client):
    rebound = {"host": "fraud.attacker.test"}  # a page that rebinds its name to 127.0.0.1
    for path in ("/score", "/feedback"):
        response = client.post(path, json={}, headers=rebound)
        assert response.status_code == 400 and "host" in response.json()["error"].lower()
    assert client.get("/model", headers=rebound).status_code == 400


def test_more_labels_than_the_cap_get_413_naming_them_and_none_is_kept(client):
    labels = [{"transaction_id": i, "is_fraud": 1, "external": True} for i in range(5)]
    response = client.post("/feedback", json=labels)
    _observe(response)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "labels: 5 rows, at most 4"
    assert client.post("/feedback", json=labels[:4]).json() == {"accepted": 4, "external": 4}


def labels_logged(settings) -> pd.DataFrame:
    from fraudops.logs.records import LABEL_ID

    log = read_log(settings.label_log_dir)
    return log if log.empty else log.sort_values(LABEL_ID, kind="stable")


def test_a_label_of_a_transaction_never_scored_is_refused_unless_flagged_external(client, trained):
    time.sleep(1.5)  # the label log flushes every second: compare settled logs
    before = len(labels_logged(trained))
    unknown = [
        {"transaction_id": 77_000_001, "is_fraud": True, "external": True},
        {"transaction_id": 77_000_002, "is_fraud": True},
    ]
    refused = client.post("/feedback", json=unknown)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error.startswith("labels[1].transaction_id: transaction 77000002 was not scored")
    assert "external: true" in error and "whole request is refused" in error
    external = client.post("/feedback", json=unknown[:1])
    assert external.json() == {"accepted": 1, "external": 1}
    time.sleep(1.5)
    log = labels_logged(trained)
    assert len(log) == before + 1  # the refused request logged nothing
    row = log[log["transaction_id"] == 77_000_001].iloc[0]
    assert bool(row["external"]) and not bool(row["correction"])


def test_a_confirmed_fraud_is_downgraded_only_by_a_correction_which_is_logged(client, trained):
    scored = client.post("/score", json=tx(330, "2018-06-20T15:00:00"))
    assert scored.status_code == 200, scored.text
    event = scored.json()["transaction_id"]
    assert client.post("/feedback", json=[{"transaction_id": event, "is_fraud": True}]).json() == {
        "accepted": 1,
        "external": 0,
    }
    cleared = [{"transaction_id": event, "is_fraud": False}]
    refused = client.post("/feedback", json=cleared)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"].startswith(
        f"labels[0].is_fraud: transaction {event} is a confirmed fraud"
    )
    # within one request too: fraud, then false without correction
    mixed = [{"transaction_id": event, "is_fraud": True}, *cleared]
    assert client.post("/feedback", json=mixed).status_code == 422
    corrected = [{**cleared[0], "correction": True}]
    assert client.post("/feedback", json=corrected).json() == {"accepted": 1, "external": 0}
    assert client.post("/feedback", json=cleared).status_code == 200  # no longer a fraud
    time.sleep(1.5)
    log = labels_logged(trained)
    mine = log[log["transaction_id"] == event]
    assert mine["is_fraud"].tolist() == [1, 0, 0]
    assert mine["correction"].tolist() == [False, True, False]


#: Statuses the service answers that this module does not provoke: 413 on /score and
#: /feedback (a body over the limit, as on /score_batch above; the API fuzz test sends them).
KNOWN_STATUSES = {
    ("post", "/score"): {200, 401, 413, 415, 422},
    ("post", "/score_batch"): {200, 413, 415, 422},
    ("post", "/feedback"): {200, 401, 413, 415, 422},
    ("get", "/model"): {200},
    ("get", "/readyz"): {200},
}


def test_an_unreachable_online_state_gets_503_not_500(client, monkeypatch):
    from fraudops.streaming.state import OnlineState, StateUnavailable

    def down(*_args, **_kwargs):
        raise StateUnavailable("the Redis online state is unavailable: Connection refused")

    monkeypatch.setattr(OnlineState, "observe_many", down)
    monkeypatch.setattr(OnlineState, "apply_labels", down)
    # BentoML words every 5xx body itself; the middleware sends the real reason instead
    scored = client.post("/score", json=tx(9_100, "2018-06-21T10:00:00"))
    assert scored.status_code == 503, scored.text
    assert scored.json()["error"].endswith("Connection refused; retry later")
    labelled = client.post("/feedback", json=[{"transaction_id": 9_100, "is_fraud": True}])
    assert labelled.status_code == 503, labelled.text
    assert "no label was logged, retry later" in labelled.json()["error"]


def test_the_openapi_document_declares_what_the_service_answers(client):
    """Run last in the module: every status its tests observed must be declared."""
    spec = client.get("/docs.json").json()
    scheme = spec["components"]["securitySchemes"]["bearerAuth"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"]["type"] == "string"
    for path in ("/score", "/score_batch", "/feedback"):
        operation = spec["paths"][path]["post"]
        assert operation["security"] == [{"bearerAuth": []}]
        assert operation["requestBody"]["required"] is True
        assert {"200", "401", "413", "415", "422"} <= set(operation["responses"])
        assert not {"404", "500"} & set(operation["responses"])
        assert "Host header" in operation["responses"]["400"]["description"]
        for status, answer in operation["responses"].items():
            if status != "200":
                schema = answer["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, status)
    assert "security" not in spec["paths"]["/model"]["get"]
    assert "security" not in spec  # no global requirement: only the scoring endpoints
    body = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"] == "#/components/schemas/TransactionIn"
    request = spec["components"]["schemas"]["TransactionIn"]  # the handbook spec's model
    assert request["example"]["transaction_id"] == 1754155
    assert list(request["properties"]) == [col.lower() for col in c.RAW_COLUMNS]
    assert request["additionalProperties"] is False

    observed = {op: set(statuses) for op, statuses in OBSERVED.items()}
    assert {200, 401, 415, 422} <= observed[("post", "/score")]  # the client recorded them
    undocumented = {("get", "/docs"), ("get", "/docs.json")}  # the documentation itself
    for (method, path), statuses in [*KNOWN_STATUSES.items(), *observed.items()]:
        if (method, path) in undocumented:
            continue
        declared = set(spec["paths"][path][method]["responses"])
        assert {str(s) for s in statuses} <= declared, (method, path, statuses, declared)
