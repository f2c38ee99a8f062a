"""Pure helpers of the benchmark: sizes, percentiles, request minimums, lower bounds, metric parsing.

Nothing here does I/O, so `tests/unit/test_bench_*.py` covers it without a cluster.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Size:
    """A fleet: `appliances` OPNsense appliances with `rules` firewall rules each."""

    appliances: int
    rules: int

    @property
    def label(self) -> str:
        return f"{self.appliances}x{self.rules}"


def parse_sizes(text: str) -> list[Size]:
    """`10x10,100x50` → [Size(10, 10), Size(100, 50)]; raises ValueError on anything else."""
    sizes: list[Size] = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)\s*x\s*(\d+)", part)
        if match is None:
            raise ValueError(f"not a size {part!r}: expected APPLIANCESxRULES, e.g. 100x50")
        n, m = int(match.group(1)), int(match.group(2))
        if n < 1 or m < 1:
            raise ValueError(f"size {part!r}: both numbers must be at least 1")
        sizes.append(Size(n, m))
    if not sizes:
        raise ValueError("no sizes given")
    return sizes


# --------------------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between ranks (numpy's default)."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError("q must be between 0 and 100")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = math.ceil(pos)
    if lo == hi:
        return float(ordered[lo])
    return float(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo))


def summary(values: Sequence[float]) -> dict[str, float]:
    """min / p50 / p95 / max / mean of a sample (seconds stay seconds)."""
    return {
        "count": float(len(values)),
        "min": float(min(values)),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "max": float(max(values)),
        "mean": float(sum(values) / len(values)),
    }


# ------------------------------------------------------------------------------ device request model

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class ProviderShape:
    """What of a provider dictionary decides how many requests a reconcile needs at least."""

    health_requests: int
    """Health checks that are device requests (HTTP or CLI); a TCP probe sends no request."""
    list_page_size: int | None
    """Page size of the service's list operation (None: not paginated)."""
    has_commit: bool
    requests_per_second: float
    burst: float
    max_concurrency: int

    @classmethod
    def from_dictionary(cls, provider: Mapping[str, Any], service: str) -> ProviderShape:
        """From the VnfProvider manifest as loaded by YAML (the `spec` is the dictionary)."""
        spec = provider.get("spec", provider)
        checks = spec.get("healthChecks") or []
        health = sum(1 for c in checks if "http" in c or "cli" in c)
        svc = spec["services"][service]
        listing = svc["operations"]["list"]
        pagination = (listing.get("response") or {}).get("pagination") or {}
        limits = spec.get("limits") or {}
        rps = float(limits.get("requestsPerSecond", 10.0))
        return cls(
            health_requests=health,
            list_page_size=int(pagination["size"]) if pagination.get("size") else None,
            has_commit=svc.get("commit") is not None,
            requests_per_second=rps,
            burst=max(1.0, float(limits.get("burst", rps))),
            max_concurrency=int(limits.get("maxConcurrency", 4)),
        )


def list_requests(items_on_device: int, page_size: int | None) -> int:
    """Pages one full list needs: a page that comes back short ends it (an empty device: one page)."""
    if page_size is None:
        return 1
    return items_on_device // page_size + 1


def minimum_requests(shape: ProviderShape, *, items_on_device: int, changes: int) -> dict[str, int]:
    """The fewest device requests one reconcile of one single-service appliance can make.

    What is counted (the definition the report states):
      - every HTTP/CLI health check of the dictionary, once;
      - one full list of the service (pages as `list_requests`) to learn the device state;
      - one write per change (create, update, delete, move);
      - one commit when there was at least one change and the service has a commit operation.
    Not counted as necessary: TCP probes (no request), a bootstrap `neededWhen` probe and a
    verifying list after the commit; the bench reports those as extras.
    """
    out = {
        "health": shape.health_requests,
        "list": list_requests(items_on_device, shape.list_page_size),
        "writes": changes,
        "commit": 1 if (changes and shape.has_commit) else 0,
    }
    out["total"] = sum(out.values())
    return out


def chain_seconds(requests: int, latency_s: float, rate: float, burst: float) -> float:
    """Time for `requests` strictly sequential requests to one device.

    Each request takes `latency_s` on the device and needs one token of the appliance's token
    bucket (`rate` per second, capacity `burst`, full at the start), taken when it starts, as the
    operator's limiter does.
    """
    if requests <= 0:
        return 0.0
    tokens = burst
    now = 0.0
    updated = 0.0
    for _ in range(requests):
        tokens = min(burst, tokens + (now - updated) * rate)
        updated = now
        if tokens < 1.0:
            wait = (1.0 - tokens) / rate
            now += wait
            tokens = min(burst, tokens + wait * rate)
            updated = now
        tokens -= 1.0
        now += latency_s
    return now


def fleet_lower_bound(appliances: int, workers: int, per_appliance_s: float) -> float:
    """Device-side lower bound of a fleet: `workers` reconciles at once, each one appliance's chain."""
    if workers < 1:
        raise ValueError("workers must be >= 1")
    return math.ceil(appliances / workers) * per_appliance_s


def is_write(template_key: str) -> bool:
    """`POST /api/firewall/filter/addRule` → True (a simulator stats key: METHOD TEMPLATE)."""
    method = template_key.split(" ", 1)[0].upper()
    return method in WRITE_METHODS


def split_reads_writes(counts: Mapping[str, int]) -> tuple[int, int]:
    writes = sum(v for k, v in counts.items() if is_write(k))
    return sum(counts.values()) - writes, writes


def counter_delta(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """after - before per key, dropping zeros."""
    out: dict[str, int] = {}
    for key in set(after) | set(before):
        d = int(after.get(key, 0)) - int(before.get(key, 0))
        if d:
            out[key] = d
    return dict(sorted(out.items()))


# ------------------------------------------------------------------------- prometheus text parsing

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Samples of one metric family member `name` from the Prometheus text format."""
    out: list[tuple[dict[str, str], float]] = []
    for line in text.splitlines():
        if not line or line.startswith("#") or not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if match is None or match.group(1) != name:
            continue
        labels = {
            k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(match.group(3) or "")
        }
        try:
            value = float(match.group(4))
        except ValueError:
            continue
        out.append((labels, value))
    return out


def apiserver_requests(text: str) -> dict[str, int]:
    """`apiserver_request_total` summed by `VERB resource[/subresource]` (codes and scopes merged)."""
    totals: dict[str, int] = {}
    for labels, value in parse_prometheus(text, "apiserver_request_total"):
        resource, sub = labels.get("resource", ""), labels.get("subresource", "")
        if not resource:
            resource = f"(non-resource){sub}"  # the path, e.g. /metrics
        elif sub:
            resource = f"{resource}/{sub}"
        key = f"{labels.get('verb', '?')} {resource}"
        totals[key] = totals.get(key, 0) + int(value)
    return totals


OPERATOR_RESOURCES = frozenset({"vnfappliances", "vnfproviders", "vnfoperations", "secrets", "events"})
"""What the operator's ServiceAccount reads and writes; every other request in a window comes from
the apiserver itself (its loopback informers re-watching, its lease) or from discovery."""


def split_operator_requests(counts: Mapping[str, int]) -> tuple[dict[str, int], dict[str, int]]:
    """`VERB resource[/sub]` counts → (the operator's resources, everything else)."""
    operator: dict[str, int] = {}
    other: dict[str, int] = {}
    for key, value in sorted(counts.items()):
        resource = key.split(" ", 1)[-1].split("/", 1)[0]
        (operator if resource in OPERATOR_RESOURCES else other)[key] = value
    return operator, other


def metric_sum(text: str, name: str, **match: str) -> float:
    """Sum of a metric's samples whose labels include `match`."""
    return sum(
        v for labels, v in parse_prometheus(text, name) if all(labels.get(k) == x for k, x in match.items())
    )


# ------------------------------------------------------------------------------------------ /proc


def proc_cpu_seconds(stat_text: str, ticks_per_second: int) -> float:
    """utime + stime of /proc/PID/stat (the command name may contain spaces and parentheses)."""
    rest = stat_text[stat_text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(rest[11]) + int(rest[12])) / ticks_per_second


def proc_status_kib(status_text: str, field: str) -> int:
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM); 0 when absent."""
    for line in status_text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def sum_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in parts:
        for k, v in p.items():
            out[k] = out.get(k, 0) + int(v)
    return dict(sorted(out.items()))
