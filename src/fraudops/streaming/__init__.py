"""Online features of any dataset spec, exactly equal to the offline engine's.

See :mod:`fraudops.streaming.engine` for the design (per-entity prefix sums, Fenwick and
segment trees, expiry, thread safety), :mod:`fraudops.streaming.state` for the service's state
behind the clock and id rules, and :mod:`fraudops.streaming.redis_state` for the same in Redis.
"""

from fraudops.streaming.engine import SpecOnlineEngine, event_second

__all__ = ["SpecOnlineEngine", "event_second"]
