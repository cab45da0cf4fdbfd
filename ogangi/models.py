"""Typed values the API exchanges. Statuses stay open strings: the provider's list is not closed."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Credentials:
    """One workspace's keys. The private key is kept out of ``repr`` so it cannot leak into logs."""

    instance_id: int
    public_key: str
    private_key: str = field(repr=False)
    username: str

    def __post_init__(self) -> None:
        if not self.private_key:
            raise ValueError("private key is empty")


class MessageStatus(str, enum.Enum):
    """Known SMS statuses (spec §9.2). Unknown ones are kept as plain strings, never an error."""

    SENT = "SENT"
    SENT_TO_CARRIER = "SENT_TO_CARRIER"
    DELIVERED_TO_CARRIER = "DELIVERED_TO_CARRIER"
    SENT_TO_DEVICE = "SENT_TO_DEVICE"
    DELIVERED_TO_DEVICE = "DELIVERED_TO_DEVICE"
    EXPIRED = "EXPIRED"
    UNREACHABLE = "UNREACHABLE"
    NOT_SENT = "NOT_SENT"
    BAD_FROM = "BAD_FROM"
    BAD_TO = "BAD_TO"
    BAD_ENCODING = "BAD_ENCODING"
    BAD_CARRIER_FROM = "BAD_CARRIER/FROM"
    BAD_TIMEZONE = "BAD_TIMEZONE"
    UNDELIVERED = "UNDELIVERED"
    NOT_ENOUGH_FUNDS = "NOT_ENOUGH_FUNDS"
    SENDING = "SENDING"
    PENDING = "PENDING"
    READ = "READ"


#: Statuses that mean the provider took the message; anything else on a row is a failure.
ACCEPTED_STATUSES = frozenset(
    {
        "SENT",
        "SENT_TO_CARRIER",
        "DELIVERED_TO_CARRIER",
        "SENT_TO_DEVICE",
        "DELIVERED_TO_DEVICE",
        "SENDING",
        "PENDING",
        "READ",
        "ACCEPTD",
        "BUFFRED",
        "DELIVRD",
        "DELIVERED TO CARRIER",
    }
)


class BroadcastStatus(str, enum.Enum):
    """Broadcast states (spec §9.4); SCHEDULED is the project's extension (code 0)."""

    SCHEDULED = "SCHEDULED"
    SENDING = "SENDING"
    DONE = "DONE"
    SUSPENDED = "SUSPENDED"
    ABORTED = "ABORTED"
    FORCED_SUSPENDED = "FORCED_SUSPENDED"
    UNKNOWN = "UNKNOWN"

    @property
    def code(self) -> int | None:
        return _BROADCAST_CODES.get(self)

    @property
    def final(self) -> bool:
        return self in (BroadcastStatus.DONE, BroadcastStatus.ABORTED)

    @classmethod
    def normalize(cls, raw: str | int | None) -> BroadcastStatus:
        """Accept ``2``, ``STATUS_DONE`` or ``DONE`` (the wire form is undocumented, §13 A16)."""
        if raw is None:
            return cls.UNKNOWN
        text = str(raw).strip().upper().replace(" ", "_")
        if text.isdigit():
            return _BROADCAST_BY_CODE.get(int(text), cls.UNKNOWN)
        text = text.removeprefix("STATUS_")
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


_BROADCAST_CODES = {
    BroadcastStatus.SCHEDULED: 0,
    BroadcastStatus.SENDING: 1,
    BroadcastStatus.DONE: 2,
    BroadcastStatus.SUSPENDED: 3,
    BroadcastStatus.ABORTED: 4,
    BroadcastStatus.FORCED_SUSPENDED: 5,
}
_BROADCAST_BY_CODE = {code: status for status, code in _BROADCAST_CODES.items()}


@dataclass(frozen=True)
class Message:
    """One ``<message>`` of a sendSMSByFile reply: one per recipient row, in file order."""

    id: str | None
    to: str
    status: str
    status_description: str = ""
    sender: str | None = None
    carrier: str | None = None
    text: str | None = None
    encoding: str | None = None
    date: datetime | None = None
    timezone: str | None = None
    client_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ACCEPTED_STATUSES


@dataclass(frozen=True)
class Broadcast:
    id: int
    status: BroadcastStatus
    raw_status: str | None = None
    text: str | None = None
    start_date: datetime | None = None
    end_date: datetime | None = None
    expected_messages: int | None = None
    sent_messages: int | None = None
    shortcode: str | None = None


@dataclass(frozen=True)
class TransactionResult:
    successful: bool
    message: str = ""


@dataclass(frozen=True)
class JsonRecipient:
    """One entry of the createBroadcastFromJson ``to`` document (spec §8)."""

    mobile: str
    text: str
    params: tuple[str, ...] = ()
    encoding: str | None = None
    timezone: str | None = None

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {"mobile": self.mobile, "text": self.text}
        if self.params:
            doc["params"] = list(self.params)
        if self.encoding:
            doc["encoding"] = self.encoding
        if self.timezone:
            doc["timezone"] = self.timezone
        return doc
