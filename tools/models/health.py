"""A circuit breaker per deployment, per worker process.

When a deployment keeps failing (rate limits, 5xx, timeouts, unreachable), waiting out
Temporal's retries on it only delays the route's next candidate. After
`failure_threshold` consecutive such failures the circuit *opens*; a failure that says the
deployment itself is misconfigured (`BROKEN_TYPES`: its key is missing or refused, or its
model does not exist) opens it at once: `check` raises a
non-retryable ``CircuitOpen`` at once, without calling the provider, so the router moves
on. After `cooldown_s` the circuit is *half open*: exactly one call (the probe) goes
through while the others still fail fast. The probe's success closes the circuit; its
failure opens it for another cooldown. A probe that never reports (its worker slot was
cancelled) is replaced by a new one after another cooldown.

```
closed --threshold failures--> open --cooldown--> half open --success--> closed
                                 ^                    |
                                 +------failure-------+
```

State lives in one worker's memory: each worker learns on its own, and a restart forgets.
The methods do not await, so they are atomic on one event loop; a lock covers threads.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from keel.errors import (
    CircuitOpen,
    ProviderTimeout,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimited,
    broken_deployment_types,
)

__all__ = ["BROKEN_TYPES", "TRIPPING_TYPES", "CircuitBreaker"]

TRIPPING_TYPES = frozenset(
    kind.temporal_type
    for kind in (RateLimited, ProviderUnavailable, ProviderTimeout, ProviderUnreachable)
)
"""Failure types that count as a deployment failing (see `tools.models.errors`)."""
BROKEN_TYPES = broken_deployment_types()
"""Failure types that say the deployment cannot answer anyone until it is fixed."""


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    probe_started: float | None = None
    cooldown_s: float | None = None
    """This opening's own cooldown (a rate limit's rest), else the breaker's."""


class CircuitBreaker:
    """Counts consecutive failures per deployment and fails fast while one is down."""

    def __init__(
        self,
        failure_threshold: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._circuits: dict[str, _Circuit] = {}
        self._lock = threading.Lock()

    def check(self, deployment: str) -> None:
        """Let a call to `deployment` through, or fail it fast.

        Raises:
            CircuitOpen: While the circuit is
                open, or half open with its probe in flight.

        """
        with self._lock:
            circuit = self._circuits.get(deployment)
            if circuit is None or circuit.opened_at is None:
                return
            now = self._clock()
            waited = now - circuit.opened_at
            cooldown = self.cooldown_s if circuit.cooldown_s is None else circuit.cooldown_s
            if waited >= cooldown and (
                circuit.probe_started is None or now - circuit.probe_started >= cooldown
            ):
                circuit.probe_started = now
                return
            retry_in = max(0.0, cooldown - waited)
            failures = circuit.failures
        probing = f"retry in {retry_in:.1f}s" if retry_in else "a probe call is in flight"
        raise CircuitOpen(
            f"{deployment}: circuit open after {failures} consecutive failures; {probing}"
        )

    def record_success(self, deployment: str) -> None:
        """`deployment` answered: close its circuit and forget its failures."""
        with self._lock:
            self._circuits.pop(deployment, None)

    def record_failure(self, deployment: str) -> None:
        """`deployment` failed in a way that says it is down (a `TRIPPING_TYPES` error)."""
        with self._lock:
            circuit = self._circuits.setdefault(deployment, _Circuit())
            circuit.failures += 1
            if circuit.probe_started is not None or circuit.failures >= self.failure_threshold:
                circuit.opened_at = self._clock()
                circuit.probe_started, circuit.cooldown_s = None, None

    def record_broken(self, deployment: str) -> None:
        """`deployment` cannot answer until fixed (a `BROKEN_TYPES` error): open it now."""
        with self._lock:
            circuit = self._circuits.setdefault(deployment, _Circuit())
            circuit.failures += 1
            circuit.opened_at = self._clock()
            circuit.probe_started, circuit.cooldown_s = None, None

    def rest(self, deployment: str, seconds: float) -> None:
        """`deployment` is rate limited: skip it for `seconds`, then probe it."""
        with self._lock:
            circuit = self._circuits.setdefault(deployment, _Circuit())
            circuit.failures += 1
            circuit.opened_at = self._clock()
            circuit.probe_started, circuit.cooldown_s = None, seconds

    def state(self, deployment: str) -> str:
        """``closed``, ``open`` or ``half_open`` (a probe may go, or is in flight)."""
        with self._lock:
            circuit = self._circuits.get(deployment)
            if circuit is None or circuit.opened_at is None:
                return "closed"
            if circuit.probe_started is not None:
                return "half_open"
            waited = self._clock() - circuit.opened_at
            cooldown = self.cooldown_s if circuit.cooldown_s is None else circuit.cooldown_s
            return "half_open" if waited >= cooldown else "open"
