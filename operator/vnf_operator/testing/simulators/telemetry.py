"""Request accounting for tests and benchmarks.

Only the method, the path (never the query string) and the status are kept: bodies, headers and
credentials are never recorded.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

REQUEST_LOG_LIMIT = 10_000


@dataclass(frozen=True)
class RequestRecord:
    """One handled request (HTTP) or command (SSH, method ``"SSH"``)."""

    method: str
    path: str
    status: int

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "status": self.status}


class Telemetry:
    """Counts requests per method + path template and keeps a bounded request log."""

    def __init__(self) -> None:
        self.request_log: deque[RequestRecord] = deque(maxlen=REQUEST_LOG_LIMIT)
        self._by_template: Counter[str] = Counter()
        self._by_status: Counter[int] = Counter()

    def record(self, method: str, path: str, template: str, status: int) -> None:
        self.request_log.append(RequestRecord(method, path, status))
        self._by_template[f"{method} {template}"] += 1
        self._by_status[status] += 1

    def reset(self) -> None:
        self.request_log.clear()
        self._by_template.clear()
        self._by_status.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "total": sum(self._by_template.values()),
            "requests": dict(sorted(self._by_template.items())),
            "statuses": {str(code): count for code, count in sorted(self._by_status.items())},
        }

    def count(self, method: str, template: str) -> int:
        return self._by_template[f"{method} {template}"]
