"""Last line of defence: configured secrets are masked in anything we print or log."""

from __future__ import annotations

import os

MASK = "***"
_SECRET_ENV = ("OGANGI_PRIVATE_KEY", "SMSPIPE_API_TOKEN")


def secrets_from_env() -> list[str]:
    return [v for name in _SECRET_ENV if (v := os.environ.get(name)) and len(v) >= 4]


def redact(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else secrets_from_env():
        if secret:
            text = text.replace(secret, MASK)
    return text
