"""One log line, no traceback, for a request the service refused with a 4xx.

BentoML logs every exception raised by an API method at ERROR with its traceback
(``bentoml._internal.server.http_app.log_exception``), the 4xx it answers on purpose included:
a bad field cost 25 log lines. :class:`ClientErrorLines` rewrites those records as one INFO line
naming the status and the message the client got, and an expected 503 (an exception class with
``expected = True``: no champion yet, the state's store down) as one WARNING line; other 5xx
keep their traceback.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException

#: The logger BentoML's ``log_exception`` writes to.
HTTP_APP_LOGGER = "bentoml._internal.server.http_app"


class ClientErrorLines(logging.Filter):
    """Rewrite a 4xx (or expected 5xx) :class:`BentoMLException` record as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, BentoMLException):
            return True
        status = int(exc.error_code)
        expected = getattr(exc, "expected", False)
        if status < 500 or expected:
            where = record.args if isinstance(record.args, tuple) else ()
            record.msg = "%s %s answered %d: %s"
            record.args = (*where[:2], status, exc.message)
            record.exc_info, record.exc_text = None, None
            level = logging.WARNING if status >= 500 else logging.INFO
            record.levelno, record.levelname = level, logging.getLevelName(level)
        return True


def install() -> None:
    """Add :class:`ClientErrorLines` to BentoML's HTTP app logger (once per process)."""
    logger = logging.getLogger(HTTP_APP_LOGGER)
    if not any(isinstance(f, ClientErrorLines) for f in logger.filters):
        logger.addFilter(ClientErrorLines())
