"""Live per-endpoint state the pickers read: calls in flight, peak-EWMA latency, success rate.

One `EndpointStats` lives as long as its endpoint stays in the registry; pickers are
rebuilt around the same objects whenever the usable set changes, so what an endpoint has
learnt (latency, last pick) survives a rebuild. The channel brackets every call with
`on_start()` / `on_finish()`. Hot path: every method here runs on every RPC, so the class
uses `__slots__`, allocates nothing and reads the clock once per call.

Latency is Linkerd's (tower's) peak-EWMA: a slower-than-estimate response replaces the
estimate at once (react to trouble immediately), faster ones are blended in with weight
1 - exp(-dt / DECAY_SECONDS) (forget trouble slowly), and between responses the estimate
decays toward zero so an idle, once-slow endpoint looks cheap again and is re-probed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

DECAY_SECONDS = 10.0  # Linkerd EWMA_DECAY / go-zero decayTime, "default value from finagle"
DEFAULT_RTT_SECONDS = 0.030  # Linkerd EWMA_DEFAULT_RTT: the estimate before any response
HEALTHY_SUCCESS = 0.5  # go-zero p2c throttleSuccess = initSuccess / 2: below it, "unhealthy"


class EndpointStats:
    """Mutable load state of one endpoint; read by pickers, written by the channel.

    `ok` in `on_finish` is the channel's verdict on the endpoint, not on the request: a
    business error (INVALID_ARGUMENT, FAILED_PRECONDITION) is a healthy response; only
    transport-ish codes (UNAVAILABLE, DEADLINE_EXCEEDED, INTERNAL, RESOURCE_EXHAUSTED…,
    as go-zero's codes.Acceptable) should be reported as not ok.
    """

    __slots__ = (
        "_clock",
        "_ewma",
        "_stamp",
        "address",
        "key",
        "last_pick",
        "outstanding",
        "success",
        "weight",
        "zone",
    )

    def __init__(
        self,
        key: str,
        address: str,
        weight: int = 1,
        zone: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if weight < 1:
            raise ValueError(f"weight must be >= 1, got {weight} for {key!r}; use 1 for 'least'")
        self.key = key
        self.address = address
        self.weight = weight
        self.zone = zone
        self.outstanding = 0
        self.success = 1.0  # EWMA of ok responses in [0, 1]; go-zero initSuccess (scaled)
        now = clock()
        self.last_pick = now  # for P2C's force-pick; "now" so a new endpoint is not forced
        self._clock = clock
        self._ewma = -1.0  # peak-EWMA latency in seconds at `_stamp`; < 0 means "no data yet"
        self._stamp = now

    def __repr__(self) -> str:
        return (
            f"EndpointStats({self.key!r}, {self.address!r}, weight={self.weight}, "
            f"zone={self.zone!r}, outstanding={self.outstanding}, latency={self.latency:.4f})"
        )

    def on_start(self) -> float:
        """Count a call in flight; returns its start time for `on_finish`."""
        self.outstanding += 1
        return self._clock()

    def on_finish(self, started: float, ok: bool) -> None:
        """Close a call started at `started`: fold its latency and outcome into the EWMAs."""
        now = self._clock()
        self.outstanding -= 1
        rtt = now - started
        if rtt < 0.0:
            rtt = 0.0
        dt = now - self._stamp
        w = math.exp(-dt / DECAY_SECONDS) if dt > 0.0 else 1.0
        ewma = self._ewma
        if ewma < 0.0:  # first response: take it as is (go-zero: "if olag == 0 { w = 0 }")
            self._ewma = rtt
        else:
            ewma *= w  # decayed to now
            # Peak: a slower response replaces the estimate; a faster one is blended in.
            self._ewma = rtt if rtt > ewma else ewma + rtt * (1.0 - w)
        self._stamp = now
        # Time-weighted: the prior 1.0 of a fresh endpoint fades as responses arrive.
        self.success = self.success * w + (1.0 - w if ok else 0.0)

    @property
    def latency(self) -> float:
        """Peak-EWMA latency in seconds, decayed to now; DEFAULT_RTT_SECONDS before data."""
        return self.latency_at(self._clock())

    def latency_at(self, now: float) -> float:
        ewma = self._ewma
        if ewma < 0.0:
            return DEFAULT_RTT_SECONDS
        dt = now - self._stamp
        return ewma * math.exp(-dt / DECAY_SECONDS) if dt > 0.0 else ewma

    def load(self, now: float | None = None) -> float:
        """P2C cost: latency * (outstanding + 1), divided by weight.

        Linkerd/Finagle's cost rather than go-zero's sqrt(lag) * (inflight + 1): it is the
        expected wait of the next call (queue length times service time), linear in latency,
        so a 10x slower endpoint costs 10x; the square root would let it look only ~3x
        worse. Dividing by weight makes a weight-2 endpoint take about twice the load.
        `now` lets a picker read the clock once for both candidates.
        """
        ewma = self._ewma
        if ewma < 0.0:
            lat = DEFAULT_RTT_SECONDS
        else:
            dt = (self._clock() if now is None else now) - self._stamp
            lat = ewma * math.exp(-dt / DECAY_SECONDS) if dt > 0.0 else ewma
        return lat * (self.outstanding + 1) / self.weight

    @property
    def healthy(self) -> bool:
        """False while the success EWMA is below HEALTHY_SUCCESS (go-zero's p2c rule)."""
        return self.success >= HEALTHY_SUCCESS
