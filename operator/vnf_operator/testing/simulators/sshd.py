"""A small asyncssh server that feeds command lines to a vendor CLI session.

Interactive shells get the vendor prompt after every command; exec requests (``ssh host 'cmd'``)
run each line of the command and exit 0, or 1 if any line failed.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncssh


@dataclass
class CliOutput:
    """What one command line produced."""

    text: str = ""
    ok: bool = True
    close: bool = False


class CliSession(abc.ABC):
    """One logged-in CLI user; subclasses implement the vendor grammar."""

    closed: bool = False

    def banner(self) -> str:
        return ""

    @abc.abstractmethod
    def prompt(self) -> str:
        """The prompt shown before the next command."""

    @abc.abstractmethod
    async def execute(self, line: str) -> CliOutput:
        """Run one command line."""

    def template(self, line: str) -> str:
        """A secret-free label for stats: the leading words before any value."""
        words: list[str] = []
        for word in line.split():
            if "=" in word or len(words) == 2:
                break
            words.append(word)
        return " ".join(words) or "<empty>"

    async def on_disconnect(self) -> None:
        """Called once the connection goes away (uncommitted edits die with it)."""
        return None


SessionFactory = Callable[[str], CliSession]
PasswordCheck = Callable[[str, str], bool]
CommandHook = Callable[[CliSession, str], Awaitable[None]]
ResultHook = Callable[[CliSession, str, CliOutput], None]


class _AuthServer(asyncssh.SSHServer):
    def __init__(self, check: PasswordCheck, live: set[asyncssh.SSHServerConnection]) -> None:
        self._check = check
        self._live = live
        self._conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self._conn = conn
        self._live.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._conn is not None:
            self._live.discard(self._conn)

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return self._check(username, password)


class SshFrontend:
    """Listens on host:port and runs one CliSession per SSH channel."""

    def __init__(
        self,
        session_factory: SessionFactory,
        check_password: PasswordCheck,
        before_command: CommandHook,
        after_command: ResultHook,
    ) -> None:
        self._session_factory = session_factory
        self._check_password = check_password
        self._before_command = before_command
        self._after_command = after_command
        self._host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._acceptor: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connections: set[asyncssh.SSHServerConnection] = set()

    @property
    def host_public_key(self) -> str:
        """The host key in OpenSSH format, for a known_hosts entry."""
        return str(self._host_key.export_public_key().decode().strip())

    async def start(self, host: str, port: int) -> int:
        self._acceptor = await asyncssh.create_server(
            lambda: _AuthServer(self._check_password, self._connections),
            host,
            port,
            server_host_keys=[self._host_key],
            process_factory=self._handle_process,
            reuse_address=True,
        )
        sockets = self._acceptor.sockets
        return int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._acceptor is None:
            return
        self._acceptor.close()
        await self._acceptor.wait_closed()
        self._acceptor = None
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        # A stopped or rebooting device drops its connections, not only its listener.
        for conn in list(self._connections):
            conn.abort()
        self._connections.clear()

    async def _run_line(self, session: CliSession, line: str) -> CliOutput:
        await self._before_command(session, line)
        try:
            result = await session.execute(line)
        except Exception as exc:  # a simulator bug must not kill the connection silently
            result = CliOutput(f"internal simulator error: {type(exc).__name__}\n", ok=False)
        self._after_command(session, line, result)
        return result

    async def _handle_process(self, process: Any) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(process)
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _serve(self, process: Any) -> None:
        username = str(process.get_extra_info("username") or "")
        session = self._session_factory(username)
        status = 0
        try:
            if process.command is not None:
                for line in str(process.command).splitlines():
                    result = await self._run_line(session, line)
                    process.stdout.write(result.text)
                    if not result.ok:
                        status = 1
                    if result.close or session.closed:
                        break
                return
            process.stdout.write(session.banner())
            process.stdout.write(session.prompt())
            while not session.closed:
                try:
                    line = await process.stdin.readline()
                except (asyncssh.BreakReceived, asyncssh.TerminalSizeChanged, asyncssh.SignalReceived):
                    continue
                if not line:
                    break
                result = await self._run_line(session, line.rstrip("\r\n"))
                process.stdout.write(result.text)
                if result.close or session.closed:
                    break
                process.stdout.write(session.prompt())
        except (asyncssh.Error, ConnectionError, BrokenPipeError):
            pass
        finally:
            await session.on_disconnect()
            with contextlib.suppress(OSError, asyncssh.Error):
                process.exit(status)
