"""Splitting appliances across operator replicas.

kopf has no sharding and its peering is hot standby only. With `VNF_SHARD=i/n` a replica handles
only the appliances (and their operations) whose stable hash falls in shard i; each shard may
still run a hot-standby twin through kopf peering (`--peering=vnf-shard-i`). The hash is of
`namespace/name`, not uid, so an appliance's VnfOperations land on the same shard, and a changed
shard count moves each appliance to exactly one new owner.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        if not text:
            return cls()
        try:
            i, n = (int(x) for x in text.split("/", 1))
        except ValueError:
            raise ValueError(f"VNF_SHARD must look like i/n (e.g. 0/2), got {text!r}") from None
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"VNF_SHARD {text!r}: need 0 <= i < n")
        return cls(i, n)

    def owns(self, namespace: str, name: str) -> bool:
        if self.count == 1:
            return True
        return shard_of(namespace, name, self.count) == self.index

    @property
    def leads_cluster_objects(self) -> bool:
        """Cluster-scoped status (VnfProvider) is written by shard 0 only, so shards never fight."""
        return self.index == 0


def shard_of(namespace: str, name: str, count: int) -> int:
    digest = hashlib.sha256(f"{namespace}/{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % count
