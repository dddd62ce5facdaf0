import json

import pytest
from pydantic import BaseModel, ValidationError

from fraudops.data import contract as c
from fraudops.serving.api_models import EXAMPLE_TRANSACTION, ErrorOut, FeedbackOut, spec_api
from fraudops.spec import default_spec

HANDBOOK = spec_api(default_spec())
TransactionIn, LabelIn, ScoreOut = HANDBOOK.transaction, HANDBOOK.label, HANDBOOK.score

pytestmark = pytest.mark.unit

LABEL = {"transaction_id": 1754155, "is_fraud": True, "label_time": "2018-10-09T08:00:00"}


def test_request_fields_are_the_contract_raw_columns_in_lower_case():
    assert list(TransactionIn.model_fields) == [col.lower() for col in c.RAW_COLUMNS]


@pytest.mark.parametrize("amount", [-0.01, float("nan"), float("inf")])
def test_negative_or_non_finite_amount_is_refused(amount):
    with pytest.raises(ValidationError, match="tx_amount"):
        TransactionIn(**{**EXAMPLE_TRANSACTION, "tx_amount": amount})


def validate(model: type[BaseModel], body: dict, *, json_mode: bool) -> BaseModel:
    """As BentoML does (``model_validate`` of the parsed body), or in pydantic's JSON mode."""
    text = json.dumps(body)
    return model.model_validate_json(text) if json_mode else model.model_validate(json.loads(text))


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("transaction_id", False, "not a boolean"),
        ("transaction_id", True, "not a boolean"),
        ("transaction_id", "123", "not the string '123'"),
        ("customer_id", "123", "not the string '123'"),
        ("terminal_id", 1.5, "not a fraction"),
        ("terminal_id", None, "not null"),
        ("customer_id", [1], "not an array"),
        ("transaction_id", 2.0**60, "without a fraction or exponent"),  # digits lost
        ("tx_amount", "12.5", "JSON number, not the string '12.5'"),
        ("tx_amount", True, "JSON number, not a boolean"),
        ("tx_amount", False, "JSON number, not a boolean"),
        ("tx_amount", {"value": 1}, "JSON number, not an object"),
        ("tx_datetime", 1538388900, "ISO 8601"),  # Unix time
        ("tx_datetime", "1538388900", "ISO 8601"),
        ("tx_datetime", "2018-10-01", "ISO 8601"),  # a date alone
        ("tx_datetime", True, "ISO 8601"),
    ],
)
def test_a_value_of_another_json_type_is_refused_naming_the_field(field, value, said, json_mode):
    with pytest.raises(ValidationError) as caught:
        validate(TransactionIn, {**EXAMPLE_TRANSACTION, field: value}, json_mode=json_mode)
    (error,) = caught.value.errors()
    assert error["loc"] == (field,)
    assert said in error["msg"]


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize(
    ("field", "value", "read"),
    [
        ("transaction_id", 7.0, 7),  # a whole JSON number is the integer
        ("customer_id", 1e3, 1000),
        ("terminal_id", 2.0**53, 2**53),
        ("tx_amount", 12, 12.0),  # an integer is a number
        ("tx_datetime", "2018-10-01 10:15:00", "2018-10-01T10:15:00"),
        ("tx_datetime", "2018-10-01T12:15:00.5+02:00", "2018-10-01T10:15:00.500000"),
    ],
)
def test_values_of_the_right_json_type_are_read(field, value, read, json_mode):
    parsed = validate(TransactionIn, {**EXAMPLE_TRANSACTION, field: value}, json_mode=json_mode)
    got = getattr(parsed, field)
    assert (got.isoformat() if field == "tx_datetime" else got) == read
    assert type(got) is type(getattr(TransactionIn.model_validate(EXAMPLE_TRANSACTION), field))


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize(("value", "read"), [(True, True), (False, False), (1, True), (0, False)])
def test_is_fraud_is_a_boolean_or_0_or_1(value, read, json_mode):
    assert validate(LabelIn, {**LABEL, "is_fraud": value}, json_mode=json_mode).is_fraud is read


@pytest.mark.parametrize("json_mode", [False, True])
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("is_fraud", 2),
        ("is_fraud", 1.0),
        ("is_fraud", "true"),
        ("is_fraud", "1"),
        ("is_fraud", None),
        ("transaction_id", False),
        ("label_time", 1538388900),
        ("label_time", "2018-10-09"),
    ],
)
def test_label_of_another_json_type_is_refused_naming_the_field(field, value, json_mode):
    with pytest.raises(ValidationError) as caught:
        validate(LabelIn, {**LABEL, field: value}, json_mode=json_mode)
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


def test_label_time_may_be_left_out_or_null():
    assert LabelIn.model_validate({"transaction_id": 1, "is_fraud": False}).label_time is None
    assert LabelIn.model_validate({**LABEL, "label_time": None}).label_time is None


@pytest.mark.parametrize("model", [TransactionIn, LabelIn, ScoreOut, FeedbackOut, ErrorOut])
def test_every_model_has_an_example_that_it_validates(model):
    example = model.model_json_schema()["example"]
    model.model_validate(json.loads(json.dumps(example)))
    model.model_validate_json(json.dumps(example))


def test_the_json_schema_declares_the_strict_types():
    properties = TransactionIn.model_json_schema()["properties"]
    assert {properties[f]["type"] for f in ("transaction_id", "customer_id", "terminal_id")} == {
        "integer"
    }
    assert properties["tx_amount"]["type"] == "number"
    assert properties["tx_datetime"] == {**properties["tx_datetime"], "type": "string"}
    assert properties["tx_datetime"]["format"] == "date-time"
    is_fraud = LabelIn.model_json_schema()["properties"]["is_fraud"]
    assert is_fraud["anyOf"] == [{"type": "boolean"}, {"type": "integer", "enum": [0, 1]}]


def test_a_validation_answer_names_each_field_where_it_is_in_the_body():
    from services.middleware import error_body

    def answer(body_name: str | None, errors: list) -> dict:
        bentoml = {"error": "2 validation errors for X", "detail": errors}
        replaced = error_body(422, b"application/json", json.dumps(bentoml).encode(), body_name)
        return json.loads(replaced) if replaced is not None else bentoml

    with pytest.raises(ValidationError) as caught:
        TransactionIn.model_validate({**EXAMPLE_TRANSACTION, "tx_amount": "1", "customer_id": 1.5})
    errors = caught.value.errors(include_context=False, include_input=False)
    assert answer("", errors)["error"] == (
        "customer_id: Input should be a JSON integer, not a fraction; "
        "tx_amount: Input should be a JSON number, not the string '1'"
    )
    in_batch = [{**e, "loc": ["root", 3, *e["loc"]]} for e in errors]
    assert answer("transactions", in_batch)["error"].startswith("transactions[3].customer_id: ")
    assert answer("transactions", in_batch)["detail"] == in_batch  # BentoML's detail is kept
    assert answer("labels", [{"loc": ["root"], "msg": "too short"}])["error"] == "labels: too short"
    assert answer("", [{"loc": [], "msg": "not an object"}])["error"] == "body: not an object"
    many = [{"loc": ["root", i, "is_fraud"], "msg": "no"} for i in range(8)]
    assert answer("labels", many)["error"].endswith("labels[4].is_fraud: no (and 3 more)")
    assert answer(None, errors)["error"] == "2 validation errors for X"  # not a guarded route
