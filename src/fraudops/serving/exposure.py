"""Who can reach the service, and what it demands of its settings before it answers anyone.

- A service bound to a non-loopback address (``FRAUDOPS_SERVE_HOST``, e.g. ``0.0.0.0`` in a
  container) is reachable by others: it refuses to start without a scoring token
  (``FRAUDOPS_API_TOKEN``) and a separate label token (``FRAUDOPS_LABEL_TOKEN``), each at least
  :data:`MIN_TOKEN_CHARS` characters (fail closed: an empty token does not switch auth off).
- The ``Host`` header must be one the service answers to (``FRAUDOPS_ALLOWED_HOSTS``): on a
  loopback bind, by default, only the loopback names, so a web page that rebinds its own DNS
  name to 127.0.0.1 cannot read or write the local service (DNS rebinding). On other binds the
  default is any host (the tokens guard them); set the list to the names clients use.
"""

from __future__ import annotations

import ipaddress

from fraudops.settings import Settings

#: Fewest characters of each token on a reachable (non-loopback) bind.
MIN_TOKEN_CHARS = 32
#: Host names of the loopback interface.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


class UnsafeExposure(ValueError):
    """The service would be reachable by others without what guards it; the message names
    the settings to change."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or ``localhost``) is only reachable from this machine."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name that may resolve anywhere


def answered_hosts(settings: Settings) -> list[str]:
    """``Host`` header values the service answers (``["*"]``: any); see the module docstring."""
    if settings.allowed_hosts:
        return list(settings.allowed_hosts)
    return list(LOOPBACK_HOSTS) if is_loopback(settings.serve_host) else ["*"]


def require_safe_exposure(settings: Settings) -> None:
    """Refuse settings that would expose the service unauthenticated.

    Raises:
        UnsafeExposure: ``serve_host`` is not a loopback address and the API token or the
            label token is unset, shorter than :data:`MIN_TOKEN_CHARS`, or both are the same.
    """
    if is_loopback(settings.serve_host):
        return
    bind = f"FRAUDOPS_SERVE_HOST={settings.serve_host} is reachable from other machines"
    tokens = {
        "FRAUDOPS_API_TOKEN": settings.api_token,
        "FRAUDOPS_LABEL_TOKEN": settings.label_token,
    }
    for name, token in tokens.items():
        value = token.get_secret_value() if token is not None else ""
        if len(value) < MIN_TOKEN_CHARS:
            raise UnsafeExposure(
                f"{bind} and {name} is {'unset' if not value else 'too short'}: set it to a "
                f"secret of at least {MIN_TOKEN_CHARS} characters (e.g. `openssl rand -hex 32`), "
                "or bind to 127.0.0.1; refusing to start"
            )
    if settings.api_token == settings.label_token:
        raise UnsafeExposure(
            f"{bind}: FRAUDOPS_API_TOKEN and FRAUDOPS_LABEL_TOKEN must differ (whoever scores "
            "must not be able to write labels); refusing to start"
        )


def require_safe_console(settings: Settings) -> None:
    """Refuse a console reachable by others whose session key is weak or made up locally.

    Raises:
        UnsafeExposure: ``console_host`` is not a loopback address and ``console_secret`` is
            unset or shorter than :data:`MIN_TOKEN_CHARS` (a key only this machine knows
            would sign sessions that other replicas refuse; a short one can be guessed).
    """
    if is_loopback(settings.console_host):
        return
    secret = settings.console_secret
    value = secret.get_secret_value() if secret is not None else ""
    if len(value) < MIN_TOKEN_CHARS:
        raise UnsafeExposure(
            f"FRAUDOPS_CONSOLE_HOST={settings.console_host} is reachable from other machines "
            f"and FRAUDOPS_CONSOLE_SECRET is {'unset' if not value else 'too short'}: set it to "
            f"a secret of at least {MIN_TOKEN_CHARS} characters, or bind to 127.0.0.1; "
            "refusing to start"
        )


def console_hosts(settings: Settings) -> list[str]:
    """``Host`` header values the console answers: the loopback names on a loopback bind (no
    DNS rebinding), else ``allowed_hosts`` or any."""
    if is_loopback(settings.console_host):
        return list(LOOPBACK_HOSTS)
    return list(settings.allowed_hosts) or ["*"]
