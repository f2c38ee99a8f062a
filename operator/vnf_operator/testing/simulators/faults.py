"""Fault injection knobs shared by every simulator.

Decisions are drawn from one seeded RNG, three draws per request in a fixed order, so a given seed
and request sequence always produce the same faults whatever the knob values are.
"""

from __future__ import annotations

import dataclasses
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    """What the injector decided to do with one request."""

    NONE = "none"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    DROP = "drop"
    ERROR = "error"


@dataclass
class FaultConfig:
    """Runtime-adjustable fault knobs (all off by default)."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500
    timeout_rate: float = 0.0
    hang_s: float = 120.0
    drop_rate: float = 0.0
    rate_limit_burst: int = 0
    rate_limit_requests: int = 0
    rate_limit_window_s: float = 1.0
    retry_after_s: int = 1
    seed: int | None = None

    def validate(self) -> None:
        """Raise ValueError on nonsensical values."""
        for name in ("error_rate", "timeout_rate", "drop_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("latency_ms", "hang_s", "rate_limit_window_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        for name in ("rate_limit_burst", "rate_limit_requests", "retry_after_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if not 500 <= self.error_status <= 599:
            raise ValueError("error_status must be a 5xx code")

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELD_TYPES: dict[str, type] = {
    "latency_ms": float,
    "error_rate": float,
    "error_status": int,
    "timeout_rate": float,
    "hang_s": float,
    "drop_rate": float,
    "rate_limit_burst": int,
    "rate_limit_requests": int,
    "rate_limit_window_s": float,
    "retry_after_s": int,
}


@dataclass(frozen=True)
class FaultDecision:
    """The injector's verdict for one request."""

    kind: FaultKind
    retry_after_s: int = 0


class FaultInjector:
    """Applies a FaultConfig to a stream of requests."""

    def __init__(self, config: FaultConfig, clock: Callable[[], float] = time.monotonic) -> None:
        config.validate()
        self.config = config
        self._clock = clock
        self._rng = random.Random(config.seed)
        self._burst_left = config.rate_limit_burst
        self._window_start = clock()
        self._window_count = 0
        self.counts: dict[str, int] = {kind.value: 0 for kind in FaultKind if kind is not FaultKind.NONE}

    def update(self, changes: Mapping[str, Any]) -> FaultConfig:
        """Apply a partial update (the /_sim/faults POST body); unknown keys are an error."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(FaultConfig)}
        if unknown:
            raise ValueError(f"unknown fault knob(s): {', '.join(sorted(unknown))}")
        values = self.config.as_dict()
        for name, raw in changes.items():
            if name == "seed":
                values[name] = None if raw is None else int(raw)
            else:
                values[name] = _FIELD_TYPES[name](raw)
        candidate = FaultConfig(**values)
        candidate.validate()
        self.config = candidate
        if "seed" in changes:
            self._rng = random.Random(candidate.seed)
        if "rate_limit_burst" in changes:
            self._burst_left = candidate.rate_limit_burst
        if {"rate_limit_requests", "rate_limit_window_s"} & set(changes):
            self._window_start = self._clock()
            self._window_count = 0
        return candidate

    def snapshot(self) -> dict[str, Any]:
        data = self.config.as_dict()
        data["rate_limit_burst_remaining"] = self._burst_left
        data["injected"] = dict(self.counts)
        return data

    @property
    def latency_s(self) -> float:
        return self.config.latency_ms / 1000.0

    def decide(self) -> FaultDecision:
        """Decide the fate of the next request."""
        decision = self._rate_limit()
        # Always draw, so the fault sequence for a seed does not depend on which knobs are on.
        u_timeout, u_drop, u_error = self._rng.random(), self._rng.random(), self._rng.random()
        if decision is None:
            if u_timeout < self.config.timeout_rate:
                decision = FaultDecision(FaultKind.TIMEOUT)
            elif u_drop < self.config.drop_rate:
                decision = FaultDecision(FaultKind.DROP)
            elif u_error < self.config.error_rate:
                decision = FaultDecision(FaultKind.ERROR)
            else:
                return FaultDecision(FaultKind.NONE)
        self.counts[decision.kind.value] += 1
        return decision

    def _rate_limit(self) -> FaultDecision | None:
        if self._burst_left > 0:
            self._burst_left -= 1
            return FaultDecision(FaultKind.RATE_LIMITED, self.config.retry_after_s)
        limit = self.config.rate_limit_requests
        if limit <= 0:
            return None
        now = self._clock()
        window = self.config.rate_limit_window_s
        if now - self._window_start >= window:
            self._window_start = now
            self._window_count = 0
        if self._window_count < limit:
            self._window_count += 1
            return None
        remaining = window - (now - self._window_start)
        retry_after = max(self.config.retry_after_s, math.ceil(remaining))
        return FaultDecision(FaultKind.RATE_LIMITED, retry_after)
