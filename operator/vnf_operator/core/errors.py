"""The public exception hierarchy.

Every error the engine raises is a `VnfError`. Messages name what is wrong (a document path,
a field, an operation) and never carry a secret value: callers mask text from devices before
putting it into an exception.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class VnfError(Exception):
    """Base class of every vnf-operator error."""


@dataclass(frozen=True)
class Problem:
    """One precise problem: where (a dotted document path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ProblemsError(VnfError):
    """An error carrying every problem found, not only the first."""

    kind = "invalid"

    def __init__(self, problems: Sequence[Problem], *, source: str = "") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{head}{len(self.problems)} problem(s), {self.kind}:\n{lines}")


class DictionaryError(ProblemsError):
    """A provider dictionary is malformed (YAML, structure or semantics)."""

    kind = "invalid provider dictionary"


class ItemValidationError(ProblemsError):
    """Desired items do not satisfy a service's data schema."""

    kind = "invalid items"


class TemplateError(VnfError):
    """A template failed to render (undefined variable, sandbox violation, bad filter input)."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


class InjectionError(TemplateError):
    """A value would change the meaning of a command or URL (newline, `;`, path separator...)."""


class ParseError(VnfError):
    """A device response could not be parsed as the dictionary says."""

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        super().__init__(f"{where}: {message}")


class TransportError(VnfError):
    """Talking to a device failed.

    `transient` says whether retrying may help (timeouts, resets, 5xx, 429); permanent errors
    (authentication, TLS or host-key mismatch, validation errors from the device) are not retried.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        appliance: str = "",
        connection: str = "",
        operation: str = "",
        device_message: str = "",
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.transient = transient
        self.appliance = appliance
        self.connection = connection
        self.operation = operation
        self.device_message = device_message
        self.status = status
        self.retry_after = retry_after
        self.reason_text = message
        super().__init__(self._compose())

    def _compose(self) -> str:
        where = "/".join(x for x in (self.appliance, self.connection, self.operation) if x)
        text = f"{where}: {self.reason_text}" if where else self.reason_text
        if self.device_message:
            text += f" (device said: {self.device_message})"
        return text

    def with_context(
        self, *, appliance: str | None = None, connection: str | None = None, operation: str | None = None
    ) -> TransportError:
        """Fill in context names that were unknown where the error was raised."""
        self.appliance = self.appliance or appliance or ""
        self.connection = self.connection or connection or ""
        self.operation = self.operation or operation or ""
        self.args = (self._compose(),)
        return self


class AuthenticationError(TransportError):
    """The device refused the credentials."""

    def __init__(self, message: str = "authentication failed", **kw: object) -> None:
        kw.setdefault("transient", False)
        super().__init__(message, **kw)  # type: ignore[arg-type]


class VerificationError(TransportError):
    """TLS certificate or SSH host key did not verify."""

    def __init__(self, message: str, **kw: object) -> None:
        kw.setdefault("transient", False)
        super().__init__(message, **kw)  # type: ignore[arg-type]


class DeviceError(TransportError):
    """The device answered, and said the operation failed."""

    def __init__(self, message: str = "device reported failure", **kw: object) -> None:
        kw.setdefault("transient", False)
        super().__init__(message, **kw)  # type: ignore[arg-type]
