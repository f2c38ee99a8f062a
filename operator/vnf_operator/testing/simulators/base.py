"""Common machinery for vendor simulators: listeners, TLS, faults, admin endpoints, telemetry.

A simulator is an aiohttp application (plus, for CLI vendors, an asyncssh server) bound to
127.0.0.1. Tests start it in-process::

    async with OpnsenseSimulator(SimulatorConfig(tls=True)) as sim:
        client = httpx.AsyncClient(base_url=sim.base_url, verify=sim.client_ssl_context())

Admin endpoints, never subject to auth or faults:

- ``GET/POST /_sim/faults``: read or partially update the fault knobs (JSON body)
- ``GET /_sim/state``: full vendor state dump (secrets are stored hashed, never in clear)
- ``GET/DELETE /_sim/stats``: request counts by method + path template (DELETE resets them)
- ``GET /_sim/requests``: the request log (method, path, status only)
- ``POST /_sim/restart``: reboot the appliance (drops unsaved state, keeps the ports)
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import yaml
from aiohttp import web

from .faults import FaultConfig, FaultInjector, FaultKind
from .sshd import CliOutput, CliSession, SshFrontend
from .telemetry import Telemetry
from .tls import TlsMaterial, generate_tls_material

log = logging.getLogger(__name__)

TEMPLATE_KEY = web.RequestKey("vnf_sim_template", str)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Credentials:
    """Login material; which fields matter depends on the vendor (see docs/simulators.md)."""

    username: str = "admin"
    password: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)
    api_secret: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], defaults: Credentials) -> Credentials:
        unknown = set(data) - {"username", "password", "api_key", "api_secret"}
        if unknown:
            raise ValueError(f"unknown credential field(s): {', '.join(sorted(unknown))}")
        return cls(
            username=str(data.get("username", defaults.username)),
            password=str(data.get("password", defaults.password)),
            api_key=str(data.get("api_key", defaults.api_key)),
            api_secret=str(data.get("api_secret", defaults.api_secret)),
        )

    @classmethod
    def from_file(cls, path: str | Path, defaults: Credentials) -> Credentials:
        """Read a YAML or JSON mapping with any of the four fields."""
        data = yaml.safe_load(Path(path).read_text())
        if not isinstance(data, dict):
            raise ValueError("credentials file must hold a mapping")
        return cls.from_mapping(data, defaults)


@dataclass
class SimulatorConfig:
    """How to run one simulator."""

    host: str = "127.0.0.1"
    port: int = 0
    tls: bool = False
    ssh: bool = True
    ssh_port: int = 0
    credentials: Credentials | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    firmware_version: str | None = None
    factory_defaults: bool = False
    # Vendor timers (OPNsense rollback, VyOS commit-confirm) are multiplied by this.
    time_scale: float = 1.0
    hostname: str | None = None


class _Dropped(web.Response):
    """Placeholder for a connection closed without an answer (logged with status 0)."""


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON response with compact separators, as PHP and most appliances emit."""
    return web.Response(
        text=json.dumps(data, separators=(",", ":")),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def set_template(request: web.Request, template: str) -> None:
    """Label the request for /_sim/stats (e.g. ``/api/firewall/filter/setRule/{uuid}``)."""
    request[TEMPLATE_KEY] = template


class BaseSimulator(abc.ABC):
    """Lifecycle, listeners and cross-cutting behaviour; vendors add routes and state."""

    vendor: ClassVar[str] = ""
    default_firmware: ClassVar[str] = ""
    default_credentials: ClassVar[Credentials] = Credentials()
    default_hostname: ClassVar[str] = "appliance"
    has_http: ClassVar[bool] = True
    has_ssh: ClassVar[bool] = False

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.credentials = self.config.credentials or self.default_credentials
        self.firmware_version = self.config.firmware_version or self.default_firmware
        self.hostname = self.config.hostname or self.default_hostname
        self.faults = FaultInjector(self.config.faults)
        self.telemetry = Telemetry()
        self.tls: TlsMaterial | None = generate_tls_material() if self.config.tls else None
        self._runner: web.AppRunner | None = None
        self._http_port = self.config.port
        self._ssh: SshFrontend | None = None
        self._ssh_port = self.config.ssh_port
        self._stopping = asyncio.Event()
        self._started = False
        self._background: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------------- vendor hooks
    @abc.abstractmethod
    def setup_routes(self, app: web.Application) -> None:
        """Register the vendor API on the application."""

    @abc.abstractmethod
    def on_reboot(self) -> None:
        """Drop whatever the real device loses on a reboot (unsaved or staged state)."""

    @abc.abstractmethod
    def dump_state(self) -> dict[str, Any]:
        """Everything a test may want to assert on; must not contain secrets in clear."""

    def create_cli_session(self, username: str) -> CliSession:
        raise NotImplementedError(f"{self.vendor} has no CLI")

    def check_ssh_password(self, username: str, password: str) -> bool:
        return username == self.credentials.username and password == self.credentials.password

    def fault_error_response(self, status: int) -> web.StreamResponse:
        return web.Response(status=status, text="simulated server error\n")

    def rate_limited_response(self, retry_after_s: int) -> web.StreamResponse:
        return web.Response(
            status=429, text="Too Many Requests\n", headers={"Retry-After": str(retry_after_s)}
        )

    # ----------------------------------------------------------------- properties
    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def port(self) -> int:
        return self._http_port

    @property
    def base_url(self) -> str:
        if not self._started or not self.has_http:
            raise RuntimeError("simulator has no HTTP listener running")
        return f"{self.scheme}://{self.config.host}:{self._http_port}"

    @property
    def ssh_port(self) -> int | None:
        return self._ssh_port if self._ssh is not None else None

    @property
    def ssh_host_public_key(self) -> str | None:
        return self._ssh.host_public_key if self._ssh is not None else None

    @property
    def tls_ca_pem(self) -> str | None:
        return self.tls.ca_pem if self.tls else None

    @property
    def tls_cert_pem(self) -> str | None:
        return self.tls.cert_pem if self.tls else None

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context trusting only this simulator's CA (TLS mode only)."""
        if self.tls is None:
            raise RuntimeError("simulator runs without TLS")
        return self.tls.client_context()

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> str:
        """Start listening; returns the base URL (or ``ssh://host:port`` for CLI-only vendors)."""
        if self._started:
            raise RuntimeError("simulator already started")
        self._stopping = asyncio.Event()
        await self._start_listeners()
        self._started = True
        if self.has_http:
            return self.base_url
        return f"ssh://{self.config.host}:{self._ssh_port}"

    async def stop(self) -> None:
        if not self._started:
            return
        self._stopping.set()
        await self._stop_listeners()
        await self.on_stop()
        self._started = False

    async def on_stop(self) -> None:
        """Cancel vendor timers; the simulator may be started again afterwards."""
        return None

    async def restart(self) -> None:
        """Reboot: listeners go away (open connections drop), unsaved state is lost."""
        if not self._started:
            raise RuntimeError("simulator not started")
        self._stopping.set()
        await self._stop_listeners()
        self._stopping = asyncio.Event()
        self.on_reboot()
        await self._start_listeners()

    async def __aenter__(self) -> BaseSimulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _start_listeners(self) -> None:
        if self.has_http:
            app = web.Application(middlewares=[self._middleware], client_max_size=16 * 1024 * 1024)
            self._setup_admin_routes(app)
            self.setup_routes(app)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(
                runner,
                self.config.host,
                self._http_port,
                ssl_context=self.tls.server_context() if self.tls else None,
                reuse_address=True,
            )
            await site.start()
            self._runner = runner
            self._http_port = int(runner.addresses[0][1])
        if self.has_ssh and self.config.ssh:
            frontend = self._ssh or SshFrontend(
                self.create_cli_session,
                self.check_ssh_password,
                self._before_cli_command,
                self._after_cli_command,
            )
            self._ssh_port = await frontend.start(self.config.host, self._ssh_port)
            self._ssh = frontend

    async def _stop_listeners(self) -> None:
        if self._ssh is not None:
            await self._ssh.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ----------------------------------------------------------------- CLI hooks
    async def _before_cli_command(self, session: CliSession, line: str) -> None:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)

    def _after_cli_command(self, session: CliSession, line: str, result: CliOutput) -> None:
        label = session.template(line)
        self.telemetry.record("SSH", label, label, 0 if result.ok else 1)

    # ----------------------------------------------------------------- HTTP middleware
    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_sim/"):
            return await handler(request)
        status = 0
        try:
            response = await self._handle_with_faults(request, handler)
            status = 0 if isinstance(response, _Dropped) else response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            self.telemetry.record(request.method, request.path, self._template_of(request), status)

    def _template_of(self, request: web.Request) -> str:
        template = request.get(TEMPLATE_KEY)
        if template:
            return str(template)
        route = request.match_info.route
        resource = route.resource
        return resource.canonical if resource is not None else request.path

    async def _handle_with_faults(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self.faults.latency_s:
            await asyncio.sleep(self.faults.latency_s)
        decision = self.faults.decide()
        if decision.kind is FaultKind.RATE_LIMITED:
            return self.rate_limited_response(decision.retry_after_s)
        if decision.kind is FaultKind.TIMEOUT:
            # Hang past any sane client timeout, then hang up without answering.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.faults.config.hang_s)
            return self._drop(request)
        if decision.kind is FaultKind.DROP:
            return self._drop(request)
        if decision.kind is FaultKind.ERROR:
            return self.fault_error_response(self.faults.config.error_status)
        return await handler(request)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        if request.transport is not None:
            request.transport.close()
        # The response is never written: the connection is already gone.
        return _Dropped()

    # ----------------------------------------------------------------- admin endpoints
    def _setup_admin_routes(self, app: web.Application) -> None:
        app.router.add_get("/_sim/faults", self._admin_get_faults)
        app.router.add_post("/_sim/faults", self._admin_set_faults)
        app.router.add_get("/_sim/state", self._admin_state)
        app.router.add_get("/_sim/stats", self._admin_stats)
        app.router.add_delete("/_sim/stats", self._admin_reset_stats)
        app.router.add_get("/_sim/requests", self._admin_requests)
        app.router.add_post("/_sim/restart", self._admin_restart)

    async def _admin_get_faults(self, request: web.Request) -> web.StreamResponse:
        return json_response(self.faults.snapshot())

    async def _admin_set_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            self.faults.update(body)
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, status=400)
        return json_response(self.faults.snapshot())

    async def _admin_state(self, request: web.Request) -> web.StreamResponse:
        state = {
            "vendor": self.vendor,
            "firmware_version": self.firmware_version,
            "hostname": self.hostname,
            **self.dump_state(),
        }
        return json_response(state)

    async def _admin_stats(self, request: web.Request) -> web.StreamResponse:
        stats = self.telemetry.stats()
        stats["faults"] = self.faults.snapshot()["injected"]
        return json_response(stats)

    async def _admin_reset_stats(self, request: web.Request) -> web.StreamResponse:
        self.telemetry.reset()
        return json_response({"status": "ok"})

    async def _admin_requests(self, request: web.Request) -> web.StreamResponse:
        return json_response([record.as_dict() for record in self.telemetry.request_log])

    async def _admin_restart(self, request: web.Request) -> web.StreamResponse:
        # Answer first: the restart tears down this very listener.
        self.spawn(self._restart_soon())
        return json_response({"status": "restarting"})

    async def _restart_soon(self) -> None:
        await asyncio.sleep(0.05)
        await self.restart()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a background coroutine, keeping a reference until it finishes."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
