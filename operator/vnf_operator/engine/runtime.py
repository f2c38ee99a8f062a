"""What the engine keeps for the life of the operator process."""

from __future__ import annotations

from vnf_operator.engine.appliance import ApplianceReconciler
from vnf_operator.engine.connections import ConnectionFactory
from vnf_operator.engine.secrets import SecretCache, SecretReader, SecretResolver
from vnf_operator.metrics import Metrics


class Runtime:
    def __init__(
        self, kube: SecretReader, metrics: Metrics | None = None, secret_cache: SecretCache | None = None
    ) -> None:
        self.secrets = SecretResolver(kube, secret_cache)
        self.connections = ConnectionFactory()
        self.reconciler = ApplianceReconciler(self.secrets, self.connections, metrics)

    async def aclose(self) -> None:
        await self.connections.aclose()
