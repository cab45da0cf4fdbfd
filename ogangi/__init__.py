"""Client for the Ogangi (Messangi) legacy REST API: signing, hardened XML, typed async calls."""

from __future__ import annotations

from ogangi.client import OgangiClient, RequestEvent
from ogangi.errors import (
    AmbiguousError,
    BadSignature,
    HttpError,
    InvalidParameter,
    MalformedResponse,
    OgangiError,
    ProviderError,
    RateLimited,
    TransientError,
)
from ogangi.models import (
    Broadcast,
    BroadcastStatus,
    Credentials,
    JsonRecipient,
    Message,
    MessageStatus,
    TransactionResult,
)
from ogangi.recipient_file import (
    SmsRow,
    write_recipient_file,
    write_recipient_file_arrow,
    write_recipient_file_columns,
)
from ogangi.signing import sign, verify

__all__ = [
    "AmbiguousError",
    "BadSignature",
    "Broadcast",
    "BroadcastStatus",
    "Credentials",
    "HttpError",
    "InvalidParameter",
    "JsonRecipient",
    "MalformedResponse",
    "Message",
    "MessageStatus",
    "OgangiClient",
    "OgangiError",
    "ProviderError",
    "RateLimited",
    "RequestEvent",
    "SmsRow",
    "TransactionResult",
    "TransientError",
    "sign",
    "verify",
    "write_recipient_file",
    "write_recipient_file_arrow",
    "write_recipient_file_columns",
]
