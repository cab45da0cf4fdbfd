"""OgangiClient against real HTTP servers on 127.0.0.1: canned replies and broken transports."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from ogangi.client import OgangiClient, RequestEvent, retry_after_seconds
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
from ogangi.models import BroadcastStatus, Credentials, JsonRecipient

PRIVATE_KEY = "A1B2T3J4N5"
CREDS = Credentials(
    instance_id=8, public_key="d1F2T3Y4N56", private_key=PRIVATE_KEY, username="peter"
)
V3_SIGNATURE = "48cb7d9101d40bd9ec5876ee72f01bd92fc07060301a3d254b8bbda43b78c908"
V4_SIGNATURE = "57312d37b89e16cd69d324b6004aa596b527852beaa1abd83f60ac5f66a61a8f"
V6_SIGNATURE = "e0222056c37ce95e84f5a75adcc952908b5bcbdec10d45bfa2db26eb9c90509d"
RECIPIENTS = [
    JsonRecipient("13056708084", "Hi {0}", ("Matt",)),
    JsonRecipient("18133210984", "Hola"),
]
MESSAGE = (
    "<message><id>-6710228708174720670</id><carrier>c</carrier><from>55500</from>"
    "<to>18133210984</to><text>Hi</text><status>SENT_TO_CARRIER</status>"
    "<statusDescription>Sent to Carrier</statusDescription><encoding>UTF-8</encoding>"
    "<date>2014-12-17T00:12:13.571-04:30</date><timezone>UTC</timezone></message>"
)
BROADCAST = "<broadcast><id>1234</id><text>t</text><status>{}</status></broadcast>"


def xml(status: str = "OK", result: str = "") -> bytes:
    description = {"OK": "Completed", "BAD_SIGNATURE": "Invalid signature, access denied"}
    return (
        '<?xml version="1.0" encoding="UTF-8"?><response><input>x</input>'
        f"<status>{status}</status><description>{description.get(status, 'Internal error')}"
        f"</description><result>{result}</result></response>"
    ).encode()


@dataclass
class Reply:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Received:
    method: str
    raw_path: str
    content_type: str
    body: bytes
    form: dict[str, tuple[str | None, str | None, bytes]] = field(default_factory=dict)


class Provider:
    """Records every request and answers the canned replies in order (the last one repeats)."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.received: list[Received] = []
        self.base_url = ""

    async def handle(self, request: web.Request) -> web.Response:
        form: dict[str, tuple[str | None, str | None, bytes]] = {}
        if request.content_type == "multipart/form-data":
            async for part in await request.multipart():
                assert isinstance(part, aiohttp.BodyPartReader)
                form[part.name or ""] = (
                    part.filename,
                    part.headers.get("Content-Type"),
                    await part.read(),
                )
            body = b""
        else:
            body = await request.read()
        self.received.append(
            Received(
                request.method,
                request.raw_path,
                request.headers.get("Content-Type", ""),
                body,
                form,
            )
        )
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        return web.Response(
            body=reply.body,
            status=reply.status,
            headers=reply.headers,
            content_type="application/xml" if reply.status == 200 else "text/plain",
        )


@asynccontextmanager
async def provider(*replies: Reply, **options: Any) -> AsyncIterator[tuple[Provider, OgangiClient]]:
    """A canned provider at ``/mmc`` and a client pointed at it (``options`` go to the client)."""
    fake = Provider(list(replies) or [Reply(xml())])
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.base_url = str(server.make_url("/mmc/"))
    options.setdefault("timeout", 2.0)
    try:
        async with OgangiClient(fake.base_url, CREDS, **options) as client:
            yield fake, client
    finally:
        await server.close()


@asynccontextmanager
async def raw_server(
    after_body: Callable[[asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A bare TCP server that reads a whole request, then runs ``after_body``, never replying."""
    tasks: set[asyncio.Task[None]] = set()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.current_task())  # type: ignore[arg-type]
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        try:
            await reader.readexactly(length)
            await after_body(writer)
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mmc"
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()


async def hang(writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def hang_up(writer: asyncio.StreamWriter) -> None:
    writer.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- successful calls and what the server received ---------------------------------------


async def test_send_sms_by_file_uploads_multipart_and_returns_messages() -> None:
    """The file travels as multipart part 'file'; the reply's messages come back in order."""
    async with provider(Reply(xml(result=f"<messages>{MESSAGE * 2}</messages>"))) as (fake, client):
        messages = await client.send_sms_by_file(b'"13056708084","55500"\r\n')
    assert [m.id for m in messages] == ["-6710228708174720670"] * 2
    assert messages[0].accepted
    (request,) = fake.received
    assert (request.method, request.raw_path) == (
        "POST",
        f"/mmc/rest/api/tools/sendSMSByFile/8/d1F2T3Y4N56/{V3_SIGNATURE}",
    )
    assert request.form["file"] == ("recipients.csv", "text/csv", b'"13056708084","55500"\r\n')


async def test_get_shortcodes_keeps_leading_zeros() -> None:
    """GET getShortcodes signed per V4; codes come back as text with their zeros."""
    codes = "".join(f"<shortcode><sc>{code}</sc></shortcode>" for code in ("0000000", "00434"))
    result = f"<shortcodes>{codes}</shortcodes>"
    async with provider(Reply(xml(result=result))) as (fake, client):
        assert await client.get_shortcodes() == ["0000000", "00434"]
    assert (fake.received[0].method, fake.received[0].raw_path) == (
        "GET",
        f"/mmc/rest/api/getShortcodes/8/peter/d1F2T3Y4N56/{V4_SIGNATURE}",
    )


async def test_create_broadcast_without_options_sends_null_segments() -> None:
    """Absent campaign and date travel as 'null', signed exactly as vector V2."""
    async with provider(Reply(xml(result=BROADCAST.format("SENDING")))) as (fake, client):
        broadcast = await client.create_broadcast_from_json(
            RECIPIENTS, shortcode="434", campaign="testJsonBroadcast"
        )
    assert (broadcast.id, broadcast.status) == (1234, BroadcastStatus.SENDING)
    assert fake.received[0].raw_path == (
        "/mmc/rest/api/createBroadcastFromJson/8/-1/434/peter/true/testJsonBroadcast/null/"
        "d1F2T3Y4N56/345c9baab29d1500ebbf756b9aaa61fcdf265aa5703cd9d1a82ae57850d9b688"
    )


async def test_create_broadcast_date_is_percent_encoded_and_signed_decoded() -> None:
    """The start date reaches the server as 25-12-2024%2010:30 with the V7 signature."""
    async with provider(Reply(xml(result=BROADCAST.format("SCHEDULED")))) as (fake, client):
        broadcast = await client.create_broadcast_from_json(
            RECIPIENTS,
            shortcode="434",
            campaign="testJsonBroadcast",
            start=datetime(2024, 12, 25, 10, 30, 59),
        )
    assert broadcast.status is BroadcastStatus.SCHEDULED
    assert fake.received[0].raw_path == (
        "/mmc/rest/api/createBroadcastFromJson/8/-1/434/peter/true/testJsonBroadcast/"
        "25-12-2024%2010:30/d1F2T3Y4N56/"
        "fe392cef685453f2f88afcc3a3e2c92ce374ba6caa77577b53d1be6fcc36b24f"
    )


async def test_create_broadcast_non_ascii_campaign_is_utf8_encoded() -> None:
    """A campaign 'Café' travels as Caf%C3%A9 with the V9 signature."""
    async with provider(Reply(xml(result=BROADCAST.format("SENDING")))) as (fake, client):
        await client.create_broadcast_from_json(RECIPIENTS, shortcode="434", campaign="Café")
    assert fake.received[0].raw_path == (
        "/mmc/rest/api/createBroadcastFromJson/8/-1/434/peter/true/Caf%C3%A9/null/d1F2T3Y4N56/"
        "7795e9b6783c9469e9ae5261f3e1d1184dcf27eda613b484a4917f245264e632"
    )


async def test_create_broadcast_posts_compact_json_in_form_field_to() -> None:
    """The body is urlencoded UTF-8 with a 'to' field holding compact JSON recipients."""
    recipients = [
        JsonRecipient("13056708084", "Señor {0}", ("Ñandú",), timezone="America/New_York")
    ]
    async with provider(Reply(xml(result=BROADCAST.format("SENDING")))) as (fake, client):
        await client.create_broadcast_from_json(recipients, shortcode="434", shortcode_ignore=False)
    request = fake.received[0]
    assert request.method == "POST" and "/434/peter/false/null/null/" in request.raw_path
    assert request.content_type == "application/x-www-form-urlencoded; charset=UTF-8"
    (to,) = parse_qs(request.body.decode("ascii"), strict_parsing=True)["to"]
    assert (
        to == '[{"mobile":"13056708084","text":"Señor {0}","params":["Ñandú"],'
        '"timezone":"America/New_York"}]'
    )
    assert json.loads(to)[0]["params"] == ["Ñandú"]


async def test_get_broadcast_normalizes_numeric_status() -> None:
    """GET getBroadcast (V6 path) with status 2 reads as DONE."""
    async with provider(Reply(xml(result=BROADCAST.format("2")))) as (fake, client):
        broadcast = await client.get_broadcast(1234)
    assert (broadcast.status, broadcast.raw_status) == (BroadcastStatus.DONE, "2")
    assert (fake.received[0].method, fake.received[0].raw_path) == (
        "GET",
        f"/mmc/rest/api/getBroadcast/8/1234/d1F2T3Y4N56/{V6_SIGNATURE}",
    )


async def test_suspend_returns_the_broadcast_in_the_reply() -> None:
    """POST suspendBroadcast; the returned broadcast is the one in the reply, no extra call."""
    async with provider(Reply(xml(result=BROADCAST.format("SUSPENDED")))) as (fake, client):
        broadcast = await client.suspend_broadcast(1234)
    assert broadcast.status is BroadcastStatus.SUSPENDED
    assert [(r.method, r.raw_path.split("/")[4]) for r in fake.received] == [
        ("POST", "suspendBroadcast")
    ]


async def test_resume_with_empty_result_reads_the_new_state() -> None:
    """The documented empty result triggers one getBroadcast for the new state."""
    replies = (Reply(xml()), Reply(xml(result=BROADCAST.format("SENDING"))))
    async with provider(*replies) as (fake, client):
        broadcast = await client.resume_broadcast(1234)
    assert broadcast.status is BroadcastStatus.SENDING
    assert [(r.method, r.raw_path.split("/")[4]) for r in fake.received] == [
        ("POST", "resumeBroadcast"),
        ("GET", "getBroadcast"),
    ]


async def test_stop_with_unreadable_new_state_reports_unknown_not_error() -> None:
    """The stop succeeded, so a failing follow-up read yields UNKNOWN instead of an error."""
    async with provider(Reply(xml()), Reply(b"", status=503)) as (_, client):
        broadcast = await client.stop_broadcast(1234)
    assert (broadcast.id, broadcast.status) == (1234, BroadcastStatus.UNKNOWN)


async def test_delete_uses_http_delete_on_route_broadcast() -> None:
    """DELETE .../broadcast/8/1234/... (V6 signature) returns the transaction result."""
    result = (
        "<transactionResult><successful>true</successful>"
        "<message>Broadcast deleted</message></transactionResult>"
    )
    async with provider(Reply(xml(result=result))) as (fake, client):
        outcome = await client.delete_broadcast(1234)
    assert (outcome.successful, outcome.message) == (True, "Broadcast deleted")
    assert (fake.received[0].method, fake.received[0].raw_path) == (
        "DELETE",
        f"/mmc/rest/api/broadcast/8/1234/d1F2T3Y4N56/{V6_SIGNATURE}",
    )


async def test_delete_with_empty_result_counts_as_success() -> None:
    """The vendor's delete sample has no result: OK alone means deleted."""
    async with provider(Reply(xml())) as (_, client):
        outcome = await client.delete_broadcast(1234)
    assert (outcome.successful, outcome.message) == (True, "Completed")


async def test_http_204_counts_as_ok_for_actions() -> None:
    """An empty 204 (a third-party note says success looks like that) completes a delete."""
    async with provider(Reply(b"", 204)) as (_, client):
        outcome = await client.delete_broadcast(1234)
    assert (outcome.successful, outcome.message) == (True, "No Content")


async def test_request_hook_sees_each_call_without_url() -> None:
    """on_request gets endpoint, method, status and outcome; nothing URL-shaped."""
    events: list[RequestEvent] = []
    reply = Reply(xml(result=BROADCAST.format("DONE")))
    async with provider(reply, on_request=events.append) as (_, client):
        await client.get_broadcast(1234)
    (event,) = events
    assert (event.endpoint, event.method, event.http_status, event.error) == (
        "getBroadcast",
        "GET",
        200,
        None,
    )
    assert V6_SIGNATURE not in repr(event)


async def test_failing_request_hook_does_not_fail_the_call() -> None:
    """A broken metrics hook is logged, and the send still returns its messages."""

    def broken(event: RequestEvent) -> None:
        raise RuntimeError("metrics down")

    reply = Reply(xml(result=f"<messages>{MESSAGE}</messages>"))
    async with provider(reply, on_request=broken) as (_, client):
        assert len(await client.send_sms_by_file(b"x")) == 1


# -- provider-level and HTTP-level failures ----------------------------------------------


async def test_bad_signature_is_permanent() -> None:
    """BAD_SIGNATURE raises BadSignature naming the endpoint, not retryable."""
    async with provider(Reply(xml("BAD_SIGNATURE"))) as (_, client):
        with pytest.raises(BadSignature) as caught:
            await client.get_broadcast(1234)
    assert caught.value.kind == "permanent" and caught.value.route == "getBroadcast"
    assert caught.value.description == "Invalid signature, access denied"


async def test_error_status_surfaces_the_error_detail() -> None:
    """ERROR raises ProviderError carrying the <result><error> text."""
    async with provider(Reply(xml("ERROR", "<error>unknown broadcast 1234</error>"))) as (
        _,
        client,
    ):
        with pytest.raises(ProviderError) as caught:
            await client.get_broadcast(1234)
    assert caught.value.detail == "unknown broadcast 1234"
    assert "unknown broadcast 1234" in str(caught.value)


async def test_unknown_call_status_is_ambiguous() -> None:
    """A status outside OK/ERROR/BAD_SIGNATURE cannot say whether the call acted."""
    async with provider(Reply(xml("MAINTENANCE"))) as (_, client):
        with pytest.raises(AmbiguousError, match="MAINTENANCE"):
            await client.send_sms_by_file(b"x")


@pytest.mark.parametrize(("header", "seconds"), [("7", 7.0), ("soon", None)])
async def test_http_429_is_rate_limited_with_retry_after(
    header: str, seconds: float | None
) -> None:
    """429 raises RateLimited with Retry-After in seconds (None when unreadable)."""
    async with provider(Reply(b"slow down", 429, {"Retry-After": header})) as (_, client):
        with pytest.raises(RateLimited) as caught:
            await client.get_shortcodes()
    assert caught.value.retryable and caught.value.retry_after == seconds


def test_retry_after_http_date_becomes_seconds() -> None:
    """An HTTP-date Retry-After is converted to seconds from now, never negative."""
    now = datetime(2024, 12, 25, 10, 30, tzinfo=UTC)
    assert retry_after_seconds("Wed, 25 Dec 2024 10:31:30 GMT", now=now) == 90.0
    assert retry_after_seconds("Wed, 25 Dec 2024 10:00:00 GMT", now=now) == 0.0


async def test_http_503_is_transient() -> None:
    """A 5xx raises a retryable TransientError with the HTTP status."""
    async with provider(Reply(b"down", 503)) as (_, client):
        with pytest.raises(TransientError) as caught:
            await client.get_broadcast(1234)
    assert caught.value.retryable and caught.value.http_status == 503


async def test_gateway_error_on_a_send_is_ambiguous() -> None:
    """A 502 after a POST may hide an accepted send: it is ambiguous, not retryable."""
    async with provider(Reply(b"bad gateway", 502)) as (_, client):
        with pytest.raises(AmbiguousError) as caught:
            await client.send_sms_by_file(b'"13055550101","55500","","UTF-8","UTC","hi"\r\n')
    assert caught.value.ambiguous and not caught.value.retryable


async def test_gateway_error_on_a_read_is_transient() -> None:
    """A 504 on a GET changes nothing at the provider: it is retryable."""
    async with provider(Reply(b"gateway timeout", 504)) as (_, client):
        with pytest.raises(TransientError):
            await client.get_broadcast(1234)


async def test_http_404_is_permanent_and_points_at_the_base_url() -> None:
    """A 404 (no XML) means a wrong base URL or route: permanent HttpError."""
    async with provider(Reply(b"not found", 404)) as (_, client):
        with pytest.raises(HttpError, match="OGANGI_BASE_URL") as caught:
            await client.get_broadcast(1234)
    assert caught.value.kind == "permanent" and caught.value.http_status == 404


async def test_garbage_200_is_malformed_and_ambiguous() -> None:
    """A 2xx body that is not the API's XML is MalformedResponse (the send may have happened)."""
    async with provider(Reply(b"<html>oops</html>")) as (_, client):
        with pytest.raises(MalformedResponse) as caught:
            await client.send_sms_by_file(b"x")
    assert caught.value.ambiguous


async def test_ok_send_without_messages_is_malformed() -> None:
    """An OK send reply lacking <messages> leaves the rows unaccounted: ambiguous."""
    async with provider(Reply(xml())) as (_, client):
        with pytest.raises(MalformedResponse, match="messages"):
            await client.send_sms_by_file(b"x")


async def test_oversized_reply_is_refused() -> None:
    """A reply beyond max_response_bytes is refused without being parsed."""
    reply = Reply(xml(result="<pad>" + "x" * 4096 + "</pad>"))
    async with provider(reply, max_response_bytes=1024) as (_, client):
        with pytest.raises(MalformedResponse, match="larger than 1024"):
            await client.get_broadcast(1234)


# -- transport failures: was the request sent? -------------------------------------------


async def test_connection_refused_is_transient() -> None:
    """Nothing listening: nothing was sent, so the error is retryable."""
    async with OgangiClient(f"http://127.0.0.1:{closed_port()}/mmc", CREDS, timeout=2) as client:
        with pytest.raises(TransientError, match="cannot connect") as caught:
            await client.send_sms_by_file(b"x")
    assert caught.value.retryable


async def test_server_hanging_after_the_body_is_ambiguous() -> None:
    """The body was read and no answer came before the timeout: AmbiguousError."""
    async with raw_server(hang) as base, OgangiClient(base, CREDS, timeout=0.3) as client:
        with pytest.raises(AmbiguousError, match="no answer within 0.3s"):
            await client.send_sms_by_file(b"x" * 10_000)


async def test_server_closing_after_the_body_is_ambiguous() -> None:
    """The connection dropped after the body was read: AmbiguousError."""
    async with raw_server(hang_up) as base, OgangiClient(base, CREDS, timeout=2) as client:
        with pytest.raises(AmbiguousError, match="connection lost"):
            await client.create_broadcast_from_json(RECIPIENTS, shortcode="434")


async def test_waiting_for_a_free_connection_is_transient() -> None:
    """A request that never got a connection (pool full) times out as retryable, not ambiguous."""
    async with (
        raw_server(hang) as base,
        OgangiClient(base, CREDS, timeout=0.6, max_connections=1) as client,
    ):
        first = asyncio.create_task(client.get_broadcast(1))
        await asyncio.sleep(0.05)
        with pytest.raises(TransientError, match="no connection within 0.3s"):
            await client.get_broadcast(2)
        with pytest.raises(AmbiguousError):
            await first


# -- refused locally ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.get_shortcodes("a/b"),
        lambda c: c.create_broadcast_from_json(RECIPIENTS, shortcode=""),
        lambda c: c.create_broadcast_from_json(RECIPIENTS, shortcode="434", campaign="null"),
        lambda c: c.create_broadcast_from_json(RECIPIENTS, shortcode="434", start="2024-12-25"),
        lambda c: c.create_broadcast_from_json([], shortcode="434"),
        lambda c: c.create_broadcast_from_json([JsonRecipient("+1305", "x")], shortcode="434"),
        lambda c: c.get_broadcast(0),
        lambda c: c.send_sms_by_file(b""),
    ],
    ids=[
        "slash",
        "empty",
        "literal-null",
        "bad-date",
        "no-recipients",
        "plus-mobile",
        "zero-id",
        "empty-file",
    ],
)
async def test_invalid_parameters_are_refused_before_any_request(
    call: Callable[[OgangiClient], Awaitable[object]],
) -> None:
    """Values the path or payload cannot carry raise InvalidParameter and send nothing."""
    async with provider() as (fake, client):
        with pytest.raises(InvalidParameter):
            await call(client)
    assert fake.received == []


# -- secrets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        Reply(xml("BAD_SIGNATURE")),
        Reply(xml("ERROR", "<error>e</error>")),
        Reply(b"", 429),
        Reply(b"", 503),
        Reply(b"", 404),
        Reply(b"garbage"),
        Reply(xml("WHAT")),
    ],
    ids=["bad-signature", "error", "429", "503", "404", "garbage", "unknown-status"],
)
async def test_errors_never_show_the_private_key_or_signature(reply: Reply) -> None:
    """Neither str nor repr of any client error contains the private key or the URL signature."""
    async with provider(reply) as (_, client):
        with pytest.raises(OgangiError) as caught:
            await client.get_broadcast(1234)
    for text in (str(caught.value), repr(caught.value)):
        assert PRIVATE_KEY not in text and V6_SIGNATURE not in text
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_transport_errors_never_show_the_private_key_or_signature() -> None:
    """Connect and disconnect failures name the endpoint only, and chain no aiohttp error."""
    errors: list[OgangiError] = []
    async with OgangiClient(f"http://127.0.0.1:{closed_port()}", CREDS) as client:
        with pytest.raises(OgangiError) as refused:
            await client.get_broadcast(1234)
        errors.append(refused.value)
    async with raw_server(hang_up) as base, OgangiClient(base, CREDS) as client:
        with pytest.raises(OgangiError) as dropped:
            await client.get_broadcast(1234)
        errors.append(dropped.value)
    for error in errors:
        assert PRIVATE_KEY not in f"{error} {error!r}" and V6_SIGNATURE not in str(error)
        assert error.__cause__ is None and error.__context__ is None
        assert error.route == "getBroadcast"


def test_client_repr_hides_keys() -> None:
    """repr shows base URL and instance, never the private key."""
    text = repr(OgangiClient("https://example.com/mmc", CREDS))
    assert PRIVATE_KEY not in text and "example.com" in text


# -- session ownership -------------------------------------------------------------------


async def test_borrowed_session_is_left_open() -> None:
    """A session passed in is used for requests and not closed by aclose()."""
    async with aiohttp.ClientSession() as session:
        async with provider(Reply(xml(result=BROADCAST.format("DONE")))) as (fake, _):
            client = OgangiClient(fake.base_url, CREDS, session=session)
            await client.get_broadcast(1234)
            await client.aclose()
        assert not session.closed and len(fake.received) == 1


def test_base_url_defaults_to_https() -> None:
    """A base URL without scheme gets https://, and trailing slashes are dropped."""
    assert "'https://flow.messangi.me/mmc'" in repr(OgangiClient("flow.messangi.me/mmc/", CREDS))
