"""The analyst console (Starlette, Jinja2 templates with autoescaping, signed session cookies).

Thin: every rule lives in :mod:`fraudops.cases` (claims, decisions, labels); this module only
checks who asks and renders pages. Security:

- every page but ``/login`` and ``/healthz`` needs a logged-in analyst (name and token, see
  ``fraudops analyst add``); a disabled analyst loses access at the next request;
- roles: ``analyst`` claims and decides; ``lead`` also releases anyone's claim; ``read-only``
  views, with ids hashed (clear ids are shown to analysts and leads only);
- every form carries the session's CSRF token (compared in constant time); cookies are
  ``SameSite=Strict`` and ``HttpOnly``; a Content-Security-Policy allows only this server's
  scripts (no inline script), so an id or a note holding HTML is text, never code;
- every case view, claim, release and decision goes to the cases' audit log.
"""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from fraudops.cases import LEAD, READ_ONLY
from fraudops.cases.activity import recent_activity
from fraudops.cases.store import (
    DISPOSITIONS,
    Analyst,
    Case,
    CaseConflict,
    CaseNotFound,
    CaseStore,
    utcnow,
)
from fraudops.logs.records import entity_log_column
from fraudops.spec.model import DatasetSpec, Entity

HERE = Path(__file__).parent
SESSION_HOURS = 8
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class ConsoleConfig:
    """What the console needs, from the settings (built by the composition root).

    Attributes:
        spec: the dataset spec (entities, passthrough columns for the activity table).
        prediction_log_dir: where the entity's recent activity is read.
        capacity: cases reviewed per day; lock: how long a claim holds.
        secret: the session cookie's signing key.
        wake_outbox: called after a decision so its label is delivered at once.
    """

    spec: DatasetSpec
    prediction_log_dir: Path
    capacity: int
    lock: dt.timedelta
    secret: str
    wake_outbox: Callable[[], None] = lambda: None


class Problem(Exception):
    """A request the console refuses, with its HTTP status and a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message)


def shown_id(case: Case, entity: Entity, show_ids: bool) -> Any:
    """An entity's id as a user sees it: in clear for analysts and leads, else as the
    prediction log shows it (a keyed hash for a PII entity)."""
    if show_ids:
        return case.entities.get(entity.name)
    return case.entity_hashes.get(entity_log_column(entity))


def create_app(store: CaseStore, config: ConsoleConfig) -> Starlette:
    """The console's ASGI app on ``store``."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,  # every template
    )
    env.globals["shown"] = shown_id
    templates = Jinja2Templates(env=env)
    spec = config.spec
    primary = next((e for e in spec.entities if e.pii), spec.entities[0])
    passthrough = tuple(n.column for n in spec.numeric)[:3]

    def page(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        return templates.TemplateResponse(
            request,
            name,
            {
                "user": context.pop("user", None),
                "csrf": request.session.get("csrf", ""),
                "spec_name": spec.name,
                **context,
            },
            status_code=status,
        )

    def current(request: Request) -> Analyst:
        name = request.session.get("user")
        analyst = store.analyst(name) if name else None
        if analyst is None:
            raise Problem(401, "log in first")
        return analyst

    async def form_of(request: Request) -> dict[str, str]:
        form = await request.form()
        values = {k: str(v) for k, v in form.items()}
        expected = request.session.get("csrf", "")
        if not expected or not secrets.compare_digest(values.get("csrf", ""), expected):
            raise Problem(403, "the form's CSRF token is missing or stale: reload the page")
        return values

    def shows_ids(analyst: Analyst) -> bool:
        return analyst.role != READ_ONLY

    def login_page(request: Request) -> Response:
        request.session.setdefault("csrf", secrets.token_urlsafe(24))
        return page(request, "login.html")

    async def login(request: Request) -> Response:
        values = await form_of(request)
        analyst = await run_in_threadpool(
            store.authenticate, values.get("name", ""), values.get("token", "")
        )
        if analyst is None:
            return page(request, "login.html", 401, error="wrong name or token")
        request.session.clear()
        request.session.update(user=analyst.name, csrf=secrets.token_urlsafe(24))
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        await form_of(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    def queue(request: Request) -> Response:
        analyst = current(request)
        params = request.query_params
        try:
            min_score = float(params.get("min_score") or 0.0)
        except ValueError:
            raise Problem(422, f"min_score: {params['min_score']!r} is not a number") from None
        if not 0.0 <= min_score <= 1.0:
            raise Problem(422, "min_score: must be between 0 and 1")
        version = params.get("model_version") or None
        mine = analyst.name if params.get("mine") == "1" else None
        now = utcnow()
        cases, beyond = store.queue(
            config.capacity, now, min_score=min_score, model_version=version, mine=mine
        )
        return page(
            request,
            "queue.html",
            user=analyst,
            cases=cases,
            beyond=beyond,
            stats=store.stats(now),
            closed=store.closed(20),
            now=now,
            filters={
                "min_score": params.get("min_score", ""),
                "model_version": version or "",
                "mine": bool(mine),
            },
            primary=primary,
            show_ids=shows_ids(analyst),
            capacity=config.capacity,
        )

    def case_id_of(request: Request) -> int:
        return int(request.path_params["case_id"])

    def view_case(request: Request) -> Response:
        analyst = current(request)
        case_id = case_id_of(request)
        case = store.get(case_id)
        store.record(case_id, analyst.name, "view")
        hash_column = entity_log_column(primary)
        value = case.entity_hashes.get(hash_column)
        activity = (
            recent_activity(
                config.prediction_log_dir,
                hash_column,
                value,
                case.event_time,
                extra=passthrough,
            )
            if value is not None
            else None
        )
        return page(
            request,
            "case.html",
            user=analyst,
            case=case,
            events=store.events(case_id),
            activity=activity,
            activity_columns=[] if activity is None else list(activity.columns),
            primary=primary,
            entities=spec.entities,
            show_ids=shows_ids(analyst),
            mine=case.claimed_by == analyst.name and case.state == "in_review",
            locked=case.locked_for(analyst.name, utcnow()),
            can_act=analyst.role != READ_ONLY,
            can_release=analyst.role == LEAD or case.claimed_by == analyst.name,
            dispositions=DISPOSITIONS,
            idempotency_key=secrets.token_hex(16),
        )

    def acting(analyst: Analyst) -> None:
        if analyst.role == READ_ONLY:
            raise Problem(403, "a read-only user cannot claim or decide cases")

    async def posted(request: Request) -> tuple[Analyst, dict[str, str]]:
        """The acting analyst and the form (CSRF checked); store calls leave the event loop."""
        analyst = await run_in_threadpool(current, request)
        values = await form_of(request)
        acting(analyst)
        return analyst, values

    async def claim(request: Request) -> Response:
        analyst, _ = await posted(request)
        case_id = case_id_of(request)
        await run_in_threadpool(store.claim, case_id, analyst.name, config.lock)
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    async def release(request: Request) -> Response:
        analyst, _ = await posted(request)
        case_id = case_id_of(request)
        await run_in_threadpool(
            functools.partial(store.release, force=analyst.role == LEAD), case_id, analyst.name
        )
        return RedirectResponse(f"/cases/{case_id}", status_code=303)

    async def decide(request: Request) -> Response:
        analyst, values = await posted(request)
        case_id = case_id_of(request)
        try:
            await run_in_threadpool(
                store.decide,
                case_id,
                analyst.name,
                values.get("disposition", ""),
                values.get("note", ""),
                values.get("idempotency_key", ""),
            )
        except ValueError as exc:
            if isinstance(exc, CaseConflict):
                raise
            raise Problem(422, str(exc)) from None
        config.wake_outbox()
        return RedirectResponse("/", status_code=303)

    def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    def problem(request: Request, exc: Exception) -> Response:
        if isinstance(exc, Problem) and exc.status == 401 and request.method == "GET":
            return RedirectResponse("/login", status_code=303)
        if isinstance(exc, Problem):
            status, message = exc.status, exc.message
        elif isinstance(exc, CaseConflict):
            status, message = 409, str(exc)
        else:
            status, message = 404, f"no case {exc}"
        return page(
            request,
            "problem.html",
            status,
            message=message,
            user=store.analyst(request.session.get("user") or ""),
        )

    async def headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    app = Starlette(
        routes=[
            Route("/login", login_page, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/", queue, methods=["GET"]),
            Route("/cases/{case_id:int}", view_case, methods=["GET"]),
            Route("/cases/{case_id:int}/claim", claim, methods=["POST"]),
            Route("/cases/{case_id:int}/release", release, methods=["POST"]),
            Route("/cases/{case_id:int}/decide", decide, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[
            Middleware(BaseHTTPMiddleware, dispatch=headers),
            Middleware(
                SessionMiddleware,
                secret_key=config.secret,
                session_cookie="fraudops_console",
                max_age=SESSION_HOURS * 3600,
                same_site="strict",
            ),
        ],
        exception_handlers={Problem: problem, CaseConflict: problem, CaseNotFound: problem},
    )
    return app


class LabelPump:
    """Delivers decided cases' labels in the background: every ``interval`` seconds, and at
    once when :meth:`wake` is called (after a decision)."""

    def __init__(self, deliver: Callable[[], object], interval: float = 30.0) -> None:
        self._deliver, self._interval = deliver, interval
        self._event, self._stop = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._run, name="label-outbox", daemon=True)

    def start(self) -> LabelPump:
        self._thread.start()
        return self

    def wake(self) -> None:
        self._event.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._deliver()
            except Exception:  # a failed round must not stop later ones
                import logging

                logging.getLogger(__name__).exception("label delivery failed; retrying")
            self._event.wait(self._interval)
            self._event.clear()

    def stop(self) -> None:
        self._stop.set()
        self._event.set()
        self._thread.join(5)
