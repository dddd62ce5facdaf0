"""ASGI guard in front of the scoring endpoints: bearer token, body size, 422 for bad input.

- With ``FRAUDOPS_API_TOKEN`` set, ``/score``, ``/score_batch`` and ``/feedback`` need
  ``Authorization: Bearer <token>`` (compared in constant time), else 401.
- A body over ``FRAUDOPS_MAX_BODY_BYTES`` gets 413 before it is parsed, whether or not the
  client sent a ``Content-Length``.
- BentoML answers request-validation errors with 400; they become 422 (the body, which names
  each failing field, is kept), and a body that is not JSON gets 422 naming the position.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from fraudops.settings import Settings

GUARDED = frozenset({"/score", "/score_batch", "/feedback"})
Scope = dict[str, Any]


async def _reply(send: Any, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class GuardMiddleware:
    """Wraps the service's ASGI app; settings are read once when a worker builds the app."""

    def __init__(self, app: Any, **_: Any) -> None:
        settings = Settings()
        self.app = app
        token = settings.api_token
        self.token = token.get_secret_value().encode() if token else None
        self.max_body = settings.max_body_bytes

    def _authorized(self, scope: Scope) -> bool:
        header = dict(scope.get("headers", [])).get(b"authorization", b"")
        scheme, _, credentials = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials, self.token or b"")

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in GUARDED:
            await self.app(scope, receive, send)
            return
        if self.token and not self._authorized(scope):
            await _reply(send, 401, "missing or invalid bearer token")
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
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
