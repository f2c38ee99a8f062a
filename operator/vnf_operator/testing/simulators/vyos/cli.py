"""The vbash CLI: operational mode and configure mode with a private candidate configuration."""

from __future__ import annotations

import copy
import shlex
from typing import TYPE_CHECKING

from ..sshd import CliOutput, CliSession
from .config import ConfigError, Tree, compare, curly, delete_path, get_node, set_commands, set_path

if TYPE_CHECKING:
    from .simulator import VyosSimulator

NOT_CONFIGURE = "Invalid command: [{}]"


class VyosCliSession(CliSession):
    def __init__(self, sim: VyosSimulator, username: str) -> None:
        self.sim = sim
        self.username = username
        self.candidate: Tree | None = None  # set while in configure mode

    @property
    def configuring(self) -> bool:
        return self.candidate is not None

    def banner(self) -> str:
        return f"Welcome to VyOS!\n\n   Version:  VyOS {self.sim.firmware_version}\n\n"

    def prompt(self) -> str:
        if self.configuring:
            return f"[edit]\n{self.username}@{self.sim.host_name}# "
        return f"{self.username}@{self.sim.host_name}:~$ "

    def template(self, line: str) -> str:
        words = line.split()
        if words[:1] in (["set"], ["delete"]):
            return " ".join(words[:3])  # the path head only: values may be secrets
        return " ".join(words[:3]) or "<empty>"

    async def on_disconnect(self) -> None:
        self.candidate = None

    async def execute(self, line: str) -> CliOutput:
        try:
            words = shlex.split(line)
        except ValueError:
            return CliOutput("Invalid command: unbalanced quotes\n", ok=False)
        if not words:
            return CliOutput()
        try:
            if self.configuring:
                return self._config_mode(words)
            return self._op_mode(words)
        except ConfigError as exc:
            return CliOutput(f"\n{exc}\n\n", ok=False)

    # ------------------------------------------------------------------ operational mode
    def _op_mode(self, words: list[str]) -> CliOutput:
        command = words[0]
        if command == "configure":
            self.candidate = copy.deepcopy(self.sim.running)
            return CliOutput()
        if command in ("exit", "logout"):
            self.closed = True
            return CliOutput("logout\n", close=True)
        if command == "show":
            return self._show(words[1:], self.sim.running)
        return CliOutput(f"\n  Invalid command: [{' '.join(words)}]\n\n", ok=False)

    def _show(self, args: list[str], tree: Tree) -> CliOutput:
        if args == ["configuration", "commands"]:
            return CliOutput("\n".join(set_commands(tree)) + "\n")
        if args == ["configuration"]:
            return CliOutput("\n".join(curly(tree)) + "\n")
        if args == ["version"]:
            return CliOutput(self.sim.show_version())
        if args[:3] == ["ip", "route", "static"]:
            return CliOutput(self._static_routes())
        return CliOutput(f"\n  Invalid command: show [{' '.join(args)}]\n\n", ok=False)

    def _static_routes(self) -> str:
        routes = self.sim.running.get("protocols", {}).get("static", {}).get("route", {})
        lines = ["Codes: K - kernel route, C - connected, S - static", ""]
        for prefix, conf in routes.items():
            for hop, hop_conf in conf.get("next-hop", {}).items():
                distance = hop_conf.get("distance", "1")
                lines.append(f"S>* {prefix} [{distance}/0] via {hop}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ configure mode
    def _config_mode(self, words: list[str]) -> CliOutput:
        assert self.candidate is not None
        command, args = words[0], words[1:]
        if command == "set":
            if not args:
                raise ConfigError("Configuration path: [] is not valid\nSet failed")
            set_path(self.candidate, args)
            return CliOutput()
        if command == "delete":
            if not delete_path(self.candidate, args):
                raise ConfigError("Nothing to delete (the specified node does not exist)")
            return CliOutput()
        if command == "commit":
            return self._commit(None)
        if command == "commit-confirm":
            minutes = int(args[0]) if args and args[0].isdigit() else 10
            return self._commit(minutes)
        if command == "confirm":
            if not self.sim.confirm():
                return CliOutput("No confirm pending\n", ok=False)
            return CliOutput("Reload timer stopped\n")
        if command == "save":
            warning = ""
            if self.candidate != self.sim.running:
                warning = "Warning: you have uncommitted changes that will not be saved.\n\n"
            return CliOutput(warning + self.sim.save(args[0] if args else None))
        if command == "load":
            source = args[0] if args else "/config/config.boot"
            self.candidate = self.sim.load(source)
            return CliOutput(
                f"Loading configuration from '{source}'\n"
                "Load complete. Use 'commit' to make changes effective.\n"
            )
        if command == "discard":
            self.candidate = copy.deepcopy(self.sim.running)
            return CliOutput("Changes have been discarded\n")
        if command == "compare":
            diff = compare(self.sim.running, self.candidate)
            return CliOutput(
                "\n".join(diff) + "\n" if diff else "No changes between working and active configurations.\n"
            )
        if command == "show":
            return self._show_candidate(args)
        if command == "run":
            return (
                self._show(args[1:], self.sim.running)
                if args[:1] == ["show"]
                else CliOutput(f"\n  Invalid command: [{' '.join(args)}]\n\n", ok=False)
            )
        if command == "exit":
            if args == ["discard"] or self.candidate == self.sim.running:
                self.candidate = None
                return CliOutput("exit\n")
            return CliOutput(
                "Cannot exit: configuration modified.\nUse 'exit discard' to discard the changes and exit.\n",
                ok=False,
            )
        return CliOutput(f"\n  Invalid command: [{' '.join(words)}]\n\n", ok=False)

    def _commit(self, confirm_minutes: int | None) -> CliOutput:
        assert self.candidate is not None
        message = self.sim.commit(self.candidate, confirm_minutes)
        if confirm_minutes is not None:  # the CLI's prompt (answered yes) precedes the API's message
            action = "reload the previous configuration" if "reload" in message else "reboot"
            message = f"commit-confirm will automatically {action} in {confirm_minutes} minutes unless confirmed\n{message}"
        # The candidate now mirrors the active config (passwords are encrypted on commit).
        self.candidate = copy.deepcopy(self.sim.running)
        return CliOutput(message + "\n" if message else "")

    def _show_candidate(self, path: list[str]) -> CliOutput:
        assert self.candidate is not None
        if path[:1] == ["configuration"]:
            return self._show(path, self.candidate)
        try:
            node = get_node(self.candidate, path)
        except KeyError:
            return CliOutput("\nConfiguration under specified path is empty\n\n")
        if not isinstance(node, dict):
            values = node if isinstance(node, list) else [node]
            return CliOutput("".join(f" {path[-1]} {value}\n" for value in values))
        return CliOutput("\n".join(" " + line for line in curly(node, tuple(path))) + "\n")
