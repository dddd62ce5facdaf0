"""Plain-language phrases for a spec's features, for reason codes an analyst reads.

Each model input of a :class:`~fraudops.spec.model.DatasetSpec` gets a phrase template from its
definition alone (no per-dataset wording to maintain): a window count becomes "12 events of
this customer in the last 1 day", a label rate "25% of this terminal's labelled events in the
30 days ending 7 days ago were fraud". :func:`feature_phrases` builds them once per spec;
:meth:`Phrase.say` fills in a value and, when known, the value usual in training
("(usual: 0.4)").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fraudops.spec.model import DatasetSpec, WindowFeature


def _number(value: float) -> str:
    """A value as a person writes it: whole numbers and values from 100 up without decimals
    (thousands separated), smaller ones to 3 significant digits."""
    if abs(value) >= 100 or (value == int(value) and abs(value) < 1e15):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _share(value: float) -> str:
    return f"{value:.0%}" if value >= 0.01 or value == 0 else f"{value:.2%}"


_SPANS = ((86_400, "day"), (3_600, "hour"), (60, "minute"), (1, "second"))


def _span(seconds: float) -> str:
    """A duration in its largest whole-ish unit: ``86400`` → "1 day", ``5400`` → "1.5 hours"."""
    if seconds < 0:
        return "no earlier event"
    for size, unit in _SPANS:
        if seconds >= size or size == 1:
            amount = seconds / size
            shown = f"{amount:.0f}" if amount >= 10 or amount == int(amount) else f"{amount:.1f}"
            return f"{shown} {unit}{'' if shown == '1' else 's'}"
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Phrase:
    """How to say one feature's value.

    Attributes:
        feature: the model input's name.
        template: text with ``{value}`` where the formatted value goes.
        formatter: the value's format (numbers, shares, durations or the value as text).
        usual_formatter: the format of the training mean, when not ``formatter`` (a yes/no
            feature's mean is a share of events).
    """

    feature: str
    template: str
    formatter: Callable[[float], str] = _number
    usual_formatter: Callable[[float], str] | None = None

    def say(self, value: float | str, usual: float | None = None) -> str:
        """The phrase for ``value``; with ``usual`` (a training mean), ", usual: ..." added.

        Text values (categories) are quoted as they are; numbers go through the formatter.
        """
        shown = f"'{value}'" if isinstance(value, str) else self.formatter(float(value))
        text = self.template.format(value=shown)
        if usual is not None and not isinstance(value, str):
            text += f" (usual: {(self.usual_formatter or self.formatter)(float(usual))})"
        return text


def _window_phrase(entity: str, window: int, lag: int, feature: WindowFeature) -> Phrase:
    span = (
        f"in the last {_span(window)}"
        if lag == 0
        else f"in the {_span(window)} ending {_span(lag)} ago"
    )
    this = f"this {entity}"
    templates: dict[str, tuple[str, Callable[[float], str]]] = {
        "count": (f"{{value}} events of {this} {span}", _number),
        "sum": (f"{feature.of} totalling {{value}} for {this} {span}", _number),
        "mean": (f"average {feature.of} {{value}} for {this} {span}", _number),
        "max": (f"largest {feature.of} {{value}} for {this} {span}", _number),
        "ratio_to_mean": (f"{feature.of} {{value}}× {this}'s average {span}", _number),
        "distinct_count": (f"{{value}} distinct {feature.of} for {this} {span}", _number),
        "label_rate": (
            f"{{value}} of {this}'s labelled events {span} were fraud"
            if lag
            else f"{{value}} of {this}'s events {span} are known to be fraud",  # label_arrival
            _share,
        ),
    }
    template, formatter = templates[feature.kind]
    return Phrase("", template, formatter)


def feature_phrases(spec: DatasetSpec) -> dict[str, Phrase]:
    """One :class:`Phrase` per model input of ``spec`` (``spec.feature_names()``), by name."""
    phrases: dict[str, Phrase] = {}
    for numeric in spec.numeric:
        if numeric.feature:
            phrases[numeric.column] = Phrase(numeric.column, f"{numeric.column} {{value}}")
    for categorical in spec.categorical:
        if categorical.feature:
            phrases[categorical.column] = Phrase(
                categorical.column, f"{categorical.column} {{value}}"
            )
    for calendar in spec.calendar:
        if calendar.kind == "hour":
            phrases[calendar.name] = Phrase(calendar.name, "at hour {value} of the day")
        else:
            first, last = calendar.hours
            what = (
                "at the weekend" if calendar.kind == "weekend" else f"at night ({first}–{last} h)"
            )
            phrases[calendar.name] = Phrase(
                calendar.name,
                what + ": {value}",
                lambda v: "yes" if v else "no",
                lambda v: f"{_share(v)} of events",
            )
    for agg in spec.aggregations:
        lag = agg.lag_seconds(spec.label.delay)
        for name, window, feature in agg.names():
            phrase = _window_phrase(agg.entity, window, lag, feature)
            phrases[name] = Phrase(name, phrase.template, phrase.formatter)
    for gap in spec.time_since_previous:
        phrases[gap.name] = Phrase(
            gap.name, f"{{value}} since this {gap.entity}'s previous event", _span
        )
    return phrases
