"""ASGI guard in front of the service: bearer token, method, media type, body size, error bodies.

- The ``Host`` header must be one the service answers to
  (:func:`fraudops.serving.exposure.answered_hosts`, Starlette's ``TrustedHostMiddleware``),
  else 400: no DNS rebinding onto a service bound to 127.0.0.1.
- With ``FRAUDOPS_API_TOKEN`` set, ``/score`` and ``/score_batch`` need
  ``Authorization: Bearer <token>`` (compared in constant time), else 401; ``/feedback`` needs
  ``FRAUDOPS_LABEL_TOKEN`` when that is set (a scoring token cannot write labels, nor the label
  token score), else the API token.
- Those routes take ``POST`` only (else 405 with ``Allow``) and a JSON body: a
  ``Content-Type`` other than ``application/json``, or none at all (what a cross-site form or a
  no-cors fetch sends), gets 415.
- A body over ``FRAUDOPS_MAX_BODY_BYTES`` gets 413 before it is parsed, whether or not the
  client sent a ``Content-Length``.
- BentoML answers request-validation errors with 400; they become 422, and their ``error``
  (BentoML's "1 validation error for TransactionInIODescriptor") names each failing field with
  pydantic's message: ``tx_amount: Input should be a JSON number, not a string``, or
  ``transactions[1].tx_amount: ...`` in a batch (BentoML's ``detail`` list is kept). A body
  that is not JSON gets 422 naming the position.
- Every error answer of the whole app (4xx and 5xx, any route) is a JSON object with a
  non-empty ``error`` text: Starlette's plain-text 404/405 get one, and BentoML's
  ``[{"error": ...}]`` (a list, for its own 4xx exceptions) is unwrapped.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import MutableMapping
from contextvars import ContextVar
from http import HTTPStatus
from typing import Any

from pydantic import SecretStr
from starlette.middleware.trustedhost import TrustedHostMiddleware

from fraudops.serving.exposure import answered_hosts
from fraudops.settings import Settings

GUARDED = frozenset({"/score", "/score_batch", "/feedback"})
#: Name of each guarded route's body in validation messages ("" for an object: its fields).
BODY_NAMES = {"/score": "", "/score_batch": "transactions", "/feedback": "labels"}
#: Errors listed in a validation message; the rest are counted.
SHOWN_ERRORS = 5
_BENTOML_VALIDATION = re.compile(r"[0-9]+ validation errors? for ")
JSON_MEDIA_TYPE = b"application/json"
Scope = MutableMapping[str, Any]


async def _reply(
    send: Any, status: int, error: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", JSON_MEDIA_TYPE),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


def validation_message(detail: list[Any], body_name: str = "") -> str | None:
    """``"where: message"`` for each of pydantic's errors in ``detail`` (BentoML's list of
    ``{"loc": [...], "msg": ...}``), joined by "; "; None if ``detail`` is not such a list.

    The location starts at ``body_name`` (BentoML's ``root`` of a list body is dropped):
    ``tx_amount``, ``transactions[1].tx_amount``; an empty one is ``body``.
    """
    parts = []
    for item in detail[:SHOWN_ERRORS]:
        if not isinstance(item, dict) or not isinstance(item.get("msg"), str):
            return None
        loc = list(item.get("loc") or [])
        if loc[:1] == ["root"]:
            loc = loc[1:]
        where = body_name
        for key in loc:
            where += f"[{key}]" if isinstance(key, int) else f".{key}" if where else str(key)
        parts.append(f"{where or 'body'}: {item['msg']}")
    if not parts:
        return None
    more = len(detail) - SHOWN_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def error_body(
    status: int, content_type: bytes, body: bytes, body_name: str | None = None
) -> bytes | None:
    """The body to send instead of an error answer's ``body``; None to keep it.

    Kept: a JSON object whose ``error`` (or ``detail``) is non-empty, except BentoML's
    validation answer on a guarded route (``body_name`` not None), whose ``error`` becomes
    :func:`validation_message`. Else ``{"error": ...}`` with the one object of a JSON list,
    the plain text of the answer or the status phrase.
    """
    media = content_type.split(b";")[0].strip().lower()
    text = body.decode("utf-8", errors="replace").strip()
    parsed: Any = None
    if media == JSON_MEDIA_TYPE or media.endswith(b"+json"):
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            parsed = None
        if (
            body_name is not None
            and status == 422
            and isinstance(parsed, dict)
            and isinstance(parsed.get("error"), str)
            and _BENTOML_VALIDATION.match(parsed["error"])
            and isinstance(parsed.get("detail"), list)
            and (message := validation_message(parsed["detail"], body_name))
        ):
            return json.dumps({**parsed, "error": message}).encode()
        if isinstance(parsed, dict) and (parsed.get("error") or parsed.get("detail")):
            return None
        single = parsed[0] if isinstance(parsed, list) and len(parsed) == 1 else None
        if isinstance(single, dict) and (single.get("error") or single.get("detail")):
            return json.dumps(single).encode()  # BentoML's ({"error": ...},)
        text = ""  # a JSON answer without a message: the phrase says more than its text
    message = text[:1000] if text and media == b"text/plain" else _phrase(status)
    return json.dumps({"error": message}).encode()


def _secret(value: SecretStr | None) -> bytes | None:
    return value.get_secret_value().encode() if value else None


#: Per request, a box for the real message of a 5xx the service raises: BentoML words every
#: 5xx body itself ("An unexpected error has occurred"), so :func:`tell_server_error` puts the
#: message here and :class:`_ErrorBodies` sends it. The API method runs in a worker thread with
#: a copy of the request's context: the copy holds the same box.
SERVER_ERROR: ContextVar[dict[str, str] | None] = ContextVar("fraudops_server_error", default=None)


def tell_server_error(message: str) -> None:
    """The message the client gets with the 5xx the caller is about to raise."""
    box = SERVER_ERROR.get()
    if box is not None:
        box["error"] = message


class GuardMiddleware:
    """Wraps the service's ASGI app; settings are read once when a worker builds the app."""

    def __init__(self, app: Any, **_: Any) -> None:
        settings = Settings()
        self.app = app
        hosts = answered_hosts(settings)
        #: Checks the Host header first (400 naming it), then :meth:`_guard`.
        self.entry: Any = (
            self._guard if hosts == ["*"] else TrustedHostMiddleware(self._guard, hosts)
        )
        scoring = _secret(settings.api_token)
        labels = _secret(settings.label_token) or scoring
        #: The token each guarded route needs (None: no auth on that route).
        self.tokens = {"/score": scoring, "/score_batch": scoring, "/feedback": labels}
        self.max_body = settings.max_body_bytes

    @staticmethod
    def _authorized(scope: Scope, token: bytes) -> bool:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, credentials = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials, token)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        box: dict[str, str] = {}
        token = SERVER_ERROR.set(box)
        try:
            await self.entry(
                scope, receive, _ErrorBodies(send, head=scope.get("method") == "HEAD", told=box)
            )
        finally:
            SERVER_ERROR.reset(token)

    async def _guard(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] not in GUARDED:
            await self.app(scope, receive, send)
            return
        send.body_name = BODY_NAMES[scope["path"]]
        token = self.tokens[scope["path"]]
        if token and not self._authorized(scope, token):
            await _reply(send, 401, "missing or invalid bearer token")
            return
        if scope.get("method") != "POST":
            await _reply(send, 405, "method not allowed; use POST", [(b"allow", b"POST")])
            return
        headers = dict(scope.get("headers", []))
        media = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not media:
            await _reply(send, 415, "content-type application/json is required")
            return
        if media != JSON_MEDIA_TYPE:
            shown = media.decode("latin-1")[:100]
            await _reply(send, 415, f"content-type must be application/json, not {shown!r}")
            return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body:
            await _reply(send, 413, f"body of {int(declared)} bytes is over {self.max_body}")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _reply(send, 413, f"body is over {self.max_body} bytes")
                return
            if not message.get("more_body", False):
                break
        try:
            json.loads(body)
        except ValueError as exc:
            await _reply(send, 422, f"body is not valid JSON: {exc}")
            return
        except RecursionError:
            await _reply(send, 422, "body is not valid JSON: nested too deeply")
            return

        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        async def send_422(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                message = {**message, "status": 422}
            await send(message)

        await self.app(scope, replay, send_422)


class _ErrorBodies:
    """An ASGI ``send`` that gives every answer of status 400 or more a JSON error message.

    Other answers pass through untouched; an error answer is held until its last body chunk
    (error bodies are small), then sent with :func:`error_body`'s body if that returns one.
    """

    def __init__(self, send: Any, *, head: bool, told: dict[str, str] | None = None) -> None:
        self.send = send
        self.head = head
        self.told = told if told is not None else {}
        self.body_name: str | None = None  # set on a guarded route: see error_body
        self.start: dict[str, Any] | None = None
        self.body = bytearray()

    async def __call__(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            if message["status"] >= 400 and not self.head:
                self.start = message
                return
        elif message["type"] == "http.response.body" and self.start is not None:
            self.body += message.get("body", b"")
            if message.get("more_body", False):
                return
            await self._flush()
            return
        await self.send(message)

    async def _flush(self) -> None:
        start, self.start = self.start, None
        assert start is not None
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
        replaced = error_body(start["status"], content_type, bytes(self.body), self.body_name)
        if start["status"] >= 500 and self.told.get("error"):
            replaced = json.dumps({"error": self.told["error"]}).encode()
        body = bytes(self.body) if replaced is None else replaced
        if replaced is not None:
            headers = [(k, v) for k, v in headers if k.lower() != b"content-type"]
            headers.append((b"content-type", JSON_MEDIA_TYPE))
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})
