"""Build each API's request and response JSON schema once, not on every request.

BentoML 1.4 derives a request's and a response's handling from the pydantic JSON schema of
the API's IO descriptor, and builds that schema anew each time: ``model_validate_json`` asks
whether the input is a string or a file, ``mime_type`` whether the output is (``_bentoml_sdk/
io_models.py``). That is ~100 µs twice per request, pure overhead for a schema that depends
only on the type (py-spy of ``benchmarks/serving.py``: about a third of the event loop's busy
time on single transactions). :func:`memoize_io_schemas` keeps the argument-free schema of
each descriptor and hands out copies (BentoML's OpenAPI builder edits the one it gets).
"""

from __future__ import annotations

import copy
from typing import Any


def _memoized(descriptor: Any) -> None:
    build = descriptor.model_json_schema  # bound to the class: BentoML's own method
    kept: dict[str, Any] = {}

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if args or kwargs:
            return build(*args, **kwargs)
        if "schema" not in kept:
            kept["schema"] = build()
        return copy.deepcopy(kept["schema"])

    descriptor.model_json_schema = classmethod(model_json_schema)


def memoize_io_schemas(service: Any) -> None:
    """Memoise ``model_json_schema()`` (no arguments) of every API's input and output
    descriptor of a ``@bentoml.service`` class; other calls still build the schema.

    Each descriptor is a class BentoML generated for that API alone, so nothing outside the
    service changes. Call it once, after the class is defined.
    """
    for method in service.apis.values():
        for descriptor in {method.input_spec, method.output_spec}:
            _memoized(descriptor)
