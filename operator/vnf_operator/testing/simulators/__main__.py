"""``python -m vnf_operator.testing.simulators VENDOR --port P [--tls] ...``"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .registry import SIMULATORS, VENDOR_ALIASES
from .runner import run_simulator


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m vnf_operator.testing.simulators",
        description="Run a vendor appliance simulator in the foreground.",
    )
    parser.add_argument("vendor", choices=sorted({*SIMULATORS, *VENDOR_ALIASES}))
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="HTTP(S) port, 0 = any free port")
    parser.add_argument("--ssh-port", type=int, default=0, help="SSH port for CLI vendors, 0 = any")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA")
    parser.add_argument("--tls-dir", help="where to write the CA PEM (default: a temp dir)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of 5xx answers")
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault RNG")
    parser.add_argument("--credentials-file", help="YAML/JSON with username/password/api_key/api_secret")
    parser.add_argument("--firmware", dest="firmware_version", help="firmware version to model")
    parser.add_argument("--factory", action="store_true", help="boot in factory-default state")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiplier for vendor timers")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    run_simulator(
        args.vendor,
        args.port,
        host=args.host,
        tls=args.tls,
        latency_ms=args.latency_ms,
        credentials_file=args.credentials_file,
        ssh_port=args.ssh_port,
        firmware_version=args.firmware_version,
        factory_defaults=args.factory,
        error_rate=args.error_rate,
        seed=args.seed,
        time_scale=args.time_scale,
        tls_dir=args.tls_dir,
    )


if __name__ == "__main__":
    main()
