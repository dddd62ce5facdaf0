"""The audit log: who moved ``@champion`` (a gate, an operator, a rollback), what, when and why.

One append-only log per registered model, kept in the registry itself as tags of the registered
model, one per event (``audit.<UTC time>.<random>`` → JSON), so it is shared by every machine
that reaches the registry, guarded by its authentication (the ``scorer`` account cannot write
it) and visible on the model's page in the MLflow UI. Events are only ever added, never
rewritten: each has its own key. Every promotion and rollback goes through
:func:`fraudops.registry.promote` / :func:`~fraudops.registry.rollback`, which record here; the
training gate records its rejections. ``fraudops audit`` prints the log; the model report shows
it as it stood when the report was made. No id of a customer or event is ever part of it.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import secrets
import socket
from dataclasses import asdict, dataclass

from mlflow import MlflowClient

#: Prefix of the registered model's tags that hold the audit events.
AUDIT_PREFIX = "audit."
#: Longest reason kept (MLflow tag values are limited; a gate's reasons can be long).
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class AuditEvent:
    """One change of the model's aliases, or a gate's refusal.

    Attributes:
        at: when, UTC (ISO 8601 text).
        action: ``promote`` (a gate or an operator), ``rollback``, ``gate-rejected``.
        version: the version acted on; previous: the champion before (None if none).
        actor: who: ``<OS user>@<host>`` of the process that acted.
        reason: why (the gate's verdict, the operator's words).
    """

    at: str
    action: str
    version: str
    previous: str | None
    actor: str
    reason: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))


def operator() -> str:
    """``<OS user>@<host>`` of this process (the actor of what it records)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def record(
    client: MlflowClient,
    name: str,
    action: str,
    version: str,
    reason: str,
    previous: str | None = None,
) -> AuditEvent:
    """Append one event to model ``name``'s audit log and return it."""
    now = dt.datetime.now(dt.UTC)
    event = AuditEvent(
        at=now.isoformat(timespec="microseconds"),
        action=action,
        version=str(version),
        previous=None if previous is None else str(previous),
        actor=operator(),
        reason=reason[:MAX_REASON_CHARS],
    )
    key = f"{AUDIT_PREFIX}{now:%Y%m%dT%H%M%S%f}.{secrets.token_hex(3)}"
    client.set_registered_model_tag(name, key, event.to_json())
    return event


def read(client: MlflowClient, name: str) -> list[AuditEvent]:
    """Model ``name``'s audit log, oldest first (empty when the model has none yet).

    Raises:
        ValueError: an audit tag is not an event (it names the tag).
    """
    tags = client.get_registered_model(name).tags
    events = []
    for key in sorted(k for k in tags if k.startswith(AUDIT_PREFIX)):
        try:
            events.append(AuditEvent(**json.loads(tags[key])))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"audit tag {key!r} of model {name!r} is not an event: {exc}"
            ) from None
    return events
