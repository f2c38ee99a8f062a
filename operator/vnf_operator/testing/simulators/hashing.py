"""Salted one-way hashes, so simulator state and dumps never hold clear-text secrets."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def hash_secret(secret: str, salt: str | None = None) -> str:
    salt = salt or secrets.token_hex(8)
    digest = hashlib.sha512(f"{salt}:{secret}".encode()).hexdigest()
    return f"$sim6${salt}${digest}"


def verify_secret(secret: str, stored: str) -> bool:
    try:
        _, scheme, salt, _digest = stored.split("$", 3)
    except ValueError:
        return False
    if scheme != "sim6":
        return False
    return hmac.compare_digest(hash_secret(secret, salt), stored)
