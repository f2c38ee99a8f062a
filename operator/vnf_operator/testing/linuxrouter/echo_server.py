"""Identity servers for the Linux router lab's backend namespace.

Each listener answers with who it is and who it sees, so tests observe load-balancer spreading
and NAT from the backend's point of view:

- `http` listeners answer any GET/POST/HEAD with a JSON object
  `{"backend", "server_address", "server_port", "client_address", "client_port", "method", "path",
  "x_forwarded_for"}`;
- `tcp` listeners write the same object (without the HTTP fields) as one JSON line and close.

    python -m vnf_operator.testing.linuxrouter.echo_server \\
        --serve backend-1=http:10.66.2.2:8080 --serve backend-1=tcp:10.66.2.2:9000 [--ready-file F]

All sockets are bound before the ready file is written.
"""

from __future__ import annotations

import argparse
import json
import signal
import socketserver
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Listener:
    """One `NAME=KIND:ADDRESS:PORT` listener."""

    name: str
    kind: str
    address: str
    port: int

    @classmethod
    def parse(cls, spec: str) -> Listener:
        name, sep, rest = spec.partition("=")
        kind, _, hostport = rest.partition(":")
        address, _, port = hostport.rpartition(":")
        if not (sep and name and kind in ("http", "tcp") and address and port.isdigit()):
            raise ValueError(f"bad listener {spec!r}, want NAME=http|tcp:ADDRESS:PORT")
        return cls(name=name, kind=kind, address=address, port=int(port))


def identity(name: str, local: Any, peer: Any) -> dict[str, Any]:
    """What a listener reports: its own name and address, and the client's address."""
    return {
        "backend": name,
        "server_address": str(local[0]),
        "server_port": int(local[1]),
        "client_address": str(peer[0]),
        "client_port": int(peer[1]),
    }


def _http_handler(name: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "vnflab-echo/1"

        def _reply(self, *, body: bool = True) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            info = identity(name, self.connection.getsockname(), self.client_address)
            info.update(
                method=self.command, path=self.path, x_forwarded_for=self.headers.get("X-Forwarded-For")
            )
            data = (json.dumps(info) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply()

        def do_POST(self) -> None:
            self._reply()

        def do_HEAD(self) -> None:
            self._reply(body=False)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

    return Handler


def _tcp_handler(name: str) -> type[socketserver.BaseRequestHandler]:
    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            info = identity(name, self.request.getsockname(), self.client_address)
            self.request.sendall((json.dumps(info) + "\n").encode())

    return Handler


class _TcpServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _HttpServer(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves its own name (getfqdn): no DNS in the lab, so skip it.
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])


def serve(listeners: Sequence[Listener], ready_file: Path | None = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    servers: list[socketserver.BaseServer] = []
    for lst in listeners:
        if lst.kind == "http":
            servers.append(_HttpServer((lst.address, lst.port), _http_handler(lst.name)))
        else:
            servers.append(_TcpServer((lst.address, lst.port), _tcp_handler(lst.name)))
    for srv in servers:
        threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 5.0}, daemon=True).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if ready_file is not None:
        ready_file.write_text("ready\n")
    stop.wait()
    for srv in servers:
        srv.server_close()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--serve", action="append", required=True, metavar="NAME=KIND:ADDRESS:PORT")
    parser.add_argument("--ready-file", type=Path)
    args = parser.parse_args(argv)
    serve([Listener.parse(s) for s in args.serve], args.ready_file)


if __name__ == "__main__":
    main()
