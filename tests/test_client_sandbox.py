"""The client against the sandbox over HTTP: both sides of the protocol agree, endpoint by
endpoint, including the error answers."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ogangi import OgangiClient
from ogangi.errors import BadSignature, ProviderError
from ogangi.models import BroadcastStatus, Credentials, JsonRecipient
from ogangi.recipient_file import write_recipient_file_columns
from ogangi.sandbox import SandboxConfig, running_sandbox

RECIPIENTS = [JsonRecipient("13055550101", "Hi Ana"), JsonRecipient("13055550102", "Hi Bo")]


async def test_every_endpoint_round_trips_through_the_sandbox() -> None:
    """Shortcodes, a file send, and a broadcast's whole life: each call understood both ways."""
    async with (
        running_sandbox(SandboxConfig(broadcast_rate=0.01)) as sandbox,
        OgangiClient(sandbox.base_url, sandbox.credentials()) as client,
    ):
        codes = await client.get_shortcodes()
        upload = write_recipient_file_columns(
            ["13055550101", "12"], ["Hi {0}", "Hi"], sender=codes[0]
        )
        messages = await client.send_sms_by_file(upload)
        created = await client.create_broadcast_from_json(
            RECIPIENTS, shortcode=codes[0], campaign="Café spring"
        )
        suspended = await client.suspend_broadcast(created.id)
        resumed = await client.resume_broadcast(created.id)
        stopped = await client.stop_broadcast(created.id)
        fetched = await client.get_broadcast(created.id)
        deleted = await client.delete_broadcast(created.id)

    assert codes == ["55500"]
    assert [(m.to, m.status) for m in messages] == [
        ("13055550101", "SENT_TO_CARRIER"), ("12", "BAD_TO"),
    ]  # fmt: skip
    assert created.id >= 1 and created.expected_messages == 2
    assert suspended.status is BroadcastStatus.SUSPENDED
    assert resumed.status is BroadcastStatus.SENDING
    assert stopped.status is BroadcastStatus.ABORTED and fetched.status is BroadcastStatus.ABORTED
    assert deleted.successful


async def test_a_future_start_date_is_signed_and_scheduled() -> None:
    """A start date travels percent-encoded, verifies, and the broadcast waits: SCHEDULED."""
    async with (
        running_sandbox() as sandbox,
        OgangiClient(sandbox.base_url, sandbox.credentials()) as client,
    ):
        start = datetime.now() + timedelta(days=2)
        created = await client.create_broadcast_from_json(
            RECIPIENTS, shortcode="55500", start=start
        )
    assert created.status is BroadcastStatus.SCHEDULED


async def test_wrong_private_key_is_a_bad_signature_at_the_sandbox() -> None:
    """The sandbox refuses a request signed with another key; the client says so plainly."""
    async with running_sandbox() as sandbox:
        good = sandbox.credentials()
        wrong = Credentials(good.instance_id, good.public_key, "not-the-key", good.username)
        async with OgangiClient(sandbox.base_url, wrong) as client:
            with pytest.raises(BadSignature, match="check OGANGI_PRIVATE_KEY"):
                await client.get_shortcodes()


async def test_impossible_transition_is_the_providers_error() -> None:
    """Resuming a broadcast that is sending: ERROR from the sandbox, ProviderError here."""
    async with (
        running_sandbox(SandboxConfig(broadcast_rate=0.001)) as sandbox,
        OgangiClient(sandbox.base_url, sandbox.credentials()) as client,
    ):
        created = await client.create_broadcast_from_json(RECIPIENTS, shortcode="55500")
        with pytest.raises(ProviderError) as caught:
            await client.resume_broadcast(created.id)
    assert "ERROR" in str(caught.value)
