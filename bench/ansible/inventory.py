"""Write the Ansible inventory for the simulator farm (one host per appliance).

    python bench/ansible/inventory.py --ports 40001,40002 --ca-file ca.pem --rules 20 --out inv.json

The API key and secret come from the environment (OPNSENSE_API_KEY, OPNSENSE_API_SECRET) so they
never appear on a command line; the file is written with mode 0600. JSON is valid YAML, and
ansible-inventory reads it as a YAML inventory.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def device_rule(rule: Mapping[str, Any]) -> dict[str, str]:
    """A rule as the OPNsense API takes it in `addRule` (every value a string)."""
    return {"enabled": "1", **{k: str(v) for k, v in rule.items()}}


def inventory(
    ports: Sequence[int],
    *,
    api_key: str,
    api_secret: str,
    ca_file: str,
    rules: Sequence[Mapping[str, Any]],
    python: str = sys.executable,
) -> dict[str, Any]:
    hosts = {f"fw-{i:04d}": {"ansible_host": "127.0.0.1", "api_port": port} for i, port in enumerate(ports)}
    return {
        "all": {
            "children": {
                "opnsense": {
                    "hosts": hosts,
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": python,
                        "opnsense_api_key": api_key,
                        "opnsense_api_secret": api_secret,
                        "opnsense_ca_file": ca_file,
                        "firewall_rules": [device_rule(r) for r in rules],
                    },
                }
            }
        }
    }


def write_inventory(path: Path, data: Mapping[str, Any]) -> Path:
    path.touch(mode=0o600)
    path.write_text(json.dumps(data, indent=1))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ports", required=True, help="comma-separated API ports, one per appliance")
    parser.add_argument("--ca-file", required=True)
    parser.add_argument("--rules", type=int, default=20, help="rules per appliance (rule-0000, ...)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rules = [
        {
            "description": f"rule-{j:04d}",
            "action": "pass" if j % 3 else "block",
            "interface": "wan",
            "protocol": "TCP",
            "destination_port": str(10000 + j),
        }
        for j in range(args.rules)
    ]
    data = inventory(
        [int(p) for p in args.ports.split(",")],
        api_key=os.environ["OPNSENSE_API_KEY"],
        api_secret=os.environ["OPNSENSE_API_SECRET"],
        ca_file=args.ca_file,
        rules=rules,
    )
    write_inventory(Path(args.out), data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
