"""One appliance, one provider: render → send → parse for any operation of the dictionary."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.errors import DeviceError, TransportError, VnfError
from vnf_operator.core.loader import LoadedProvider
from vnf_operator.core.model import WRITE_OPERATIONS, CliCall, HttpCall, Operation, Pagination, Response
from vnf_operator.core.parse import Parsed, first_page, next_page, parse_response
from vnf_operator.core.render import (
    BatchChange,
    batch_context,
    find_operation,
    render_call,
    render_callback,
    render_operation,
    with_begin,
)
from vnf_operator.core.rendered import CliCommands, HttpRequest, RawResponse, RenderedOperation
from vnf_operator.core.secrets import SecretMasker

if TYPE_CHECKING:
    from vnf_operator.engine.connections import Connections

log = logging.getLogger(__name__)

READ_CACHE_MAX = 64 * 1024
"""Larger GET answers (long lists) are not remembered for `reuse`: a status page is small."""

RequestObserver = Callable[[str, str, float], None]
"""Called with (operation, outcome, seconds) after every device request (metrics)."""


@dataclass(frozen=True)
class ApplianceRef:
    name: str
    namespace: str
    host: str
    ports: Mapping[str, int] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)


class Session:
    """Executes dictionary operations against one appliance."""

    def __init__(
        self,
        provider: LoadedProvider,
        appliance: ApplianceRef,
        credentials: Mapping[str, str],
        connections: Connections,
        *,
        bootstrap_outputs: Mapping[str, str] | None = None,
        observe: RequestObserver | None = None,
    ) -> None:
        self.provider = provider
        self.dictionary = provider.dictionary
        self.appliance = appliance
        self.bootstrap_outputs = dict(bootstrap_outputs or {})
        # Outputs of bootstrap (a generated API key) stand in for credentials the Secret lacks.
        self.credentials = {**self.bootstrap_outputs, **credentials}
        self.connections = connections
        self.masker = SecretMasker([*credentials.values(), *self.bootstrap_outputs.values()])
        self.observe = observe
        self.requests = 0
        self.opened: dict[str, dict[str, Any]] = {}
        """Per service with an open transaction: the values its `begin` captured (`begin.NAME`)."""
        self._reads: dict[tuple[Any, ...], RawResponse] = {}
        """Answers to plain GETs since the last other request (`_read_key`)."""

    def context(self, **extra: Any) -> TemplateContext:
        extra.setdefault("bootstrap", self.bootstrap_outputs)
        return TemplateContext(appliance=self.info, credentials=self.credentials, **extra)

    def service_context(self, service: str, **extra: Any) -> TemplateContext:
        """`context`, plus `begin` while the service's transaction is open."""
        ctx = self.context(**extra)
        values = self.opened.get(service)
        return ctx if values is None else with_begin(ctx, values)

    async def begin(self, service: str) -> dict[str, Any]:
        """Run the service's `begin` steps in order (open its transaction); each step sees what the
        earlier ones captured. Raise DeviceError when a step fails or captures nothing for a name."""
        values: dict[str, Any] = {}
        self.opened[service] = values
        for i, step in enumerate(self.dictionary.services[service].begin):
            parsed = await self.run(service, f"begin[{i}]")
            for name in step.response.capture:
                if parsed.captured.get(name) is None:
                    raise DeviceError(
                        f"the answer has no value for `{name}` (response.capture.{name})",
                        operation=f"{service}.begin[{i}]",
                        appliance=f"{self.appliance.namespace}/{self.appliance.name}",
                    )
                values[name] = parsed.captured[name]
        return values

    async def abort(self, service: str) -> bool:
        """Run the service's `abort` (drop its open transaction); False when that failed too (the
        failure is logged, the caller raises the error that made it abort)."""
        if self.dictionary.services[service].abort is None or service not in self.opened:
            return False
        try:
            await self.run(service, "abort")
        except VnfError as exc:
            log.warning("abort of %s failed: %s", service, self.masker(str(exc)))
            return False
        return True

    def close(self, service: str) -> None:
        """Forget the service's transaction (committed or aborted)."""
        self.opened.pop(service, None)

    def _needs_transaction(self, service: str, name: str) -> bool:
        """A change, `commit` or `abort` of a service with `begin`, while no transaction is open."""
        svc = self.dictionary.services[service]
        if not svc.begin or service in self.opened:
            return False
        move = svc.ordering.move if svc.ordering is not None else None
        return name in (*WRITE_OPERATIONS, svc.batch, move, "commit", "abort")

    async def _alone(
        self, service: str, name: str, landed: Callable[[], Awaitable[bool]] | None, ctx: dict[str, Any]
    ) -> Parsed:
        """One change run outside a sync (an item removed at finalization, a VnfOperation): its own
        transaction, begun, committed, or aborted when it fails. `commit`/`abort` alone have nothing
        staged to act on."""
        if name in ("commit", "abort"):
            return Parsed(ok=True)
        opened = False
        try:
            await self.begin(service)
            opened = True
            parsed = await self.run(service, name, landed=landed, **ctx)
            if self.dictionary.services[service].commit is not None:
                await self.run(service, "commit")
        except Exception:
            if opened:
                await self.abort(service)
            raise
        finally:
            self.close(service)
        return parsed

    @property
    def info(self) -> ApplianceInfo:
        a = self.appliance
        return ApplianceInfo(
            name=a.name, namespace=a.namespace, host=a.host, ports=dict(a.ports), vars=dict(a.vars)
        )

    def operation(self, service: str, name: str) -> Operation:
        return find_operation(self.dictionary, service, name)[0]

    async def run(
        self,
        service: str,
        name: str,
        *,
        landed: Callable[[], Awaitable[bool]] | None = None,
        reuse: bool = False,
        **ctx: Any,
    ) -> Parsed:
        """Run one operation of a service; raise DeviceError when the device says it failed. A change
        of a service with `begin` run outside a sync's transaction gets a transaction of its own.
        `reuse`: a read may be answered by the same GET sent earlier in this session (`_read_key`)."""
        if self._needs_transaction(service, name):
            return await self._alone(service, name, landed, ctx)
        op = self.operation(service, name)
        where = f"services.{service}.operations.{name}"
        rendered = render_operation(self.provider, service, name, self.service_context(service, **ctx))
        # A begin step opens something (a transaction): retrying it blindly could open two.
        idempotent = (
            op.idempotent if op.idempotent is not None else name != "create" and not name.startswith("begin[")
        )
        pagination = op.response.pagination
        if pagination is not None and isinstance(rendered, HttpRequest):
            return await self._paginated(rendered, op.response, pagination, where, f"{service}.{name}")
        parsed, _ = await self._send(
            rendered, op.response, where, f"{service}.{name}", idempotent, landed, reuse=reuse
        )
        for i, callback in enumerate(op.then):
            await self._callback(service, name, i, callback.ignore_errors, parsed, ctx)
        return parsed

    async def run_batch(self, service: str, name: str, changes: Sequence[BatchChange]) -> Parsed:
        """Run a service's batch operation once for `changes` (one request); raise DeviceError
        when the device says it failed."""
        op = self.operation(service, name)
        where = f"services.{service}.operations.{name}"
        ctx = batch_context(self.provider, service, name, self.service_context(service), changes)
        rendered = render_operation(self.provider, service, name, ctx)
        # A batch with creates is not idempotent unless the dictionary says so (no blind retries).
        idempotent = op.idempotent if op.idempotent is not None else all(c.op != "create" for c in changes)
        parsed, _ = await self._send(rendered, op.response, where, f"{service}.{name}", idempotent, None)
        change_set = {
            "items": ctx.items,
            "creates": ctx.creates,
            "updates": ctx.updates,
            "deletes": ctx.deletes,
        }
        for i, callback in enumerate(op.then):
            await self._callback(service, name, i, callback.ignore_errors, parsed, change_set)
        return parsed

    async def _callback(
        self, service: str, name: str, index: int, ignore_errors: bool, result: Parsed, ctx: dict[str, Any]
    ) -> None:
        """The seed's `callback`: a follow-up call after an operation succeeded (`result` = its answer)."""
        cb, rendered = render_callback(
            self.provider, service, name, index, self.service_context(service, **ctx, result=result.as_step())
        )
        where = f"services.{service}.operations.{name}.then[{index}]"
        if isinstance(rendered, CliCommands) and not rendered.commands:
            return  # every line rendered empty (a batch's callback with nothing to act on)
        response = Response(format="none" if isinstance(rendered, HttpRequest) else "cli")
        try:
            await self._send(rendered, response, where, f"{service}.{name}.{cb.name}", True, None)
        except VnfError as exc:
            if not ignore_errors:
                raise
            log.warning(
                "callback %s of %s.%s failed (ignored): %s", cb.name, service, name, self.masker(str(exc))
            )

    async def _paginated(
        self, first: HttpRequest, response: Response, pagination: Pagination, where: str, operation: str
    ) -> Parsed:
        """Follow pages until the device's list is complete; items of every page, in order."""
        request = replace(first, query={**first.query, **first_page(pagination)})
        items: list[dict[str, Any]] = []
        pages = 0
        while True:
            parsed, _ = await self._send(request, response, where, operation, True, None)
            pages += 1
            items.extend(parsed.items)
            nxt = next_page(pagination, pages_read=pages, items_on_page=len(parsed.items), data=parsed.data)
            if nxt is None:
                return replace(parsed, items=items)
            if nxt.url is not None:
                path = nxt.url
                if "://" in path:  # an absolute URL: keep only what follows the connection's base
                    path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
                request = replace(request, path=path, query={})
            else:
                request = replace(request, query={**request.query, **nxt.query})

    async def run_call(
        self, call: HttpCall | CliCall, response: Response | None, *, where: str, **ctx: Any
    ) -> tuple[Parsed, RawResponse]:
        """Run an inline call (health checks, bootstrap steps, callbacks)."""
        rendered = render_call(self.provider, call, self.context(**ctx), where=where)
        resp = response or Response(format="json" if isinstance(call, HttpCall) else "cli")
        return await self._send(rendered, resp, where, where.rsplit(".", 1)[-1], True, None, check=False)

    @staticmethod
    def _read_key(rendered: RenderedOperation) -> tuple[Any, ...] | None:
        """Plain GETs are remembered until any other request is sent (a write or a CLI command may
        change what they return). Only a caller that asks (`reuse=True`) gets a remembered answer:
        a version read right after the health check that read the same status page costs no second
        request, while polls (a health check until the device reverted) always ask the device."""
        if not isinstance(rendered, HttpRequest) or rendered.method.upper() != "GET":
            return None
        if rendered.json is not None or rendered.form is not None or rendered.content is not None:
            return None
        return (
            rendered.connection,
            rendered.path,
            tuple(sorted(rendered.query.items())),
            tuple(sorted(rendered.headers.items())),
        )

    async def _send(
        self,
        rendered: RenderedOperation,
        response: Response,
        where: str,
        operation: str,
        idempotent: bool,
        landed: Callable[[], Awaitable[bool]] | None,
        *,
        check: bool = True,
        reuse: bool = False,
    ) -> tuple[Parsed, RawResponse]:
        read_key = self._read_key(rendered)
        if read_key is None:
            self._reads.clear()
        cached = self._reads.get(read_key) if read_key is not None and reuse else None
        started = time.monotonic()
        outcome = "error"
        if cached is None:
            self.requests += 1
        try:
            raw = cached or await self.connections.send(
                rendered, operation=operation, idempotent=idempotent, landed=landed
            )
            if read_key is not None and 200 <= (raw.status or 0) < 300 and len(raw.text) <= READ_CACHE_MAX:
                self._reads[read_key] = raw
            parsed = parse_response(
                response,
                raw,
                where=where,
                operation_kind=operation.rsplit(".", 1)[-1],
                error_patterns=self.connections.error_patterns(rendered.connection),
            )
            if check and not parsed.ok:
                outcome = "device_error"
                raise DeviceError(
                    "device rejected the operation",
                    operation=operation,
                    appliance=f"{self.appliance.namespace}/{self.appliance.name}",
                    device_message=self.masker(parsed.error or "")[:500],
                    status=raw.status,
                )
            outcome = "success"
            return parsed, raw
        except TransportError as exc:
            exc.with_context(
                appliance=f"{self.appliance.namespace}/{self.appliance.name}", operation=operation
            )
            outcome = "transient" if exc.transient else outcome
            raise
        finally:
            if self.observe is not None and cached is None:
                self.observe(operation, outcome, time.monotonic() - started)
