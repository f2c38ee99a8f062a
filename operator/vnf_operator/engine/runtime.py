"""What the engine keeps for the life of the operator process."""

from __future__ import annotations

from vnf_operator.engine.appliance import ApplianceReconciler
from vnf_operator.engine.connections import ConnectionFactory
from vnf_operator.engine.secrets import SecretReader, SecretResolver


class Runtime:
    def __init__(self, kube: SecretReader) -> None:
        self.secrets = SecretResolver(kube)
        self.connections = ConnectionFactory()
        self.reconciler = ApplianceReconciler(self.secrets, self.connections)

    async def aclose(self) -> None:
        await self.connections.aclose()
