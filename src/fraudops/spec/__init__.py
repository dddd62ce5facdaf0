"""The dataset spec: what the user's data is and which features to build (see :mod:`.model`).

:func:`load_spec` reads a YAML file (or a shipped spec by name: ``handbook``) once at start-up;
errors name the file, the key and the column.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from fraudops.spec.model import (
    Aggregation,
    CalendarFeature,
    Categorical,
    DatasetSpec,
    Entity,
    Numeric,
    WindowFeature,
    format_duration,
    parse_duration,
)

__all__ = [
    "SHIPPED_SPECS",
    "Aggregation",
    "CalendarFeature",
    "Categorical",
    "DatasetSpec",
    "Entity",
    "Numeric",
    "SpecError",
    "WindowFeature",
    "default_spec",
    "format_duration",
    "load_spec",
    "parse_duration",
    "spec_sha256",
    "spec_text",
    "spec_yaml",
]

#: Specs shipped with the package, by name.
SHIPPED_SPECS: tuple[str, ...] = ("handbook", "cards", "handbook-arrival")


class SpecError(ValueError):
    """A dataset spec that cannot be used; the message names the file and the key."""


def spec_text(source: str | Path | None = None) -> tuple[str, str]:
    """(YAML text, where it came from) of a spec file or a shipped spec's name (None: handbook).

    Raises:
        SpecError: the file does not exist and is not a shipped spec's name.
    """
    if source is None:
        source = "handbook"
    if str(source) in SHIPPED_SPECS:
        ref = resources.files("fraudops.spec").joinpath(f"specs/{source}.yaml")
        return ref.read_text(encoding="utf-8"), f"{source} (shipped)"
    path = Path(source)
    if not path.is_file():
        raise SpecError(
            f"dataset spec {str(source)!r} not found: give a YAML file or one of "
            f"{list(SHIPPED_SPECS)}"
        )
    return path.read_text(encoding="utf-8"), str(path)


def parse_spec(text: str, origin: str = "<spec>") -> DatasetSpec:
    """Validate YAML ``text`` as a :class:`DatasetSpec`.

    Raises:
        SpecError: not YAML, not a mapping, or a bad key; one line per problem, each naming
            the key path (``aggregations.0.windows.1``) and what is wrong.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SpecError(f"{origin}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise SpecError(f"{origin}: a spec is a mapping of keys (name, event_time, label...)")
    try:
        return DatasetSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{origin}: " + "; ".join(_describe(e) for e in exc.errors())) from None


def _describe(error: object) -> str:
    details = dict(error)  # type: ignore[call-overload]
    key = ".".join(str(part) for part in details.get("loc", ()))
    message = str(details.get("msg", "")).removeprefix("Value error, ")
    if details.get("type") == "extra_forbidden":
        message = "unknown key (check its spelling in the README's spec reference)"
    return f"{key}: {message}" if key else message


def load_spec(source: str | Path | None = None) -> DatasetSpec:
    """Read and validate a spec file, or a shipped spec by name; None gives the handbook's.

    Raises:
        SpecError: missing file, bad YAML or a bad key (see :func:`parse_spec`).
    """
    text, origin = spec_text(source)
    return parse_spec(text, origin)


@functools.cache
def default_spec() -> DatasetSpec:
    """The shipped handbook spec (today's five columns and 18 features); read once, frozen."""
    return load_spec("handbook")


def spec_yaml(spec: DatasetSpec) -> str:
    """The spec as YAML (every key, defaults included), as stored with each model version."""
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def spec_sha256(spec: DatasetSpec) -> str:
    """Hex sha256 of the spec's canonical JSON: equal for equal specs, whatever their layout.

    ``description`` and ``slices`` are left out: they change no feature, so a version trained
    before a slice was declared is still served and gated against."""
    canonical = spec.model_dump_json(exclude={"description", "slices"})
    return hashlib.sha256(canonical.encode()).hexdigest()
