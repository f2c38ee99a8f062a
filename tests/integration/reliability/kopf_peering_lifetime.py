"""Loaded into a test operator (`kopf run ... PATH`): a shorter kopf peering lifetime.

kopf's default keep-alive lifetime is 60 s, so a standby waits up to a minute before it takes over
from a killed peer. The HA tests set `VNF_TEST_PEERING_LIFETIME` (seconds) to keep runs short;
kopf reads the setting only after the startup handlers ran, when it starts its peering tasks.
"""

from __future__ import annotations

import os
from typing import Any

import kopf


@kopf.on.startup()
async def short_peering_lifetime(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.lifetime = int(os.environ.get("VNF_TEST_PEERING_LIFETIME", "60"))
