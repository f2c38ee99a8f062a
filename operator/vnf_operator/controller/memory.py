"""Process settings that keep the operator's resident memory near what it uses: glibc malloc
arenas, and the read buffer of asyncio's TLS connections.

The operator builds SSL contexts and TLS connections in worker threads (`asyncio.to_thread`), and
glibc gives each thread its own malloc arena (up to 8 per core): memory freed there stays mapped,
fragmented, and a large fleet's RSS grows with every round of reconnects. Two arenas and an
occasional `malloc_trim` keep it close to the live data (the same advice as for other long-running
Python services). Not glibc (musl, macOS): nothing to do.
"""

from __future__ import annotations

import asyncio.sslproto
import ctypes
import ctypes.util
import logging
import os

log = logging.getLogger(__name__)
M_ARENA_MAX = -8  # mallopt parameter, glibc's malloc.h
DEFAULT_ARENAS = 2
DEFAULT_TLS_READ_BUFFER_KIB = 32


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


LIBC = _libc()


def limit_arenas() -> None:
    """At startup, before worker threads exist. `VNF_MALLOC_ARENA_MAX=0` leaves glibc's default."""
    arenas = int(os.environ.get("VNF_MALLOC_ARENA_MAX", str(DEFAULT_ARENAS)))
    if LIBC is None or arenas <= 0:
        return
    if not LIBC.mallopt(M_ARENA_MAX, arenas):
        log.debug("mallopt(M_ARENA_MAX, %d) refused", arenas)


def trim() -> None:
    """Give memory freed since the last call back to the system."""
    if LIBC is not None and os.environ.get("VNF_MALLOC_ARENA_MAX", "") != "0":
        LIBC.malloc_trim(0)


def small_tls_read_buffers() -> None:
    """asyncio's TLS transport zero-fills a 256 KiB read buffer per connection
    (`asyncio.sslproto.SSLProtocol.max_size`): with one connection per busy appliance that was
    ~300 KiB each (measured: 200 connections +60 MiB; with 32 KiB, +16 MiB). Device answers are then
    read in more, smaller chunks. `VNF_TLS_READ_BUFFER_KIB=0` keeps asyncio's default."""
    kib = int(os.environ.get("VNF_TLS_READ_BUFFER_KIB", str(DEFAULT_TLS_READ_BUFFER_KIB)))
    if kib > 0:
        asyncio.sslproto.SSLProtocol.max_size = kib * 1024
