"""Run the reference broker.

    python -m vnf_operator.broker --listen 127.0.0.1:8800 --token-file F \
        --tls-cert C --tls-key K --allow 10.0.0.0/8
"""

from __future__ import annotations

import argparse
import logging
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from vnf_operator.broker.app import AllowList, BrokerConfig, TokenSource, create_app

log = logging.getLogger("vnf_operator.broker")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise argparse.ArgumentTypeError("expected HOST:PORT")
    return host.strip("[]"), int(port)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m vnf_operator.broker", description=__doc__)
    p.add_argument(
        "--listen", type=_listen, default=("127.0.0.1", 8800), help="HOST:PORT (default 127.0.0.1:8800)"
    )
    p.add_argument(
        "--token-file", type=Path, required=True, help="file holding the bearer token (re-read on change)"
    )
    p.add_argument("--tls-cert", type=Path, help="server certificate chain (PEM)")
    p.add_argument("--tls-key", type=Path, help="server private key (PEM)")
    p.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="NET|HOST",
        help="target networks (CIDR), host names or *.suffix patterns to relay to; repeatable",
    )
    p.add_argument("--max-body-bytes", type=int, default=1024 * 1024)
    p.add_argument(
        "--idle-timeout", type=float, default=300.0, help="close idle device connections after seconds"
    )
    p.add_argument("--max-concurrency", type=int, default=256)
    p.add_argument(
        "--plaintext",
        action="store_true",
        help="serve without TLS (only for a loopback listener in tests; the token would travel in clear)",
    )
    p.add_argument("--log-level", default="INFO")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    if not args.tls_cert and not args.plaintext:
        p.error("TLS is required: give --tls-cert and --tls-key (or --plaintext for loopback tests)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ssl_context: ssl.SSLContext | None = None
    if args.tls_cert:
        ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    try:
        tokens = TokenSource(path=args.token_file)
    except (OSError, ValueError) as e:
        print(f"cannot read the token file {args.token_file}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    config = BrokerConfig(
        tokens=tokens,
        allow=AllowList(args.allow),
        max_body_bytes=args.max_body_bytes,
        idle_timeout=args.idle_timeout,
        max_concurrency=args.max_concurrency,
    )
    host, port = args.listen
    log.info("broker listening on %s:%d (%s)", host, port, "TLS" if ssl_context else "plaintext")
    web.run_app(
        create_app(config),
        host=host,
        port=port,
        ssl_context=ssl_context,
        access_log=None,
        print=None,
        handle_signals=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
