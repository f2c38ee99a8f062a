"""The IOS-XE CLI over SSH: exec and configuration modes, keyword abbreviations, caret errors."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..sshd import CliOutput, CliSession
from .state import (
    Ace,
    Endpoint,
    IosError,
    Neighbor,
    canonical_interface,
    port_number,
    valid_ipv4,
    valid_mask,
)

if TYPE_CHECKING:
    from .simulator import IosXeSimulator

INVALID = "% Invalid input detected at '^' marker."
INCOMPLETE = "% Incomplete command."
EXEC = "exec"
CONFIG = "config"
CONFIG_IF = "config-if"
CONFIG_ACL = "config-ext-nacl"
CONFIG_ROUTER = "config-router"
CONFIG_AF = "config-router-af"


@dataclass(frozen=True)
class Word:
    text: str
    column: int


def split_words(line: str) -> list[Word]:
    words = []
    index = 0
    for part in line.split():
        index = line.index(part, index)
        words.append(Word(part, index))
        index += len(part)
    return words


def _placeholder_ok(kind: str, token: str) -> bool:
    if kind == "<ip>":
        return valid_ipv4(token)
    if kind == "<mask>":
        return valid_mask(token)
    if kind in ("<num>", "<asn>"):
        return token.isdigit() and (kind == "<num>" or 1 <= int(token) <= 4294967295)
    if kind == "<iface>":
        return canonical_interface(token) is not None
    return True  # <word>


Handler = Callable[["IosCliSession", list[str]], str]


@dataclass(frozen=True)
class Pattern:
    words: tuple[str, ...]
    handler: Handler

    def match(self, tokens: list[Word]) -> tuple[list[str] | None, int, bool]:
        """-> (captured args or None, index of the first bad token, input ended early)."""
        args: list[str] = []
        for index, word in enumerate(self.words):
            if word == "<rest>":
                if index >= len(tokens):
                    return None, index, True
                args.append(" ".join(token.text for token in tokens[index:]))
                return args, len(tokens), False
            if index >= len(tokens):
                return None, index, True
            token = tokens[index].text
            if word.startswith("<"):
                if not _placeholder_ok(word, token):
                    return None, index, False
                args.append(token)
            elif not word.startswith(token.lower()):
                return None, index, False
        if len(tokens) > len(self.words):
            return None, len(self.words), False
        return args, len(tokens), False


def apply_filter(text: str, verb: str, pattern: re.Pattern[str]) -> str:
    lines = text.splitlines()
    if verb == "include":
        kept = [line for line in lines if pattern.search(line)]
    elif verb == "exclude":
        kept = [line for line in lines if not pattern.search(line)]
    elif verb == "begin":
        start = next((index for index, line in enumerate(lines) if pattern.search(line)), len(lines))
        kept = lines[start:]
    else:  # section: matching top-level lines plus the indented lines under them
        kept = []
        inside = False
        for line in lines:
            if line[:1] not in (" ", ""):
                inside = bool(pattern.search(line))
            elif not line:
                inside = False
            if inside:
                kept.append(line)
    return "\n".join(kept) + "\n" if kept else ""


def P(spec: str, handler: Handler) -> Pattern:
    return Pattern(tuple(spec.split()), handler)


class IosCliSession(CliSession):
    def __init__(self, sim: IosXeSimulator, username: str) -> None:
        self.sim = sim
        self.username = username
        self.mode = EXEC
        self.interface_name = ""
        self.acl_name = ""

    def banner(self) -> str:
        return "\n"

    def prompt(self) -> str:
        host = self.sim.running.hostname
        return f"{host}#" if self.mode == EXEC else f"{host}({self.mode})#"

    def template(self, line: str) -> str:
        words = line.split()
        return " ".join(words[:2]) or "<empty>"

    async def execute(self, line: str) -> CliOutput:
        prompt = self.prompt()
        command, _, pipe = line.partition(" | ")
        tokens = split_words(command)
        if not tokens or tokens[0].text.startswith("!"):
            return CliOutput()
        if pipe:
            return self._piped(tokens, prompt, pipe)
        try:
            if self.mode == CONFIG_ACL:
                handled = self._acl_line(tokens, prompt)
                if handled is not None:
                    return handled
            return self._dispatch(tokens, prompt, self.mode)
        except IosError as exc:
            return CliOutput(f"{exc}\n", ok=False)

    def _piped(self, tokens: list[Word], prompt: str, pipe: str) -> CliOutput:
        """``show ... | include|exclude|begin|section REGEX``; config modes need ``do``."""
        if tokens[0].text == "do":
            tokens = tokens[1:]
        elif self.mode != EXEC:
            return CliOutput(f"{' ' * (len(prompt) + tokens[0].column)}^\n{INVALID}\n\n", ok=False)
        verb, _, expression = pipe.strip().partition(" ")
        verbs = [
            name for name in ("include", "exclude", "begin", "section") if verb and name.startswith(verb)
        ]
        if len(verbs) != 1 or not expression.strip():
            return CliOutput(f"{INVALID}\n\n", ok=False)
        try:
            pattern = re.compile(expression.strip())
        except re.error:
            return CliOutput(f"% Invalid regular expression {expression.strip()}\n", ok=False)
        saved_mode = self.mode
        result = self._dispatch(tokens, prompt, EXEC)
        if not self.closed:
            self.mode = saved_mode
        if not result.ok:
            return result
        return CliOutput(apply_filter(result.text, verbs[0], pattern))

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, tokens: list[Word], prompt: str, mode: str) -> CliOutput:
        patterns = GRAMMAR[mode]
        best_fail, incomplete = -1, False
        for pattern in patterns:
            args, fail, short = pattern.match(tokens)
            if args is not None:
                return CliOutput(pattern.handler(self, args))
            if short and fail == len(tokens):
                incomplete = True
            best_fail = max(best_fail, fail)
        if mode not in (EXEC, CONFIG):
            # Sub-modes fall back to global configuration commands, leaving the sub-mode.
            fallback = self._try(tokens, CONFIG)
            if fallback is not None:
                return fallback
        if incomplete:
            return CliOutput(f"{INCOMPLETE}\n\n", ok=False)
        column = tokens[min(best_fail, len(tokens) - 1)].column
        return CliOutput(f"{' ' * (len(prompt) + column)}^\n{INVALID}\n\n", ok=False)

    def _try(self, tokens: list[Word], mode: str) -> CliOutput | None:
        for pattern in GRAMMAR[mode]:
            args, _, _ = pattern.match(tokens)
            if args is not None:
                self.mode = mode
                return CliOutput(pattern.handler(self, args))
        return None

    # ------------------------------------------------------------------ exec mode
    def do_configure(self, args: list[str]) -> str:
        self.mode = CONFIG
        return "Enter configuration commands, one per line.  End with CNTL/Z.\n"

    def do_exit_session(self, args: list[str]) -> str:
        self.closed = True
        return ""

    def do_write(self, args: list[str]) -> str:
        self.sim.save()
        return "Building configuration...\n[OK]\n"

    def do_copy_run_start(self, args: list[str]) -> str:
        self.sim.save()
        return "Destination filename [startup-config]? \nBuilding configuration...\n[OK]\n"

    def do_show_run(self, args: list[str]) -> str:
        return self.sim.running.running_config(self.sim.firmware_version)

    def do_show_start(self, args: list[str]) -> str:
        return self.sim.startup.running_config(self.sim.firmware_version).replace(
            "Current configuration", "Startup configuration", 1
        )

    def do_show_version(self, args: list[str]) -> str:
        version = self.sim.firmware_version
        return (
            f"Cisco IOS XE Software, Version {version}\n"
            f"Cisco IOS Software [Cupertino], Virtual XE Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), "
            f"Version {version}, RELEASE SOFTWARE (fc1)\n"
            f"{self.sim.running.hostname} uptime is 1 hour, 0 minutes\n"
            "cisco C8000V (VXE) processor with 1987654K/3075K bytes of memory.\n"
        )

    def do_show_brief(self, args: list[str]) -> str:
        return self.sim.running.interface_brief()

    def do_show_static(self, args: list[str]) -> str:
        return self.sim.running.static_routes()

    def do_show_bgp(self, args: list[str]) -> str:
        return self.sim.running.bgp_summary()

    def do_show_acls(self, args: list[str]) -> str:
        return self.sim.running.access_lists()

    def do_nothing(self, args: list[str]) -> str:
        return ""

    def do_run_exec(self, args: list[str]) -> str:
        saved_mode = self.mode
        self.mode = EXEC
        try:
            output = self._dispatch(split_words(args[0]), self.prompt(), EXEC)
        finally:
            if not self.closed:
                self.mode = saved_mode
        return output.text

    # ------------------------------------------------------------------ global configuration
    def do_end(self, args: list[str]) -> str:
        self.mode = EXEC
        return ""

    def do_exit_config(self, args: list[str]) -> str:
        self.mode = EXEC if self.mode == CONFIG else CONFIG_ROUTER if self.mode == CONFIG_AF else CONFIG
        return ""

    def do_hostname(self, args: list[str]) -> str:
        self.sim.running.hostname = args[0]
        return ""

    def do_interface(self, args: list[str]) -> str:
        name = canonical_interface(args[0])
        assert name is not None
        self.sim.running.interface(name)
        self.interface_name = name
        self.mode = CONFIG_IF
        return ""

    def do_no_interface(self, args: list[str]) -> str:
        name = canonical_interface(args[0])
        if name is None or name not in self.sim.running.interfaces:
            raise IosError(INVALID)
        if not name.startswith("Loopback"):
            raise IosError(f"% Interface {name} is not removable")
        del self.sim.running.interfaces[name]
        return ""

    def do_ip_route(self, args: list[str]) -> str:
        prefix, mask, hop, *distance = args
        if distance and not 1 <= int(distance[0]) <= 255:
            raise IosError(INVALID)
        self.sim.running.add_route(prefix, mask, hop, int(distance[0]) if distance else None)
        return ""

    def do_default_interface(self, args: list[str]) -> str:
        name = canonical_interface(args[0])
        if name is None or name not in self.sim.running.interfaces:
            raise IosError(INVALID)
        self.sim.running.reset_interface(name)
        return f"Interface {name} set to default configuration\n"

    def do_clear_bgp(self, args: list[str]) -> str:
        bgp = self.sim.running.bgp
        if bgp is None:
            return "% BGP not active\n"
        if args[0] != "*" and args[0] not in bgp.neighbors:
            return f"% No such neighbor {args[0]}\n"
        return ""

    def do_no_ip_route(self, args: list[str]) -> str:
        prefix, mask, *hop = args
        self.sim.running.delete_route(prefix, mask, hop[0] if hop else None)
        return ""

    def do_acl(self, args: list[str]) -> str:
        self.sim.running.acls.setdefault(args[0], {})
        self.acl_name = args[0]
        self.mode = CONFIG_ACL
        return ""

    def do_no_acl(self, args: list[str]) -> str:
        self.sim.running.acls.pop(args[0], None)
        return ""

    def do_router_bgp(self, args: list[str]) -> str:
        self.sim.running.start_bgp(int(args[0]))
        self.mode = CONFIG_ROUTER
        return ""

    def do_no_router_bgp(self, args: list[str]) -> str:
        bgp = self.sim.running.bgp
        if bgp is None or bgp.asn != int(args[0]):
            raise IosError("% BGP not active")
        self.sim.running.bgp = None
        return ""

    # ------------------------------------------------------------------ interface mode
    def _iface(self) -> str:
        return self.interface_name

    def do_description(self, args: list[str]) -> str:
        self.sim.running.interfaces[self._iface()].description = args[0]
        return ""

    def do_no_description(self, args: list[str]) -> str:
        self.sim.running.interfaces[self._iface()].description = None
        return ""

    def do_ip_address(self, args: list[str]) -> str:
        address, mask = args
        for name, other in self.sim.running.interfaces.items():
            if name != self._iface() and other.address and other.address[0] == address:
                raise IosError(f"% {address} overlaps with {name}")
        self.sim.running.interfaces[self._iface()].address = (address, mask)
        return ""

    def do_no_ip_address(self, args: list[str]) -> str:
        self.sim.running.interfaces[self._iface()].address = None
        return ""

    def do_shutdown(self, args: list[str]) -> str:
        self.sim.running.interfaces[self._iface()].shutdown = True
        return ""

    def do_no_shutdown(self, args: list[str]) -> str:
        self.sim.running.interfaces[self._iface()].shutdown = False
        return ""

    # ------------------------------------------------------------------ router bgp
    def _bgp_neighbors(self) -> dict[str, Neighbor]:
        bgp = self.sim.running.bgp
        if bgp is None:
            raise IosError("% BGP not active")
        return bgp.neighbors

    def do_neighbor_remote_as(self, args: list[str]) -> str:
        neighbors = self._bgp_neighbors()
        address, asn = args[0], int(args[1])
        if address in neighbors:
            neighbors[address].remote_as = asn
        else:
            neighbors[address] = Neighbor(remote_as=asn)
        return ""

    def do_neighbor_description(self, args: list[str]) -> str:
        neighbor = self._bgp_neighbors().get(args[0])
        if neighbor is None:
            raise IosError("% Specify remote-as or peer-group commands first")
        neighbor.description = args[1]
        return ""

    def do_no_neighbor(self, args: list[str]) -> str:
        self._bgp_neighbors().pop(args[0], None)
        return ""

    def do_log_changes(self, args: list[str]) -> str:
        bgp = self.sim.running.bgp
        if bgp is not None:
            bgp.log_neighbor_changes = True
        return ""

    def do_no_log_changes(self, args: list[str]) -> str:
        bgp = self.sim.running.bgp
        if bgp is not None:
            bgp.log_neighbor_changes = False
        return ""

    def do_address_family(self, args: list[str]) -> str:
        self.mode = CONFIG_AF
        return ""

    def do_exit_af(self, args: list[str]) -> str:
        self.mode = CONFIG_ROUTER
        return ""

    def do_activate(self, args: list[str]) -> str:
        neighbor = self._bgp_neighbors().get(args[0])
        if neighbor is None:
            raise IosError("% Specify remote-as or peer-group commands first")
        neighbor.activate = True
        return ""

    def do_no_activate(self, args: list[str]) -> str:
        neighbor = self._bgp_neighbors().get(args[0])
        if neighbor is not None:
            neighbor.activate = False
        return ""

    # ------------------------------------------------------------------ extended ACL lines
    def _acl_line(self, tokens: list[Word], prompt: str) -> CliOutput | None:
        """``[seq] permit|deny proto src [eq p] dst [eq p]`` and ``no seq``; None = not an ACE."""
        words = [token.text for token in tokens]
        rules = self.sim.running.acls.setdefault(self.acl_name, {})
        if words[0] == "no" and len(words) == 2 and words[1].isdigit():
            rules.pop(int(words[1]), None)
            return CliOutput()
        start = 1 if words[0].isdigit() else 0
        if start >= len(words) or words[start] not in ("permit", "deny"):
            return None
        sequence = int(words[0]) if start else (max(rules, default=0) // 10 + 1) * 10
        position = start + 1
        if position >= len(words):
            return CliOutput(f"{INCOMPLETE}\n\n", ok=False)
        protocol = words[position]
        if (
            protocol not in ("ip", "tcp", "udp", "icmp", "gre", "esp", "ahp", "ospf")
            and not protocol.isdigit()
        ):
            return self._caret(tokens, position, prompt)
        position += 1
        endpoints: list[Endpoint] = []
        for _ in range(2):
            endpoint, position, error = self._endpoint(words, position, protocol)
            if error:
                if position >= len(words):
                    return CliOutput(f"{INCOMPLETE}\n\n", ok=False)
                return self._caret(tokens, position, prompt)
            endpoints.append(endpoint)
        if position < len(words):
            return self._caret(tokens, position, prompt)
        rules[sequence] = Ace(sequence, words[start], protocol, endpoints[0], endpoints[1])
        return CliOutput()

    @staticmethod
    def _endpoint(words: list[str], position: int, protocol: str) -> tuple[Endpoint, int, bool]:
        if position >= len(words):
            return Endpoint(), position, True
        word = words[position]
        if word == "any":
            endpoint, position = Endpoint("any"), position + 1
        elif word == "host":
            if position + 1 >= len(words) or not valid_ipv4(words[position + 1]):
                return Endpoint(), position + 1, True
            endpoint, position = Endpoint("host", words[position + 1]), position + 2
        elif valid_ipv4(word):
            if position + 1 >= len(words) or not valid_ipv4(words[position + 1]):
                return Endpoint(), position + 1, True
            endpoint, position = Endpoint("network", word, words[position + 1]), position + 2
        else:
            return Endpoint(), position, True
        if position < len(words) and words[position] == "eq":
            if protocol not in ("tcp", "udp") or position + 1 >= len(words):
                return Endpoint(), position + (1 if protocol in ("tcp", "udp") else 0), True
            number = port_number(protocol, words[position + 1])
            if number is None:
                return Endpoint(), position + 1, True
            endpoint.eq = number
            position += 2
        return endpoint, position, False

    @staticmethod
    def _caret(tokens: list[Word], position: int, prompt: str) -> CliOutput:
        column = tokens[min(position, len(tokens) - 1)].column
        return CliOutput(f"{' ' * (len(prompt) + column)}^\n{INVALID}\n\n", ok=False)


S = IosCliSession
_CONFIG_EXITS = [P("end", S.do_end), P("exit", S.do_exit_config), P("do <rest>", S.do_run_exec)]

GRAMMAR: dict[str, list[Pattern]] = {
    EXEC: [
        P("terminal length <num>", S.do_nothing),
        P("terminal width <num>", S.do_nothing),
        P("configure terminal", S.do_configure),
        P("show running-config", S.do_show_run),
        P("show startup-config", S.do_show_start),
        P("show ip interface brief", S.do_show_brief),
        P("show ip route static", S.do_show_static),
        P("show ip bgp summary", S.do_show_bgp),
        P("show access-lists", S.do_show_acls),
        P("show version", S.do_show_version),
        P("write memory", S.do_write),
        P("write", S.do_write),
        P("copy running-config startup-config", S.do_copy_run_start),
        P("clear ip bgp <word> soft", S.do_clear_bgp),
        P("clear ip bgp <word>", S.do_clear_bgp),
        P("exit", S.do_exit_session),
        P("logout", S.do_exit_session),
    ],
    CONFIG: [
        P("hostname <word>", S.do_hostname),
        P("interface <iface>", S.do_interface),
        P("no interface <iface>", S.do_no_interface),
        P("ip route <ip> <mask> <ip>", S.do_ip_route),
        P("ip route <ip> <mask> <ip> <num>", S.do_ip_route),
        P("default interface <iface>", S.do_default_interface),
        P("no ip route <ip> <mask> <ip>", S.do_no_ip_route),
        P("no ip route <ip> <mask>", S.do_no_ip_route),
        P("ip access-list extended <word>", S.do_acl),
        P("no ip access-list extended <word>", S.do_no_acl),
        P("router bgp <asn>", S.do_router_bgp),
        P("no router bgp <asn>", S.do_no_router_bgp),
        *_CONFIG_EXITS,
    ],
    CONFIG_IF: [
        P("description <rest>", S.do_description),
        P("no description", S.do_no_description),
        P("ip address <ip> <mask>", S.do_ip_address),
        P("no ip address", S.do_no_ip_address),
        P("shutdown", S.do_shutdown),
        P("no shutdown", S.do_no_shutdown),
        *_CONFIG_EXITS,
    ],
    CONFIG_ACL: list(_CONFIG_EXITS),
    CONFIG_ROUTER: [
        P("neighbor <ip> remote-as <asn>", S.do_neighbor_remote_as),
        P("neighbor <ip> description <rest>", S.do_neighbor_description),
        P("no neighbor <ip>", S.do_no_neighbor),
        P("bgp log-neighbor-changes", S.do_log_changes),
        P("no bgp log-neighbor-changes", S.do_no_log_changes),
        P("address-family ipv4 unicast", S.do_address_family),
        P("address-family ipv4", S.do_address_family),
        *_CONFIG_EXITS,
    ],
    CONFIG_AF: [
        P("neighbor <ip> activate", S.do_activate),
        P("no neighbor <ip> activate", S.do_no_activate),
        P("exit-address-family", S.do_exit_af),
        *_CONFIG_EXITS,
    ],
}
