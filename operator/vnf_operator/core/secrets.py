"""Keeping secret values out of every text the operator produces."""

from __future__ import annotations

from collections.abc import Iterable

MASK = "******"
# Values shorter than this are not masked by substring search: masking "a" would mangle every text.
_MIN_LEN = 4


class SecretMasker:
    """Replaces known secret values in text with a mask."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values: set[str] = set()
        self.add(*values)

    def add(self, *values: str) -> None:
        for v in values:
            if isinstance(v, str) and len(v) >= _MIN_LEN:
                self._values.add(v)

    def __call__(self, text: str) -> str:
        return self.mask(text)

    def mask(self, text: str) -> str:
        # Longest first, so a secret containing another is masked whole.
        for v in sorted(self._values, key=len, reverse=True):
            if v in text:
                text = text.replace(v, MASK)
        return text

    def __bool__(self) -> bool:
        return bool(self._values)


def mask(text: str, secrets: Iterable[str]) -> str:
    """Mask every secret value in `text`."""
    return SecretMasker(secrets).mask(text)
