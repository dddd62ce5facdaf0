"""``fraudops console`` and ``fraudops analyst add|list``: the analyst review queue.

Composition only: the case store (:mod:`fraudops.cases.store`), the label outbox
(:mod:`fraudops.cases.outbox`) and the console app (``services/console``) are wired here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from fraudops.cases import ROLES
from fraudops.settings import Settings
from fraudops_cli.failure import fail

if TYPE_CHECKING:
    from fraudops.cases.store import CaseStore

analyst_app = typer.Typer(
    help="Console users: add one (prints its token once), disable one, list them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _settings() -> Settings:
    from fraudops_cli.main import _settings as read

    return read()


@contextlib.contextmanager
def _case_store() -> Iterator[CaseStore]:
    """The configured case store, closed afterwards; a refused change exits 2 naming it."""
    from fraudops.cases.store import CaseStore

    store = CaseStore.open(_settings().resolved_case_store_url)
    try:
        yield store
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()


@analyst_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Login name: letters, digits, '-' or '_'.")],
    role: Annotated[
        str, typer.Option(help=f"One of {', '.join(ROLES)}: read-only sees hashed ids only.")
    ] = "analyst",
) -> None:
    """Add a console user and print their token (shown once; only its hash is stored)."""
    with _case_store() as store:
        token = store.add_analyst(name, role)
    typer.echo(f"added {name} ({role}); token, shown once:\n{token}")


@analyst_app.command("disable")
def disable(name: Annotated[str, typer.Argument(help="The console user to revoke.")]) -> None:
    """Revoke a console user: their token and open sessions stop working at once."""
    with _case_store() as store:
        store.disable_analyst(name)
    typer.echo(f"disabled {name}")


@analyst_app.command("list")
def list_analysts() -> None:
    """List console users (name, role, enabled or disabled)."""
    with _case_store() as store:
        users = store.analysts()
    for user, enabled in users:
        typer.echo(f"{user.name}\t{user.role}\t{'enabled' if enabled else 'disabled'}")


def console(
    port: Annotated[
        int | None, typer.Option(help="Port; default FRAUDOPS_CONSOLE_PORT (8300).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address; default 127.0.0.1.")] = None,
) -> None:
    """Serve the analyst console: the review queue, cases, claim and decide (labels follow)."""
    import functools

    import uvicorn
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    from fraudops.cases.outbox import deliver, http_poster
    from fraudops.cases.store import CaseStore
    from fraudops.logs.predlog import load_or_create_key
    from fraudops.serving.api_models import spec_api
    from fraudops.serving.exposure import UnsafeExposure, console_hosts, require_safe_console
    from fraudops_cli.main import _settings as read
    from services.console.app import ConsoleConfig, LabelPump, create_app

    settings = read(console_port=port, console_host=host)
    try:
        require_safe_console(settings)
    except UnsafeExposure as exc:
        raise fail(str(exc)) from None
    home = settings.ensure_home()
    secret = (
        settings.console_secret.get_secret_value()
        if settings.console_secret
        else load_or_create_key(home / "secrets" / "console.key").hex()
    )
    store = CaseStore.open(settings.resolved_case_store_url)
    token = settings.label_token or settings.api_token
    poster = http_poster(
        settings.resolved_label_service_url, token.get_secret_value() if token else None
    )
    pump = LabelPump(
        functools.partial(deliver, store, poster, spec_api(settings.spec).id_field)
    ).start()
    app = create_app(
        store,
        ConsoleConfig(
            spec=settings.spec,
            prediction_log_dir=settings.prediction_log_dir,
            capacity=settings.review_capacity,
            lock=dt.timedelta(minutes=settings.case_lock_minutes),
            secret=secret,
            wake_outbox=pump.wake,
        ),
    )
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=console_hosts(settings))
    typer.echo(
        f"analyst console on http://{settings.console_host}:{settings.console_port} "
        f"(cases: {store.engine.url.render_as_string(hide_password=True)}; labels go to "
        f"{settings.resolved_label_service_url}/feedback)"
    )
    try:
        uvicorn.run(
            app, host=settings.console_host, port=settings.console_port, log_level="warning"
        )
    finally:
        pump.stop()
        store.close()
