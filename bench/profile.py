"""Sampling profile of the operator process with py-spy (from the bench venv), summarized.

`py-spy record --format raw` writes collapsed stacks (`frame;frame;... count`); `summarize` turns
them into the top functions by own time and by inclusive time.
"""

from __future__ import annotations

import gzip
import re
import signal
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def short(frame: str) -> str:
    """`reconcile (vnf_operator/engine/appliance.py:130)` → `vnf_operator/engine/appliance.py:reconcile`."""
    m = _FRAME.match(frame.strip())
    if m is None:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "operator/vnf_operator/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "operator/vnf_operator/":
                path = "vnf_operator/" + path
            break
    return f"{path}:{m.group('func')}"


def summarize(collapsed: str, top: int = 15) -> dict[str, Any]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [
            short(f)
            for f in stack.split(";")
            if f and not f.startswith("process ") and not f.startswith("thread ")
        ]
        if not frames:
            continue
        own[frames[-1]] += count
        by_package[frames[-1].split("/", 1)[0].split(":", 1)[0]] += count
        for f in set(frames):
            inclusive[f] += count

    def pct(items: list[tuple[str, int]]) -> list[dict[str, Any]]:
        return [
            {"function": k, "samples": v, "percent": round(100 * v / total, 1) if total else 0.0}
            for k, v in items
        ]

    return {
        "samples": total,
        "top_own": pct(own.most_common(top)),
        "top_inclusive_vnf_operator": pct(
            [kv for kv in inclusive.most_common() if kv[0].startswith("vnf_operator/")][:top]
        ),
        "top_inclusive": pct(inclusive.most_common(top)),
        "own_by_top_level": pct(by_package.most_common(top)),
    }


class PySpy:
    def __init__(self, py_spy: Path, pid: int, output: Path, rate: int = 67) -> None:
        self.output = output
        self.proc = subprocess.Popen(
            [
                str(py_spy),
                "record",
                "--pid",
                str(pid),
                "--rate",
                str(rate),
                "--format",
                "raw",
                "--output",
                str(output),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def stop(self) -> dict[str, Any]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.output.exists():
            return {"error": (err or b"").decode(errors="replace")[-1000:]}
        text = self.output.read_text(errors="replace")
        # Collapsed stacks are large and repetitive: keep them gzipped (any flame-graph tool reads them).
        self.output = self.output.with_name(self.output.name + ".gz")
        with gzip.open(self.output, "wt") as f:
            f.write(text)
        self.output.with_name(self.output.name.removesuffix(".gz")).unlink()
        return summarize(text)
