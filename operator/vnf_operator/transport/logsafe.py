"""Keeping secrets out of the network libraries' own log lines.

asyncssh logs every exec command line at INFO (`Command: ...`), httpx (the broker client and the
CLI) logs every request URL (query strings may carry an API key). aiohttp's client (device HTTP)
logs no URLs, but its debug lines name cookies and hosts. A filter on those loggers masks every
record with the maskers of the live transports, and drops asyncssh's command text altogether (a
rendered line may carry a secret no masker knows yet, e.g. a password being set).
"""

from __future__ import annotations

import logging
import re
import weakref

from vnf_operator.core.secrets import SecretMasker

_LOGGERS = ("asyncssh", "httpx", "httpcore", "aiohttp.client", "aiohttp.internal")
_COMMAND = re.compile(r"(\b(?:Command|Subsystem):\s*).*$", re.MULTILINE)
_maskers: weakref.WeakSet[SecretMasker] = weakref.WeakSet()
_installed = False


class MaskingFilter(logging.Filter):
    """Masks every registered secret in a record's message (arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken record: leave it to logging's own error handling
            return True
        masked = _COMMAND.sub(r"\1<not logged>", text) if record.name.startswith("asyncssh") else text
        for masker in list(_maskers):
            masked = masker.mask(masked)
        if masked != text:
            record.msg = masked
            record.args = None
        return True


def register(*maskers: SecretMasker | None) -> None:
    """Mask these maskers' secrets in the network libraries' logs (for as long as they live)."""
    install()
    for m in maskers:
        if m is not None:
            _maskers.add(m)


def install() -> None:
    global _installed
    if _installed:
        return
    f = MaskingFilter()
    for name in _LOGGERS:
        logging.getLogger(name).addFilter(f)
    _installed = True
