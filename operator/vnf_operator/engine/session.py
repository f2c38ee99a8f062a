"""One appliance, one provider: render → send → parse for any operation of the dictionary."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from vnf_operator.core.context import ApplianceInfo, TemplateContext
from vnf_operator.core.errors import DeviceError, TransportError, VnfError
from vnf_operator.core.loader import LoadedProvider
from vnf_operator.core.model import CliCall, HttpCall, Operation, Pagination, Response
from vnf_operator.core.parse import Parsed, first_page, next_page, parse_response
from vnf_operator.core.render import render_call, render_callback, render_operation
from vnf_operator.core.rendered import HttpRequest, RawResponse, RenderedOperation
from vnf_operator.core.secrets import SecretMasker

if TYPE_CHECKING:
    from vnf_operator.engine.connections import Connections

log = logging.getLogger(__name__)

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

    def context(self, **extra: Any) -> TemplateContext:
        extra.setdefault("bootstrap", self.bootstrap_outputs)
        return TemplateContext(appliance=self.info, credentials=self.credentials, **extra)

    @property
    def info(self) -> ApplianceInfo:
        a = self.appliance
        return ApplianceInfo(
            name=a.name, namespace=a.namespace, host=a.host, ports=dict(a.ports), vars=dict(a.vars)
        )

    def operation(self, service: str, name: str) -> Operation:
        svc = self.dictionary.services[service]
        if name == "commit" and svc.commit is not None:
            return svc.commit
        return svc.operations[name]

    async def run(
        self,
        service: str,
        name: str,
        *,
        landed: Callable[[], Awaitable[bool]] | None = None,
        **ctx: Any,
    ) -> Parsed:
        """Run one operation of a service; raise DeviceError when the device says it failed."""
        op = self.operation(service, name)
        where = f"services.{service}.operations.{name}"
        rendered = render_operation(self.provider, service, name, self.context(**ctx))
        idempotent = op.idempotent if op.idempotent is not None else name != "create"
        pagination = op.response.pagination
        if pagination is not None and isinstance(rendered, HttpRequest):
            return await self._paginated(rendered, op.response, pagination, where, f"{service}.{name}")
        parsed, _ = await self._send(rendered, op.response, where, f"{service}.{name}", idempotent, landed)
        for i, callback in enumerate(op.then):
            await self._callback(service, name, i, callback.ignore_errors, parsed, ctx)
        return parsed

    async def _callback(
        self, service: str, name: str, index: int, ignore_errors: bool, result: Parsed, ctx: dict[str, Any]
    ) -> None:
        """The seed's `callback`: a follow-up call after an operation succeeded (`result` = its answer)."""
        cb, rendered = render_callback(
            self.provider, service, name, index, self.context(**ctx, result=result.as_step())
        )
        where = f"services.{service}.operations.{name}.then[{index}]"
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
    ) -> tuple[Parsed, RawResponse]:
        started = time.monotonic()
        outcome = "error"
        self.requests += 1
        try:
            raw = await self.connections.send(
                rendered, operation=operation, idempotent=idempotent, landed=landed
            )
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
            if self.observe is not None:
                self.observe(operation, outcome, time.monotonic() - started)
