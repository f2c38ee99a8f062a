#!/usr/bin/env python3
"""Counts concurrent SSH sessions on the server side: `session_counter.py DIR WANT WAIT`.

Increments DIR/current (under a lock), records the highest value in DIR/peak, then waits until at
least WANT sessions run at once or WAIT seconds passed (a bounded wait, so that sessions overlap
when the client allows it), and decrements again. Standard library only.
"""

from __future__ import annotations

import fcntl
import sys
import time
from pathlib import Path


def bump(state: Path, delta: int) -> int:
    with open(state / "lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cur_file, peak_file = state / "current", state / "peak"
        current = int(cur_file.read_text() or 0) if cur_file.exists() else 0
        current += delta
        cur_file.write_text(str(current))
        peak = int(peak_file.read_text() or 0) if peak_file.exists() else 0
        if current > peak:
            peak_file.write_text(str(current))
        return current


def main() -> int:
    state, want, wait = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    state.mkdir(parents=True, exist_ok=True)
    bump(state, +1)
    try:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if int((state / "current").read_text() or 0) >= want:
                break
            time.sleep(0.05)
        print("counted")
    finally:
        bump(state, -1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
