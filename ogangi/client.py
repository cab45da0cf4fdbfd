"""Async client for the Ogangi legacy REST API: one typed method per endpoint (spec §5).

What a caller sees when something goes wrong (the tree and its kinds live in ``ogangi.errors``):

```
refused locally (bad segment, empty file, ...)          InvalidParameter   permanent
connect refused / DNS / TLS / connect timeout           TransientError     retryable, nothing sent
disconnect, reset or timeout once connected             AmbiguousError     provider may have acted
HTTP 429                                                RateLimited        retryable, retry_after
HTTP 5xx                                                TransientError     retryable
any other non-2xx (404, 405, unfollowed 3xx, ...)       HttpError          permanent: base URL/route
HTTP 204 (empty)                                        read as <status>OK with no result
2xx that is not the API's XML / lacks the result        MalformedResponse  ambiguous
<status>BAD_SIGNATURE                                   BadSignature       permanent
<status>ERROR                                           ProviderError      permanent, ``detail``
any other <status>                                      AmbiguousError
```

The client never retries. Errors name the endpoint, never the URL: the URL carries the signature,
and for sendSMSByFile (signed over the instance id alone, body unsigned) that signature is a
reusable credential. The private key goes to ``ogangi.signing`` and nowhere else.

A session the client creates itself opens a fresh connection per request (``force_close``):
a request written to a keep-alive connection the server had already dropped fails exactly like
one the server read and then dropped, and only the fresh connection tells the two apart. A
session passed in is used as is (aiohttp itself re-sends GET/DELETE once on a dead pooled
connection; POSTs are never re-sent).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Self
from urllib.parse import urlencode

import aiohttp
from yarl import URL

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
    TransactionResult,
)
from ogangi.signing import NULL, check_segment, signed_path
from ogangi.xml import (
    DEFAULT_MAX_BYTES,
    Envelope,
    MessageColumns,
    parse_broadcast,
    parse_envelope,
    parse_message_columns,
    parse_messages,
    parse_shortcodes,
    parse_transaction,
)

logger = logging.getLogger(__name__)

#: Request date format of createBroadcastFromJson (``dd-MM-yyyy HH:mm``, §3).
START_FORMAT = "%d-%m-%Y %H:%M"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded; charset=UTF-8"
#: What an empty HTTP 204 stands for: one third-party note says the server answers success
#: that way (§13 A12). Endpoints that need a result still fail on it, as MalformedResponse.
NO_CONTENT_REPLY = b"<status>OK</status><description>No Content</description>"


#: Replies larger than this are parsed off the event loop.
_THREAD_PARSE_BYTES = 256 * 1024

#: Answers from a proxy in front of the provider; for a POST/DELETE they do not prove it did nothing.
GATEWAY_STATUSES = frozenset({502, 504})


@dataclass(frozen=True)
class Endpoint:
    """``name`` is what errors and hooks call it; ``route`` is what the URL carries."""

    name: str
    method: str
    route: str


SEND_SMS_BY_FILE = Endpoint("sendSMSByFile", "POST", "tools/sendSMSByFile")
GET_SHORTCODES = Endpoint("getShortcodes", "GET", "getShortcodes")
CREATE_BROADCAST_FROM_JSON = Endpoint("createBroadcastFromJson", "POST", "createBroadcastFromJson")
GET_BROADCAST = Endpoint("getBroadcast", "GET", "getBroadcast")
SUSPEND_BROADCAST = Endpoint("suspendBroadcast", "POST", "suspendBroadcast")
RESUME_BROADCAST = Endpoint("resumeBroadcast", "POST", "resumeBroadcast")
STOP_BROADCAST = Endpoint("stopBroadcast", "POST", "stopBroadcast")
DELETE_BROADCAST = Endpoint("deleteBroadcast", "DELETE", "broadcast")


@dataclass(frozen=True)
class RequestEvent:
    """Passed to ``on_request`` after every attempt, for metrics; deliberately carries no URL."""

    endpoint: str
    method: str
    seconds: float
    http_status: int | None
    error: str | None


RequestHook = Callable[[RequestEvent], None]


class OgangiClient:
    """One workspace on one provider. Use ``async with`` or call ``aclose()``."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_connections: int = 16,
        max_response_bytes: int = DEFAULT_MAX_BYTES,
        on_request: RequestHook | None = None,
    ) -> None:
        self._base_url = _normalize_base_url(base_url)
        self._credentials = credentials
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._max_response_bytes = max_response_bytes
        self._on_request = on_request
        # The connect budget must end before the total one, or a slow connect would surface
        # as a total timeout, which reads as "maybe sent".
        connect = min(connect_timeout, timeout / 2)
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect, sock_connect=connect)

    def __repr__(self) -> str:
        return f"OgangiClient({self._base_url!r}, instance_id={self._credentials.instance_id})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session if this client created it; a borrowed one stays open."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    # -- endpoints ------------------------------------------------------------------------

    async def send_sms_by_file(
        self, content: bytes, *, filename: str = "recipients.csv", content_type: str = "text/csv"
    ) -> list[Message]:
        """Blast a recipient file (§7.3); one ``Message`` per row, in file order.

        Not idempotent: after an ``AmbiguousError`` the rows may have been sent.
        """
        if not content:
            raise InvalidParameter("recipient file is empty", route=SEND_SMS_BY_FILE.name)
        form = aiohttp.FormData()
        form.add_field("file", content, filename=filename, content_type=content_type)
        body = await self._request(SEND_SMS_BY_FILE, [self._instance], data=form)
        envelope, messages = parse_messages(body, max_bytes=self._max_response_bytes)
        _raise_for_status(envelope, SEND_SMS_BY_FILE)
        if messages is None:
            raise MalformedResponse("OK reply without <messages>", route=SEND_SMS_BY_FILE.name)
        return messages

    async def send_sms_by_file_columns(
        self, content: bytes, *, filename: str = "recipients.csv", content_type: str = "text/csv"
    ) -> MessageColumns:
        """``send_sms_by_file`` for bulk work: the reply as columns (to, id, status, description).

        A big reply is parsed in a thread: the byte scan's numpy and Arrow kernels (lxml for an
        irregular reply) release the GIL, so other sends keep moving.
        """
        if not content:
            raise InvalidParameter("recipient file is empty", route=SEND_SMS_BY_FILE.name)
        form = aiohttp.FormData()
        form.add_field("file", content, filename=filename, content_type=content_type)
        body = await self._request(SEND_SMS_BY_FILE, [self._instance], data=form)
        limit = self._max_response_bytes
        if len(body) > _THREAD_PARSE_BYTES:
            envelope, columns = await asyncio.to_thread(parse_message_columns, body, max_bytes=limit)
        else:
            envelope, columns = parse_message_columns(body, max_bytes=limit)
        _raise_for_status(envelope, SEND_SMS_BY_FILE)
        if columns is None:
            raise MalformedResponse("OK reply without <messages>", route=SEND_SMS_BY_FILE.name)
        return columns

    async def get_shortcodes(self, username: str | None = None) -> list[str]:
        """Short/long codes of a user (the configured one by default), leading zeros kept."""
        user = _segment("username", username or self._credentials.username)
        envelope = await self._call(GET_SHORTCODES, [self._instance, user])
        return parse_shortcodes(envelope.result)

    async def create_broadcast_from_json(
        self,
        recipients: Sequence[JsonRecipient],
        *,
        shortcode: str,
        username: str | None = None,
        shortcode_ignore: bool = True,
        campaign: str | None = None,
        start: datetime | str | None = None,
        broadcast_id: int = -1,
    ) -> Broadcast:
        """Create (``broadcast_id=-1``) or replace a broadcast; ``start=None`` starts it now.

        ``start`` is sent as wall-clock ``dd-MM-yyyy HH:mm`` (seconds and zone dropped): the
        API states no zone, presumably the workspace's. ``shortcode_ignore`` is passed through
        unchanged (its meaning is disputed, §13 A7). Not idempotent when creating.
        """
        params = [
            self._instance,
            _broadcast_id(broadcast_id, allow_new=True),
            _segment("shortcode", shortcode),
            _segment("username", username or self._credentials.username),
            "true" if shortcode_ignore else "false",
            _optional("campaign", campaign),
            _format_start(start),
        ]
        body = urlencode({"to": recipients_json(recipients)}).encode("ascii")
        headers = {"Content-Type": FORM_CONTENT_TYPE}
        envelope = await self._call(CREATE_BROADCAST_FROM_JSON, params, data=body, headers=headers)
        return _require_broadcast(envelope, CREATE_BROADCAST_FROM_JSON)

    async def get_broadcast(self, broadcast_id: int) -> Broadcast:
        envelope = await self._call(GET_BROADCAST, [self._instance, _broadcast_id(broadcast_id)])
        return _require_broadcast(envelope, GET_BROADCAST)

    async def suspend_broadcast(self, broadcast_id: int) -> Broadcast:
        return await self._broadcast_action(SUSPEND_BROADCAST, broadcast_id)

    async def resume_broadcast(self, broadcast_id: int) -> Broadcast:
        return await self._broadcast_action(RESUME_BROADCAST, broadcast_id)

    async def stop_broadcast(self, broadcast_id: int) -> Broadcast:
        return await self._broadcast_action(STOP_BROADCAST, broadcast_id)

    async def delete_broadcast(self, broadcast_id: int) -> TransactionResult:
        """Delete in any state; an OK reply without ``<transactionResult>`` counts as success."""
        envelope = await self._call(DELETE_BROADCAST, [self._instance, _broadcast_id(broadcast_id)])
        return parse_transaction(envelope.result) or TransactionResult(
            successful=True, message=envelope.description
        )

    # -- plumbing -------------------------------------------------------------------------

    @property
    def _instance(self) -> str:
        return str(self._credentials.instance_id)

    async def _broadcast_action(self, endpoint: Endpoint, broadcast_id: int) -> Broadcast:
        """The broadcast after the action; the vendor documents an empty result for these.

        When the reply holds no ``<broadcast>``, one ``getBroadcast`` fetches the new state. The
        action has already succeeded by then, so a failing fetch must not turn into an error
        that invites a repeat: it yields status ``UNKNOWN`` instead.
        """
        segment = _broadcast_id(broadcast_id)
        envelope = await self._call(endpoint, [self._instance, segment])
        broadcast = parse_broadcast(envelope.result)
        if broadcast is not None:
            return broadcast
        try:
            return await self.get_broadcast(broadcast_id)
        except OgangiError as exc:
            logger.warning("%s succeeded; reading the new state failed: %s", endpoint.name, exc)
            return Broadcast(id=broadcast_id, status=BroadcastStatus.UNKNOWN)

    async def _call(
        self,
        endpoint: Endpoint,
        params: list[str],
        *,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Envelope:
        body = await self._request(endpoint, params, data=data, headers=headers)
        envelope = parse_envelope(body, max_bytes=self._max_response_bytes)
        _raise_for_status(envelope, endpoint)
        return envelope

    async def _request(
        self,
        endpoint: Endpoint,
        params: list[str],
        *,
        data: bytes | aiohttp.FormData | None = None,
        headers: dict[str, str] | None = None,
    ) -> bytes:
        """The body of a 2xx reply; every transport outcome becomes an ``OgangiError``."""
        credentials = self._credentials
        path = signed_path(endpoint.route, params, credentials.public_key, credentials.private_key)
        url = URL(f"{self._base_url}/{path}", encoded=True)
        started = time.perf_counter()
        try:
            status, body = await self._exchange(endpoint, url, data, headers)
        except BaseException as exc:
            http_status = getattr(exc, "http_status", None)
            self._report(endpoint, started, http_status, type(exc).__name__)
            raise
        self._report(endpoint, started, status, None)
        return body

    async def _exchange(
        self,
        endpoint: Endpoint,
        url: URL,
        data: bytes | aiohttp.FormData | None,
        headers: dict[str, str] | None,
    ) -> tuple[int, bytes]:
        try:
            async with self._get_session().request(
                endpoint.method,
                url,
                data=data,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                _raise_for_http_status(response, endpoint)
                if response.status == 204:
                    return 204, NO_CONTENT_REPLY
                body = await _read_body(response, self._max_response_bytes, endpoint)
                return response.status, body
        except OgangiError:
            raise
        except BaseException as exc:
            failure = _transport_error(exc, endpoint, self._timeout)
            if failure is exc:
                raise
        # Raised here, outside the handler, so the aiohttp error (some embed the signed URL)
        # does not ride along as __context__.
        raise failure

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, force_close=True)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    def _report(
        self, endpoint: Endpoint, started: float, http_status: int | None, error: str | None
    ) -> None:
        if self._on_request is None:
            return
        seconds = time.perf_counter() - started
        event = RequestEvent(endpoint.name, endpoint.method, seconds, http_status, error)
        try:
            self._on_request(event)
        except Exception:
            # A metrics bug must not turn a completed send into an error (and a re-send).
            logger.exception("on_request hook failed")


# -- pure helpers ------------------------------------------------------------------------


def recipients_json(recipients: Sequence[JsonRecipient]) -> str:
    """The ``to`` document (§8): compact, UTF-8 characters kept as they are."""
    if not recipients:
        raise InvalidParameter("a broadcast needs at least one recipient")
    for recipient in recipients:
        if not (recipient.mobile.isascii() and recipient.mobile.isdigit()):
            raise InvalidParameter("recipient mobile must be digits only (international, no '+')")
    docs = [recipient.to_json() for recipient in recipients]
    return json.dumps(docs, ensure_ascii=False, separators=(",", ":"))


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP-date; junk is ``None``."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _normalize_base_url(base_url: str) -> str:
    """Default scheme https (§1); one trailing slash or none, the path joins the same way."""
    base = base_url.strip().rstrip("/")
    if not base:
        raise InvalidParameter("base URL is empty")
    if "://" not in base:
        base = f"https://{base}"
    if not base.startswith(("http://", "https://")):
        raise InvalidParameter("base URL must use http or https")
    return base


def _segment(name: str, value: str) -> str:
    """A required segment; the literal ``null`` would read as "absent" and is refused."""
    check_segment(name, value)
    if value == NULL:
        raise InvalidParameter(f"parameter {name!r} cannot be the literal text 'null'")
    return value


def _optional(name: str, value: str | None) -> str:
    return NULL if value is None else _segment(name, value)


def _broadcast_id(value: int, *, allow_new: bool = False) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidParameter("broadcast id must be an integer")
    if value > 0 or (allow_new and value == -1):
        return str(value)
    raise InvalidParameter(f"broadcast id must be positive{' or -1 (new)' if allow_new else ''}")


def _format_start(start: datetime | str | None) -> str:
    if start is None:
        return NULL
    if isinstance(start, datetime):
        return start.strftime(START_FORMAT)
    try:
        datetime.strptime(start, START_FORMAT)
    except ValueError:
        raise InvalidParameter("start must be a datetime or 'dd-MM-yyyy HH:mm'") from None
    return start


def _raise_for_http_status(response: aiohttp.ClientResponse, endpoint: Endpoint) -> None:
    status = response.status
    if 200 <= status < 300:
        return
    if status == 429:
        retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        raise RateLimited(route=endpoint.name, retry_after=retry_after)
    if status in GATEWAY_STATUSES and endpoint.method != "GET":
        # A proxy answered: the provider behind it may have taken the send or the create.
        raise AmbiguousError(f"gateway answered HTTP {status} after the request went out",
                             route=endpoint.name)
    if status >= 500:
        raise TransientError(
            f"provider answered HTTP {status}", route=endpoint.name, http_status=status
        )
    raise HttpError(status, route=endpoint.name)


async def _read_body(response: aiohttp.ClientResponse, limit: int, endpoint: Endpoint) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` (before it is all in memory)."""
    too_large = MalformedResponse(f"response is larger than {limit} bytes", route=endpoint.name)
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


def _raise_for_status(envelope: Envelope, endpoint: Endpoint) -> None:
    if envelope.status == "OK":
        return
    if envelope.status == "BAD_SIGNATURE":
        raise BadSignature(route=endpoint.name, description=envelope.description)
    if envelope.status == "ERROR":
        detail = envelope.error[:500] if envelope.error else None
        message = f"provider answered ERROR: {envelope.description or 'no description'}"
        raise ProviderError(
            f"{message} ({detail})" if detail else message,
            route=endpoint.name,
            description=envelope.description,
            detail=detail,
        )
    raise AmbiguousError(f"unknown call status {envelope.status[:60]!r}", route=endpoint.name)


def _require_broadcast(envelope: Envelope, endpoint: Endpoint) -> Broadcast:
    broadcast = parse_broadcast(envelope.result)
    if broadcast is None:
        raise MalformedResponse("OK reply without a usable <broadcast>", route=endpoint.name)
    return broadcast


def _transport_error(
    exc: BaseException, endpoint: Endpoint, timeout: aiohttp.ClientTimeout
) -> BaseException:
    """Map an aiohttp failure by whether the request can have reached the provider.

    Anything else (cancellation included) comes back unchanged. The aiohttp exceptions are
    never chained or quoted: some embed the full, signed URL.
    """
    name = endpoint.name
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return TransientError(f"no connection within {timeout.connect:g}s", route=name)
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return TransientError(f"cannot connect to {exc.host}:{exc.port} ({reason})", route=name)
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidParameter("base URL is not a valid URL", route=name)
    if isinstance(exc, asyncio.TimeoutError):
        return AmbiguousError(f"no answer within {timeout.total:g}s of sending", route=name)
    if isinstance(exc, aiohttp.ClientError):
        return AmbiguousError(f"connection lost after sending ({type(exc).__name__})", route=name)
    return exc
