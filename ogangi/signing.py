"""Request signing for the Ogangi API (spec section 2).

The signature covers the *decoded* path parameters joined by ``/``; the URL carries them
percent-encoded (UTF-8). Only lower-case hex is ever emitted: the provider documents no other form.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import quote, unquote

from ogangi.errors import InvalidParameter

#: Characters that travel raw in a path segment; for these the signed and sent forms agree (§2.3).
SAFE_CHARS = "-_.~:=@!$'()*+,;"

NULL = "null"


def string_to_sign(params: Sequence[str]) -> str:
    return "/".join(params)


def sign(private_key: str, params: Sequence[str]) -> str:
    """Lower-case hex HMAC-SHA256 of the decoded parameters, keyed by the UTF-8 private key."""
    message = string_to_sign(params).encode("utf-8")
    return hmac.new(private_key.encode("utf-8"), message, hashlib.sha256).hexdigest()


def check_segment(name: str, value: str) -> str:
    """Refuse values the path cannot carry, before any request is made."""
    if value == "":
        raise InvalidParameter(f"parameter {name!r} is empty; use None for an absent optional value")
    if "/" in value:
        raise InvalidParameter(f"parameter {name!r} contains '/', which the API path cannot carry")
    return value


def encode_segment(value: str) -> str:
    return quote(value, safe=SAFE_CHARS, encoding="utf-8")


def decode_segment(segment: str) -> str:
    """The simulator's reading of a received segment: percent-decoded once, UTF-8."""
    return unquote(segment, encoding="utf-8", errors="strict")


def signed_path(route: str, params: Sequence[str], public_key: str, private_key: str) -> str:
    """``rest/api/{route}/{p1}/.../{pN}/{publicKey}/{signature}`` with encoded segments."""
    signature = sign(private_key, params)
    segments = [encode_segment(p) for p in params]
    return "/".join(["rest/api", route, *segments, encode_segment(public_key), signature])


def verify(private_key: str, params: Sequence[str], signature: str, *, lenient: bool = False) -> bool:
    """Constant-time check of a received signature; ``lenient`` also accepts upper-case hex."""
    expected = sign(private_key, params)
    if hmac.compare_digest(expected, signature):
        return True
    return lenient and hmac.compare_digest(expected.upper(), signature)
