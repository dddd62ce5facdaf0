"""The service's OpenAPI document: BentoML's generated spec, rewritten to say what it answers.

BentoML 1.4 (``_bentoml_sdk.service.openapi.generate_spec``) gives every API operation the
answers 200, 400, 404 and 500 and no security. Behind :class:`services.middleware.GuardMiddleware`
the service answers otherwise, and :func:`document` (used by the ``/docs.json`` route of
:mod:`services.service`) rewrites the generated spec in this one place:

- each operation lists the statuses it really answers (:data:`RESPONSES`): 422 for every
  invalid request (BentoML's 400 is turned into 422 by the middleware, and no 404 is left),
  400 only for a Host header the service does not answer, 401, 413 and 415 from the
  middleware on the guarded operations, 503 while no model is loaded; every error answer
  has the body ``{"error": "..."}`` (schema ``Error``);
- a bearer security scheme (``bearerAuth``) and ``security`` on the guarded operations. It is
  declared always; the token is checked only when ``FRAUDOPS_API_TOKEN`` is set;
- the request body of the guarded operations is required (an empty body gets 422);
- component schemas no operation uses any more (BentoML's 400/404/500 bodies, its task-status
  body) are dropped, and the info block describes this API rather than BentoML.

A 5xx other than 503 is not declared: the service is built to answer none (the API fuzz test
checks it), so one is a bug to fix, not a part of the contract.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from fraudops.serving.api_models import ErrorOut, SpecApi
from services.middleware import GUARDED

SECURITY_SCHEME = "bearerAuth"
ERROR_SCHEMA = "Error"
_ERROR_REF = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}

_UNAUTHORIZED = (
    "Missing or wrong `Authorization: Bearer <token>`: the scoring token (FRAUDOPS_API_TOKEN) "
    "on /score and /score_batch, the label token (FRAUDOPS_LABEL_TOKEN, else the scoring "
    "token) on /feedback. Answered only when the service has a token; without one the header "
    "is not needed."
)
_WRONG_HOST = (
    "The Host header is not a name this service answers (FRAUDOPS_ALLOWED_HOSTS; by default "
    "only the loopback names on a loopback bind, so no DNS rebinding reaches it)."
)
_TOO_LARGE = "The body is over FRAUDOPS_MAX_BODY_BYTES (8 MiB by default)."
_NOT_JSON = "The Content-Type is not application/json, or there is none."
_INVALID = (
    "Invalid request, the message naming the field: a body that is not JSON or is nested too "
    "deep, a missing or unknown field, a value of the wrong JSON type (an id that is not an "
    "integer, an amount that is not a number, a time that is not an ISO 8601 string), or out "
    "of range."
)
_REFUSED = (
    " Also a transaction the online state refuses: its time too far ahead of the state's "
    "watermark or older than its retention, or a transaction id already scored with other "
    "values (a batch is refused whole, naming the row: transactions[3].tx_datetime)."
)
_NOT_READY = "No champion model is loaded yet, or the Redis online state cannot be reached."
_STATE_DOWN = "The Redis online state cannot be reached: no label was logged; retry later."

#: Status → description of the error answers of each operation (method, path); 200 is kept
#: from BentoML's spec. Every operation of the generated spec must be listed here.
RESPONSES: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/score"): {
        "401": _UNAUTHORIZED,
        "413": _TOO_LARGE,
        "415": _NOT_JSON,
        "422": _INVALID + _REFUSED,
        "503": _NOT_READY,
    },
    ("post", "/score_batch"): {
        "401": _UNAUTHORIZED,
        "413": _TOO_LARGE[:-1] + ", or the batch holds more rows than FRAUDOPS_MAX_BATCH_ROWS "
        "(10,000 by default).",
        "415": _NOT_JSON,
        "422": _INVALID + " An empty batch." + _REFUSED,
        "503": _NOT_READY,
    },
    ("post", "/feedback"): {
        "401": _UNAUTHORIZED,
        "413": _TOO_LARGE[:-1] + ", or it holds more labels than FRAUDOPS_MAX_FEEDBACK_ROWS "
        "(10,000 by default).",
        "415": _NOT_JSON,
        "422": _INVALID
        + " An empty list. A transaction id the service did not score (or no longer holds)"
        " without `external: true`, or `is_fraud: false` for a confirmed fraud without"
        " `correction: true`: the whole request is refused.",
        "503": _STATE_DOWN,
    },
    ("get", "/model"): {},
    ("get", "/livez"): {},
    ("get", "/healthz"): {},
    ("get", "/readyz"): {
        "503": "Not ready: no model and online state loaded yet, or the Redis store does not "
        "answer or lost its warm-up.",
    },
    ("get", "/metrics"): {},
}

DESCRIPTION = """Fraud scoring of raw events with the registry's `@champion` model.

The request and answer models come from the service's dataset spec (FRAUDOPS_DATASET_SPEC; the
default is the handbook's card transactions). Request bodies are JSON (`Content-Type:
application/json`) with strict types: ids and entity keys are JSON integers or strings as the
spec declares them, numbers JSON numbers within the spec's bounds, times ISO 8601 strings,
`is_fraud` true/false (or 1/0); a value of another type is not converted but refused with 422.
Every error answer is a JSON object `{"error": "..."}`. With `FRAUDOPS_API_TOKEN` set,
`/score` and `/score_batch` need `Authorization: Bearer <token>`; `/feedback` needs
`FRAUDOPS_LABEL_TOKEN` when that is set (labels are their own scope), else the same token."""


def _refs(node: Any) -> set[str]:
    """Names of the component schemas ``node`` refers to."""
    text = json.dumps(node)
    return set(re.findall(r'"#/components/schemas/([^"]+)"', text))


def _used_schemas(spec: dict[str, Any]) -> set[str]:
    """Component schemas reachable from the operations (transitively)."""
    schemas = spec.get("components", {}).get("schemas", {})
    used: set[str] = set()
    todo = _refs(spec.get("paths", {}))
    while todo:
        name = todo.pop()
        if name in used or name not in schemas:
            continue
        used.add(name)
        todo |= _refs(schemas[name])
    return used


#: (method, path) → (request schema, answer schema) of the dataset spec's models: ``"X"`` is a
#: model, ``"X[]"`` a non-empty list of them, None leaves BentoML's schema.
BODIES: dict[tuple[str, str], tuple[str | None, str | None]] = {
    ("post", "/score"): ("transaction", "score"),
    ("post", "/score_batch"): ("transaction[]", "score[]"),
    ("post", "/feedback"): ("label[]", None),
}


#: The ``explain`` query parameter of the scoring endpoints (``service.explain_asked``).
EXPLAIN = {
    "name": "explain",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["true", "false", "1", "0"], "default": "false"},
    "description": "Reason codes for every transaction, not only the alerts.",
}


def _schema(kind: str, api: SpecApi, schemas: dict[str, Any]) -> dict[str, Any]:
    """A reference to the spec model ``kind`` (added to ``schemas``), or a list of them."""
    many = kind.endswith("[]")
    model = getattr(api, kind.removesuffix("[]"))
    body = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in body.pop("$defs", {}).items():
        schemas[name] = definition
    schemas[model.__name__] = body
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"type": "array", "minItems": 1, "items": ref} if many else ref


def _bodies(spec: dict[str, Any], api: SpecApi) -> None:
    """Put the dataset spec's request and answer models in place of BentoML's open objects
    (the API methods take JSON objects and validate them with these models)."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for (method, path), (request, answer) in BODIES.items():
        operation = spec["paths"][path][method]
        if request:
            content = operation["requestBody"]["content"]["application/json"]
            content["schema"] = {**_schema(request, api, schemas), "root_input": True}
        if answer:
            operation["parameters"] = [EXPLAIN]
        if answer:
            answers = {str(status): body for status, body in operation["responses"].items()}
            content = answers["200"]["content"]["application/json"]
            content["schema"] = _schema(answer, api, schemas)


def document(generated: dict[str, Any], api: SpecApi) -> dict[str, Any]:
    """The served OpenAPI document: ``generated`` (BentoML's, as a dict) rewritten, with the
    request and answer models of the service's dataset spec (``api``).

    Raises KeyError if the generated spec has an operation :data:`RESPONSES` does not list, so
    that a new endpoint cannot be served with BentoML's untrue answers.
    """
    spec = copy.deepcopy(generated)
    _bodies(spec, api)
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            errors = {**RESPONSES[(method, path)], "400": _WRONG_HOST}
            responses = {str(status): answer for status, answer in operation["responses"].items()}
            kept = {"200": responses["200"]}
            for status, description in errors.items():
                kept[status] = {
                    "description": description,
                    "content": {"application/json": {"schema": dict(_ERROR_REF)}},
                }
            operation["responses"] = kept
            if path in GUARDED:
                operation["security"] = [{SECURITY_SCHEME: []}]
                operation["requestBody"]["required"] = True
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas[ERROR_SCHEMA] = ErrorOut.model_json_schema()
    for name in set(schemas) - _used_schemas(spec):
        del schemas[name]
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "FRAUDOPS_API_TOKEN (scoring) or FRAUDOPS_LABEL_TOKEN (/feedback); "
            "checked only when set.",
        }
    }
    info = spec.setdefault("info", {})
    info.pop("contact", None)
    info["title"] = f"fraudops scoring API ({api.spec.name} spec)"
    info["version"] = _version()
    info["description"] = DESCRIPTION
    for path, item in spec["paths"].items():
        for operation in item.values():
            operation["tags"] = [TAGS.get(path, "service")]
    spec["tags"] = [{"name": name, "description": text} for name, text in TAG_TEXT.items()]
    return spec


#: Swagger's groups: each path's group (the rest are "service": probes and metrics).
TAGS = {"/score": "scoring", "/score_batch": "scoring", "/feedback": "labels", "/model": "model"}
TAG_TEXT = {
    "scoring": "Score transactions with @champion: probability, decision, reason codes.",
    "labels": "Confirmed labels of scored transactions.",
    "model": "The served version, its card and metrics.",
    "service": "Probes and Prometheus metrics.",
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fraudops")
    except PackageNotFoundError:  # a bento without the package's metadata
        return "unknown"
