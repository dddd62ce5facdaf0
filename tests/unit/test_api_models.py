import pytest
from pydantic import ValidationError

from fraudops import contract as c
from fraudops.api_models import EXAMPLE_TRANSACTION, TransactionIn

pytestmark = pytest.mark.unit


def test_request_fields_are_the_contract_raw_columns_in_lower_case():
    assert list(TransactionIn.model_fields) == [col.lower() for col in c.RAW_COLUMNS]


@pytest.mark.parametrize("amount", [-0.01, float("nan"), float("inf")])
def test_negative_or_non_finite_amount_is_refused(amount):
    with pytest.raises(ValidationError, match="tx_amount"):
        TransactionIn(**{**EXAMPLE_TRANSACTION, "tx_amount": amount})
