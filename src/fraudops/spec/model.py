"""The dataset spec: one YAML file that says what the user's data is and which features to build.

Everything else (reading, validation, offline and online features, request models, drift
columns, log records) derives from a :class:`DatasetSpec`. The handbook's schema ships as the
default spec (``handbook.yaml`` beside this module).

Durations are written as ``<whole number><unit>`` with unit ``s``, ``m`` (minutes), ``h``,
``d`` or ``w``: ``30m``, ``1h``, ``7d``. They are held as whole seconds.

The event id and every entity key declare their type (:data:`KeyType`, ``int`` by default), so
that the offline events and the scoring API's request fields agree: a file whose keys look
numeric would otherwise give int keys offline and string keys online.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

_UNITS: Final = {"s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800}
_DURATION: Final = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")


def parse_duration(value: object) -> int:
    """Seconds of a duration written ``30m``, ``1h``, ``7d`` (or already an int of seconds).

    Raises:
        ValueError: not ``<whole number><s|m|h|d|w>`` or a non-negative int.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 30m, 1h or 7d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return value
    match = _DURATION.match(str(value))
    if match is None:
        raise ValueError(
            f"{value!r} is not a duration; write a whole number and a unit "
            "(s, m, h, d or w), e.g. 30m, 1h or 7d"
        )
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """Shortest exact spelling of ``seconds`` in d/h/m/s: ``604800`` → ``7d``, ``90`` → ``90s``."""
    for unit in ("d", "h", "m"):
        if seconds and seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


#: A duration in whole seconds, read from ``7d``-style text and written back as such.
Duration = Annotated[
    int, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]


def api_field(column: str) -> str:
    """The request field of a spec column: the name in lower case (``TX_AMOUNT``: ``tx_amount``)."""
    return column.lower()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: The JSON/Python type of the event id and of an entity key: ``int`` (whole numbers, held as
#: int64) or ``str`` (text; numbers in the file are read as their text).
KeyType = Literal["int", "str"]
#: The type a key has when its spec does not say.
DEFAULT_KEY_TYPE: Final[KeyType] = "int"
_KEY_TYPE_DESCRIPTION: Final = (
    "int: whole numbers (int64); str: text, numbers in the file are read as their text"
)


class _Keyed(_Strict):
    """A column holding keys of a declared :data:`KeyType` (its ``type`` field).

    ``type: int`` is left out when dumped (it is the default, and reading the dump gives it
    back), so a spec written before keys had a type keeps its ``spec_sha256`` and the versions
    registered with it stay usable; ``type: str`` is always written.
    """

    @model_serializer(mode="wrap")
    def _omit_default_type(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("type") == DEFAULT_KEY_TYPE:
            del data["type"]
        return data


class Reading(_Strict):
    """How to read the file: format (from the suffix when omitted), CSV options, renames."""

    format: Literal["parquet", "csv"] | None = None
    sep: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    rename: dict[str, str] = Field(
        default_factory=dict, description="File column -> the name the spec uses."
    )


class EventId(_Keyed):
    """The event id: a unique column of ``type`` int or str, or generated from the row order.

    Generated ids number the file's rows 0..n-1 (int64), so ``generate`` needs ``type: int``.

    Raises (on construction): ``generate: row_order`` with ``type: str``.
    """

    column: str = "event_id"
    type: KeyType = Field(DEFAULT_KEY_TYPE, description=_KEY_TYPE_DESCRIPTION)
    generate: Literal["row_order"] | None = None

    @model_validator(mode="after")
    def _generated_ids_are_ints(self) -> EventId:
        if self.generate is not None and self.type != "int":
            raise ValueError(
                f"`generate: {self.generate}` numbers the rows 0..n-1 (int): remove "
                f"`type: {self.type}`, or name the id column instead of generating it"
            )
        return self


class EventTime(_Strict):
    """The event time: a timestamp column, or a step index with its unit from an origin."""

    column: str
    unit: Duration | None = Field(None, description="Set for a step index: one step lasts this.")
    origin: str = Field("1970-01-01", description="Time of step 0 (ISO 8601), with `unit`.")


class Label(_Strict):
    """The binary label and how long it takes to be known.

    An unset ``known_at`` is left out when dumped, so a spec written before it existed keeps
    its ``spec_sha256`` (as ``type: int`` of :class:`_Keyed`).
    """

    column: str
    positive: list[int | str] = Field(
        default_factory=lambda: list[int | str]([1]),
        description="Values meaning fraud; every other is genuine.",
    )
    delay: Duration = Field(7 * 86_400, description="Labels younger than this are unknown.")
    known_at: str | None = Field(
        None,
        description="Optional column: when each label became known (an analyst's decision, a "
        "chargeback); empty or absent: event time + delay. Read by `lag: label_arrival` blocks "
        "and the known-fraud rule of evaluation.",
    )

    @model_serializer(mode="wrap")
    def _omit_unset_known_at(self, handler: SerializerFunctionWrapHandler) -> Any:
        data = handler(self)
        if isinstance(data, dict) and data.get("known_at") is None:
            data.pop("known_at", None)
        return data


class Entity(_Keyed):
    """A key column whose events are aggregated (card, merchant, device, account, IP...).

    Its values are of ``type`` int (whole numbers, int64) or str (text); see :data:`KeyType`.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    column: str
    type: KeyType = Field(DEFAULT_KEY_TYPE, description=_KEY_TYPE_DESCRIPTION)
    pii: bool = Field(True, description="Only keyed hashes of it leave the service.")


class Numeric(_Strict):
    """A numeric column with its bounds (checked on every row and request)."""

    column: str
    min: float | None = None
    max: float | None = None
    feature: bool = Field(True, description="Also a model input as it is (passthrough).")

    @model_validator(mode="after")
    def _ordered(self) -> Numeric:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class Categorical(_Strict):
    """A categorical column (strings or int codes); rare and unseen values go to ``other``."""

    column: str
    max_categories: int = Field(50, ge=2, le=250)
    feature: bool = True


AggregationKind = Literal[
    "count", "sum", "mean", "max", "ratio_to_mean", "distinct_count", "label_rate"
]
_NEEDS_OF: Final = frozenset({"sum", "mean", "max", "ratio_to_mean", "distinct_count"})


class WindowFeature(_Strict):
    """One aggregate over each window of its block.

    ``name`` may hold ``{window}`` (the duration as written back, e.g. ``7d``) and ``{days}``
    (whole days); without a placeholder the window is appended (``_7d``) when the block has
    several windows.
    """

    name: str
    kind: AggregationKind
    of: str | None = Field(
        None,
        description="Numeric column (sum, mean, max, ratio_to_mean) or any declared column "
        "(distinct_count).",
    )

    @model_validator(mode="after")
    def _needs_of(self) -> WindowFeature:
        if self.kind in _NEEDS_OF and self.of is None:
            raise ValueError(f"kind {self.kind!r} needs `of`: the column it aggregates")
        if self.kind not in _NEEDS_OF and self.of is not None:
            raise ValueError(f"kind {self.kind!r} takes no `of`")
        return self


class Aggregation(_Strict):
    """Window aggregations of one entity: each feature over each window.

    A window of width *w* for an event at *t* holds the entity's events with time in
    ``(t - lag - w, t - lag]``; with ``lag`` 0 it includes the event itself and earlier events
    of the same second. ``lag: label_delay`` ends the windows one label delay before the event
    (no label from inside the delay is used). ``lag: label_arrival`` keeps the windows
    ``(t - w, t]`` and counts in ``label_rate`` only the labels known by ``t`` (``label.known_at``,
    else event time + delay; never the event's own): a label known earlier, such as an
    analyst's decision, counts earlier. ``label_rate`` needs one of the two.
    """

    entity: str
    windows: list[Duration] = Field(min_length=1)
    lag: Literal["none", "label_delay", "label_arrival"] = "none"
    features: list[WindowFeature] = Field(min_length=1)

    @field_validator("windows")
    @classmethod
    def _positive(cls, windows: list[int]) -> list[int]:
        if any(w <= 0 for w in windows):
            raise ValueError("windows must be longer than 0 seconds")
        if len(set(windows)) != len(windows):
            raise ValueError(f"windows repeat: {[format_duration(w) for w in windows]}")
        return windows

    @model_validator(mode="after")
    def _label_rate_lagged(self) -> Aggregation:
        if self.lag == "none" and any(f.kind == "label_rate" for f in self.features):
            raise ValueError(
                "label_rate needs `lag: label_delay` or `lag: label_arrival` (labels not yet "
                "known would leak)"
            )
        return self

    def lag_seconds(self, label_delay: int) -> int:
        """Seconds the windows end before the event: the label delay with ``lag: label_delay``,
        else 0 (``label_arrival`` windows end at the event; their labels are filtered)."""
        return label_delay if self.lag == "label_delay" else 0

    def names(self) -> list[tuple[str, int, WindowFeature]]:
        """(feature name, window seconds, feature) in output order: windows outer."""
        out = []
        for window in self.windows:
            for feature in self.features:
                out.append((_window_name(feature.name, window, len(self.windows)), window, feature))
        return out


def _window_name(template: str, window: int, n_windows: int) -> str:
    if "{window}" in template or "{days}" in template:
        days = str(window // 86_400) if window % 86_400 == 0 else f"{window / 86_400:g}"
        return template.replace("{window}", format_duration(window)).replace("{days}", days)
    return f"{template}_{format_duration(window)}" if n_windows > 1 else template


class TimeSincePrevious(_Strict):
    """Seconds since the entity's previous event (-1 for its first one in the history)."""

    name: str
    entity: str


class CalendarFeature(_Strict):
    """Hour of day (0–23), weekend (Saturday, Sunday) or night (``hours``, inclusive)."""

    name: str
    kind: Literal["hour", "weekend", "night"]
    hours: tuple[int, int] = Field((0, 6), description="First and last night hour, inclusive.")


class Slice(_Strict):
    """A segment of events measured on its own by the model report and, with ``gate``, by the
    gate (a challenger may not lose recall, or raise its false-positive rate, there).

    Exactly one of ``column`` (a declared categorical column: one segment per value; or a
    numeric one cut at ``bands``) and ``entity`` (the entity's age at the event, the time since
    its first event in the data read, cut at ``age_bands``).
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    column: str | None = None
    bands: list[float] | None = Field(
        None, description="Ascending cut points of a numeric column: n points, n + 1 segments."
    )
    entity: str | None = None
    age_bands: list[Duration] | None = Field(
        None, description="Ascending cut points of the entity's age (durations)."
    )
    gate: bool = Field(False, description="The gate compares challenger and champion here.")

    @model_validator(mode="after")
    def _one_kind(self) -> Slice:
        if (self.column is None) == (self.entity is None):
            raise ValueError("give either `column` or `entity` (an entity's age)")
        if self.entity is not None and not self.age_bands:
            raise ValueError("an entity-age slice needs `age_bands`, e.g. [7d, 30d]")
        if self.column is not None and self.age_bands:
            raise ValueError("`age_bands` belongs to an entity-age slice")
        if self.entity is not None and self.bands:
            raise ValueError("`bands` belongs to a numeric column slice")
        for key in ("bands", "age_bands"):
            cuts = getattr(self, key)
            if cuts is not None and (not cuts or any(a >= b for a, b in pairwise(cuts))):
                raise ValueError(f"`{key}` must be non-empty and strictly ascending")
        return self


class Evaluation(_Strict):
    """Evaluation options: the entity of Precision@k, the handbook's known-fraud rule."""

    precision_at_k_entity: str | None = Field(
        None, description="Entity ranked by Precision@k per day (cards); null: events."
    )
    drop_known_fraud_entities: bool = Field(
        False, description="Test days drop entities already known to be fraudulent."
    )


@dataclass(frozen=True)
class Roles:
    """The columns that splits and metrics read: event id, time, label, the ranked entity.

    ``entity`` is the column ranked by Precision@k per day (None: events are ranked);
    ``drop_known`` says whether test days drop entities already known to be fraudulent;
    ``known_at`` is the column of label arrival times (``label.known_at``), if any.
    """

    event_id: str
    time: str
    label: str
    entity: str | None
    drop_known: bool
    known_at: str | None = None


class DatasetSpec(_Strict):
    """A dataset spec; see the module docstring and the README's "Your own data".

    Raises (on construction, as pydantic's ``ValidationError`` naming the key):
        a duplicated feature or entity name, a feature aggregating an undeclared column, an
        unknown entity, ``label_rate`` without a label lag, an unparseable duration,
        a key ``type`` other than int or str, ``event_id.generate`` with ``type: str``, one
        column declared as keys of two types (event id and entities).
    """

    name: str
    description: str = ""
    reading: Reading = Field(default_factory=Reading)
    event_id: EventId = Field(default_factory=lambda: EventId(generate="row_order"))
    event_time: EventTime
    label: Label
    amount: str | None = Field(None, description="The amount column (one of `numeric`).")
    entities: list[Entity] = Field(default_factory=list)
    numeric: list[Numeric] = Field(default_factory=list)
    categorical: list[Categorical] = Field(default_factory=list)
    calendar: list[CalendarFeature] = Field(default_factory=list)
    aggregations: list[Aggregation] = Field(default_factory=list)
    time_since_previous: list[TimeSincePrevious] = Field(default_factory=list)
    evaluation: Evaluation = Field(default_factory=Evaluation)
    slices: list[Slice] = Field(
        default_factory=list,
        description="Segments the model report and the gate measure separately; not part of "
        "the spec's hash (they change no feature).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DatasetSpec:
        entities = [e.name for e in self.entities]
        _no_repeats("entities", entities)
        _one_type_per_key_column(self.event_id, self.entities)
        numeric = {n.column for n in self.numeric}
        declared = {*numeric, *(c.column for c in self.categorical)}
        declared |= {e.column for e in self.entities}
        _no_repeats(
            "columns", [n.column for n in self.numeric] + [c.column for c in self.categorical]
        )
        if self.amount is not None and self.amount not in numeric:
            raise ValueError(f"amount: column {self.amount!r} is not declared in `numeric`")
        for i, agg in enumerate(self.aggregations):
            if agg.entity not in entities:
                raise ValueError(
                    f"aggregations.{i}.entity: unknown entity {agg.entity!r}; declared {entities}"
                )
            for j, feature in enumerate(agg.features):
                pool = declared if feature.kind == "distinct_count" else numeric
                if feature.of is not None and feature.of not in pool:
                    what = "a declared column" if feature.kind == "distinct_count" else "numeric"
                    raise ValueError(
                        f"aggregations.{i}.features.{j}.of: column {feature.of!r} is not {what}"
                    )
        for i, since in enumerate(self.time_since_previous):
            if since.entity not in entities:
                raise ValueError(f"time_since_previous.{i}.entity: unknown entity {since.entity!r}")
        k_entity = self.evaluation.precision_at_k_entity
        if k_entity is not None and k_entity not in entities:
            raise ValueError(f"evaluation.precision_at_k_entity: unknown entity {k_entity!r}")
        _no_repeats("features", self.feature_names())
        self._check_slices(numeric, {c.column for c in self.categorical}, entities)
        return self

    def _check_slices(self, numeric: set[str], categorical: set[str], entities: list[str]) -> None:
        _no_repeats("slices", [s.name for s in self.slices])
        for i, cut in enumerate(self.slices):
            if cut.entity is not None and cut.entity not in entities:
                raise ValueError(f"slices.{i}.entity: unknown entity {cut.entity!r}")
            if cut.column is None:
                continue
            if cut.column in numeric and not cut.bands:
                raise ValueError(f"slices.{i}.bands: numeric column {cut.column!r} needs bands")
            if cut.column in categorical and cut.bands:
                raise ValueError(f"slices.{i}.bands: {cut.column!r} is categorical: no bands")
            if cut.column not in numeric | categorical:
                raise ValueError(
                    f"slices.{i}.column: {cut.column!r} is not a declared numeric or "
                    "categorical column"
                )

    def feature_names(self) -> list[str]:
        """Every model input, in order: numeric, categorical, calendar, aggregations, gaps."""
        return [
            *(n.column for n in self.numeric if n.feature),
            *(c.column for c in self.categorical if c.feature),
            *(f.name for f in self.calendar),
            *(name for agg in self.aggregations for name, _, _ in agg.names()),
            *(t.name for t in self.time_since_previous),
        ]

    def categorical_features(self) -> list[str]:
        """The model inputs that are categorical (encoded by the model pipeline)."""
        return [c.column for c in self.categorical if c.feature]

    def entity(self, name: str) -> Entity:
        """The entity called ``name``; KeyError naming the declared ones otherwise."""
        for entity in self.entities:
            if entity.name == name:
                return entity
        raise KeyError(f"unknown entity {name!r}; declared {[e.name for e in self.entities]}")

    def roles(self) -> Roles:
        """The columns that splits and metrics read (see :class:`Roles`)."""
        k_entity = self.evaluation.precision_at_k_entity
        return Roles(
            event_id=self.event_id.column,
            time=self.event_time.column,
            label=self.label.column,
            entity=None if k_entity is None else self.entity(k_entity).column,
            drop_known=self.evaluation.drop_known_fraud_entities and k_entity is not None,
            known_at=self.label.known_at,
        )

    def raw_columns(self) -> list[str]:
        """Columns an event carries when it is scored (the label arrives later), in order."""
        columns = [self.event_id.column, self.event_time.column]
        columns += [e.column for e in self.entities]
        columns += [n.column for n in self.numeric] + [c.column for c in self.categorical]
        return list(dict.fromkeys(columns))

    def longest_reach(self) -> int:
        """Seconds of history the features look back at most (window + lag), 0 if none."""
        reaches = [
            max(agg.windows) + agg.lag_seconds(self.label.delay) for agg in self.aggregations
        ]
        return max(reaches, default=0)

    def labels_by_arrival(self) -> bool:
        """Whether a ``label_rate`` counts labels by their arrival (``lag: label_arrival``)."""
        return any(
            agg.lag == "label_arrival" and any(f.kind == "label_rate" for f in agg.features)
            for agg in self.aggregations
        )


def _one_type_per_key_column(event_id: EventId, entities: list[Entity]) -> None:
    """Raise ValueError when one column is declared as keys of two types."""
    seen: dict[str, tuple[str, str]] = {}
    if event_id.generate is None:
        seen[event_id.column] = ("event_id", event_id.type)
    for i, entity in enumerate(entities):
        first = seen.setdefault(entity.column, (f"entities.{i}", entity.type))
        if first[1] != entity.type:
            raise ValueError(
                f"entities.{i}.type: column {entity.column!r} is declared `type: {entity.type}` "
                f"here and `type: {first[1]}` in {first[0]}; give it one type"
            )


def _no_repeats(key: str, names: list[str]) -> None:
    repeated = sorted(name for name, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"{key}: duplicated name(s) {repeated}")
