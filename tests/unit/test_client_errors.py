"""A 4xx the service answers on purpose is one INFO line, an expected 503 one WARNING line;
another 5xx keeps its traceback."""

from __future__ import annotations

import logging

import pytest
from bentoml.exceptions import BentoMLException, InternalServerError, InvalidArgument

from services.client_errors import HTTP_APP_LOGGER, install

pytestmark = pytest.mark.unit


class Keep(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def logged(exc: BentoMLException) -> logging.LogRecord:
    """What BentoML's ``log_exception`` logs while ``exc`` is being handled."""
    logger = logging.getLogger(HTTP_APP_LOGGER)
    keep = Keep()
    logger.addHandler(keep)
    try:
        try:
            raise exc
        except BentoMLException:
            logger.error("Exception on %s [%s]", "/score", "POST", exc_info=True)
    finally:
        logger.removeHandler(keep)
    return keep.records[-1]


def test_a_refused_request_is_one_info_line_naming_status_and_message():
    install()
    install()  # once per process, however often the service starts
    assert len(logging.getLogger(HTTP_APP_LOGGER).filters) == 1
    record = logged(InvalidArgument("tx_amount: Input should be a valid number"))
    assert record.levelno == logging.INFO and record.exc_info is None
    assert record.getMessage() == (
        "/score POST answered 400: tx_amount: Input should be a valid number"
    )


def test_a_server_error_keeps_its_traceback():
    install()
    record = logged(InternalServerError("boom"))
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_an_expected_503_is_one_warning_line_with_its_reason():
    from services.service import NotReady

    install()
    record = logged(NotReady("no @champion model is loaded yet"))
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage() == "/score POST answered 503: no @champion model is loaded yet"
