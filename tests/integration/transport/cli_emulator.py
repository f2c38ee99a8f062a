#!/usr/bin/env python3
"""A tiny network-device CLI, run by a test sshd as the login shell (ForceCommand).

    edge1> terminal length 0
    edge1> configure terminal
    edge1(config)# set interface eth0 address 10.0.0.1/24
    edge1(config)# end
    edge1> show config

State (the configuration, paging, one pid file per session) lives in the directory given as the
first argument. An exec-mode request (SSH_ORIGINAL_COMMAND) runs that one line and exits.
Standard library only: it runs under the system python3.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

HOST = "edge1"
INVALID = "% Invalid input detected at '^' marker."


class Cli:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.config_mode = False
        self.paging = True

    def prompt(self) -> str:
        return f"{HOST}(config)# " if self.config_mode else f"{HOST}> "

    def _config_lines(self) -> list[str]:
        path = self.state / "config"
        return path.read_text().splitlines() if path.exists() else []

    def handle(self, cmd: str) -> str | None:
        """Output for one line; None ends the session."""
        with open(self.state / "history", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.write(f"{os.getpid()} {cmd}\n")
        words = cmd.split()
        if not words:
            return ""
        if self.config_mode:
            if cmd in ("end", "exit"):
                self.config_mode = False
                return ""
            if words[0] == "set" and len(words) > 1:
                with open(self.state / "config", "a") as f:
                    fcntl.flock(f, fcntl.LOCK_EX)
                    f.write(" ".join(words[1:]) + "\n")
                return ""
            if words[0] == "username" and "secret" in words:
                return f"% Error: weak secret {words[-1]} rejected"
            return INVALID
        if cmd == "exit":
            return None
        if cmd == "terminal length 0":
            self.paging = False
            return ""
        if cmd == "configure terminal":
            self.config_mode = True
            return ""
        if cmd == "show version":
            return "EmuOS version 1.0\nuptime is 1 day"
        if cmd == "show paging":
            return "paging: " + ("on" if self.paging else "off")
        if cmd == "show config":
            return "\n".join(self._config_lines())
        if words[0] == "echo":
            return " ".join(words[1:])
        if cmd == "hang":
            time.sleep(3600)
            return ""
        return INVALID


def main() -> int:
    state = Path(sys.argv[1])
    sessions = state / "sessions"
    sessions.mkdir(parents=True, exist_ok=True)
    pid_file = sessions / str(os.getpid())
    pid_file.write_text(str(os.getppid()))
    cli = Cli(state)
    try:
        original = os.environ.get("SSH_ORIGINAL_COMMAND")
        if original is not None:
            out = cli.handle(original.strip())
            if out:
                print(out)
            return 1 if out == INVALID else 0
        sys.stdout.write("Welcome to EmuOS\n")
        while True:
            sys.stdout.write(cli.prompt())
            sys.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                return 0
            out = cli.handle(line.strip())
            if out is None:
                return 0
            if out:
                sys.stdout.write(out + "\n")
    finally:
        pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
