"""The environment of a child process, built from a Settings object.

In one process settings travel as the :class:`~fraudops.settings.Settings` object. A child
process (``fraudops serve``, ``bentoml serve``) can only receive them through its environment:
:func:`settings_env` writes every field as its ``FRAUDOPS_<FIELD>`` variable, in the form
``Settings()`` reads back, so the child rebuilds the same object. The parent's ``os.environ``
is never changed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import SecretStr

from fraudops.settings import Settings

PREFIX = "FRAUDOPS_"


def settings_env(settings: Settings, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A new environment: ``base`` (default ``os.environ``) with ``settings`` as ``FRAUDOPS_*``.

    Every ``FRAUDOPS_*`` variable of ``base`` is dropped first, so a field that is None in
    ``settings`` stays unset in the child rather than inheriting a stale value (an
    ``api_token`` the parent had, say). Secrets are written in clear: the child needs them,
    and an environment is how a process receives them.

    Args:
        settings: the configuration the child must see.
        base: the other variables (tools' settings, ``PATH``...); default ``os.environ``.

    Returns:
        The environment, a new dict; neither ``base`` nor ``os.environ`` is modified.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.upper().startswith(PREFIX)}
    as_json = settings.model_dump(mode="json")
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, SecretStr):
            text = value.get_secret_value()
        elif isinstance(value, dict | list):
            text = json.dumps(value)
        else:
            text = str(as_json[name])
        env[f"{PREFIX}{name.upper()}"] = text
    return env
