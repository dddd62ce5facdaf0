"""The rules a ``/feedback`` request passes before any of its labels is recorded (every store).

- A label names a transaction the platform knows: one the online state holds (scored, or fed
  by the warm-up history, and not yet expired). Any other id is refused (:data:`UNKNOWN`)
  unless the label is flagged ``external`` (a chargeback of a transaction scored elsewhere or
  long ago): then it goes to the label log only, flagged, and is counted in the answer. Labels
  for random ids can neither pad the label store nor be mistaken for the service's own.
- A confirmed fraud is never downgraded silently (:data:`DOWNGRADE`): ``is_fraud: false`` for
  an id the state holds as fraud needs ``correction: true``; the correction is recorded as such
  in the append-only label log (who: the label-token holder; when: its ``label_time``).

One refused label refuses the whole request, and nothing of it is recorded. The in-process
state checks and records under one lock (:meth:`~fraudops.streaming.state.OnlineState.
apply_labels`); Redis does both in one script call.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from fraudops.logs.records import LabelRecord

UNKNOWN, DOWNGRADE = "unknown", "downgrade"


class LabelRefused(ValueError):
    """A label of a ``/feedback`` request breaks a rule; nothing of the request was recorded.

    Attributes:
        index: position of the refused label in its request.
        event_id: its transaction id.
        reason: :data:`UNKNOWN` or :data:`DOWNGRADE`.
    """

    def __init__(self, index: int, event_id: Hashable, reason: str) -> None:
        self.index, self.event_id, self.reason = index, event_id, reason
        if reason == UNKNOWN:
            message = (
                f"transaction {event_id} was not scored by this service (or is older than the "
                "online state's retention); a label of a transaction scored elsewhere must be "
                "flagged external: true"
            )
        else:
            message = (
                f"transaction {event_id} is a confirmed fraud; a label of false must be "
                "flagged correction: true (recorded as a correction)"
            )
        super().__init__(message + "; the whole request is refused")


def binary_label(event_id: Hashable, label: int) -> int:
    """``label`` as 0 or 1.

    Raises:
        ValueError: it is anything else, naming the event id.
    """
    if label not in (0, 1):
        raise ValueError(f"label of {event_id!r} must be 0 or 1, got {label!r}")
    return int(label)


@dataclass(frozen=True)
class LabelsApplied:
    """What a ``/feedback`` request did: labels recorded in the state (``held``) and
    external labels for ids the state does not hold (label log only)."""

    held: int
    external: int


def check_labels(
    labels: Sequence[LabelRecord],
    held: Callable[[Hashable], bool],
    confirmed: Callable[[Hashable], bool],
) -> list[bool]:
    """Check a request's labels in order against the rules of the module docstring.

    Args:
        held: whether the state holds an id; confirmed: whether it holds the id as fraud.

    Returns:
        Per label, whether its id is held (an unheld one is an accepted external label).

    Raises:
        LabelRefused: at the first label that breaks a rule (earlier labels of the same
            request count: a fraud then ``false`` for one id is a downgrade).
    """
    frauds: dict[Hashable, bool] = {}
    out = []
    for index, label in enumerate(labels):
        binary_label(label.event_id, label.is_fraud)
        known = held(label.event_id)
        if not known and not label.external:
            raise LabelRefused(index, label.event_id, UNKNOWN)
        fraud = frauds.get(label.event_id)
        if fraud is None:
            fraud = known and confirmed(label.event_id)
        if fraud and label.is_fraud == 0 and not label.correction:
            raise LabelRefused(index, label.event_id, DOWNGRADE)
        frauds[label.event_id] = bool(label.is_fraud)
        out.append(known)
    return out
