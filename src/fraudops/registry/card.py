"""The model card: what a registered version is, written to and read from its registry tags.

Training writes a version's card with :meth:`ModelCard.to_tags`; serving, monitoring and batch
scoring read it back with :meth:`ModelCard.from_tags`, so tag names and their parsing live in one
place. A card that cannot be read (a missing or non-finite threshold, say) raises instead of
falling back to a default: a champion scored against a guessed threshold of 0.5 raises almost no
alert, silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from fraudops.data import contract as c

#: Prefix of the holdout metric tags (``holdout.average_precision`` ...).
METRIC_TAG_PREFIX = "holdout."
#: The window tags, in order.
WINDOW_TAGS: tuple[str, ...] = ("train_start", "train_end", "test_start", "test_end")
#: Versions registered before dataset specs existed were trained on the handbook schema.
LEGACY_SPEC_NAME = "handbook"


class ModelCardError(ValueError):
    """A version's tags do not make a usable card; the message names the tag."""


@dataclass(frozen=True)
class ModelCard:
    """One registered version's record.

    Attributes:
        features: the model's input columns, in order.
        threshold: decision threshold on the fraud score, in (0, 1) (from the alert budget).
        label_delay_days: days before a label is known, as in training (≥ 0).
        model_kind: the estimator (see :data:`fraudops.settings.MODEL_KINDS`).
        spec_name, spec_sha256: the dataset spec it was trained with (sha256 None: a version
            registered before specs, i.e. the handbook's).
        windows: train/test window days (ISO dates) by :data:`WINDOW_TAGS` name.
        data_sha256: fingerprint of the training rows; git_commit: the code's commit.
        model_params: the estimator's parameters as strings.
        metrics: holdout metrics by name (floats).
        feature_means: each numeric feature's mean over the training rows, the "usual" value
            of a reason code (tag ``feature_means``: a JSON list in ``features`` order, 4
            significant digits, null for a categorical input; none on older versions).
        feature_importance: each feature's permutation importance on the holdout (the drop in
            average precision when its column is shuffled; scikit-learn's
            ``permutation_importance``), which weighs its drift (tag ``feature_importance``,
            a JSON list like ``feature_means``; none on older versions).
    """

    features: tuple[str, ...]
    threshold: float
    label_delay_days: int
    model_kind: str = ""
    spec_name: str = LEGACY_SPEC_NAME
    spec_sha256: str | None = None
    windows: dict[str, str] = field(default_factory=dict)
    data_sha256: str = ""
    git_commit: str = ""
    model_params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    feature_means: dict[str, float] = field(default_factory=dict)
    feature_importance: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.threshold) and 0.0 < self.threshold < 1.0):
            raise ModelCardError(
                f"tag 'threshold': {self.threshold!r} is not a score in (0, 1) (0 alerts on "
                "every transaction, 1 on none)"
            )
        if self.label_delay_days < 0:
            raise ModelCardError(f"tag 'label_delay_days': {self.label_delay_days} is negative")
        if not self.features:
            raise ModelCardError("tag 'features': no feature")

    def to_tags(self) -> dict[str, str]:
        """The card as registry tags (strings)."""
        tags = {
            **self.windows,
            "features": ",".join(self.features),
            "threshold": repr(self.threshold),
            "label_delay_days": str(self.label_delay_days),
            "model_kind": self.model_kind,
            "spec_name": self.spec_name,
            "data_sha256": self.data_sha256,
            "git_commit": self.git_commit,
            "model_params": json.dumps(self.model_params, sort_keys=True),
            **{f"{METRIC_TAG_PREFIX}{k}": repr(v) for k, v in self.metrics.items()},
        }
        if self.spec_sha256 is not None:
            tags["spec_sha256"] = self.spec_sha256
        if self.feature_means:
            means = [self.feature_means.get(f) for f in self.features]
            tags["feature_means"] = json.dumps(
                [None if m is None else float(f"{m:.4g}") for m in means], separators=(",", ":")
            )
        if self.feature_importance:
            values = [self.feature_importance.get(f) for f in self.features]
            tags["feature_importance"] = json.dumps(
                [None if v is None else float(f"{v:.4g}") for v in values], separators=(",", ":")
            )
        return tags

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> ModelCard:
        """Read a card back from a version's tags.

        Versions registered before specs carry no ``features`` or spec tags: they are the
        handbook's 18 features and spec.

        Raises:
            ModelCardError: ``threshold`` is missing or not a finite score in (0, 1),
                ``label_delay_days`` is missing or not a whole number ≥ 0, ``model_params``
                is not JSON, or a metric is not a number; the message names the tag.
        """
        try:
            threshold = float(tags["threshold"])
        except KeyError:
            raise ModelCardError(
                "tag 'threshold' is missing: the version has no decision "
                "threshold (re-register it through training)"
            ) from None
        except ValueError:
            raise ModelCardError(
                f"tag 'threshold': {tags['threshold']!r} is not a number"
            ) from None
        try:
            delay = int(tags["label_delay_days"])
        except KeyError:
            raise ModelCardError("tag 'label_delay_days' is missing") from None
        except ValueError:
            raise ModelCardError(
                f"tag 'label_delay_days': {tags['label_delay_days']!r} is not a whole number"
            ) from None
        try:
            params = json.loads(tags.get("model_params", "{}"))
            metrics = {
                k.removeprefix(METRIC_TAG_PREFIX): float(v)
                for k, v in tags.items()
                if k.startswith(METRIC_TAG_PREFIX)
            }
        except ValueError as exc:
            raise ModelCardError(
                f"tag 'model_params' or a metric tag is unreadable: {exc}"
            ) from None
        features = tuple((tags.get("features") or ",".join(c.FEATURES)).split(","))
        return cls(
            features=features,
            threshold=threshold,
            label_delay_days=delay,
            model_kind=tags.get("model_kind", ""),
            spec_name=tags.get("spec_name", LEGACY_SPEC_NAME),
            spec_sha256=tags.get("spec_sha256"),
            windows={k: tags[k] for k in WINDOW_TAGS if k in tags},
            data_sha256=tags.get("data_sha256", ""),
            git_commit=tags.get("git_commit", ""),
            model_params={str(k): str(v) for k, v in params.items()},
            metrics=metrics,
            feature_means=_feature_means(tags.get("feature_means"), features),
            feature_importance=_feature_means(
                tags.get("feature_importance"), features, "feature_importance"
            ),
        )


def _feature_means(
    text: str | None, features: tuple[str, ...], tag: str = "feature_means"
) -> dict[str, float]:
    """A per-feature tag (``feature_means``, ``feature_importance``) read back (name → value;
    empty when absent).

    Raises:
        ModelCardError: not a JSON list of numbers or nulls, one per feature.
    """
    if text is None:
        return {}
    try:
        means = json.loads(text)
        if not isinstance(means, list) or len(means) != len(features):
            raise ValueError(f"{len(features)} values expected")
        return {f: float(m) for f, m in zip(features, means, strict=True) if m is not None}
    except (ValueError, TypeError) as exc:
        raise ModelCardError(f"tag {tag!r} is unreadable: {exc}") from None
