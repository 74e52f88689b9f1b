"""Idempotency keys: what makes a repeated create return the task already made."""

from __future__ import annotations

import secrets

from evolink._errors import ValidationError

_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


def new_idempotency_key() -> str:
    """A fresh key: 36 characters of [A-Za-z0-9_-], unguessable."""
    return f"evl-{secrets.token_urlsafe(24)}"


def check_idempotency_key(key: str | None) -> None:
    """Raise `ValidationError` unless `key` is None or 16-96 characters of [A-Za-z0-9._-]."""
    if key is None:
        return
    if not 16 <= len(key) <= 96 or not _KEY_CHARS.issuperset(key):
        raise ValidationError(
            "idempotency_key", "format", "must be 16-96 characters of A-Z, a-z, 0-9, '.', '_', '-'"
        )
