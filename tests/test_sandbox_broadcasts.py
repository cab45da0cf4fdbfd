"""Broadcasts in the sandbox: createBroadcastFromJson (§5.3, §8), progress, and §5.5/5.6 actions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from ogangi.sandbox import SandboxConfig, Workspace
from ogangi.sandbox.testing import ApiReply, SandboxClient, sandbox_client

T0 = 1_900_000_000.0  # 2030-03-17, a fixed "now" for the sandbox clock


class Clock:
    """A hand-moved clock: broadcast progress is computed from it."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def recipients(count: int, text: str = "Hi {0}") -> str:
    return json.dumps(
        [{"mobile": f"1305670{i:04d}", "text": text, "params": [f"n{i}"]} for i in range(count)]
    )


async def create(
    api: SandboxClient,
    document: str | None = None,
    *,
    broadcast_id: str = "-1",
    shortcode: str = "55500",
    ignore: str = "true",
    date: str = "null",
    workspace: int = 0,
    **request: Any,
) -> ApiReply:
    if document is not None:
        request["data"] = {"to": document}
    instance = str(api.sandbox.config.workspaces[workspace].instance_id)
    params = (instance, broadcast_id, shortcode, "sandbox", ignore, "spring", date)
    return await api.call(
        "POST", "createBroadcastFromJson", *params, workspace=workspace, **request
    )


async def act(api: SandboxClient, route: str, broadcast_id: str = "1") -> ApiReply:
    method = "DELETE" if route == "broadcast" else "GET"
    return await api.call(method, route, "8", broadcast_id)


def clocked(api: SandboxClient) -> Clock:
    clock = Clock()
    api.sandbox.state.clock = clock
    return clock


async def test_create_allocates_ids_and_starts_sending() -> None:
    """§5.3: ``-1`` creates broadcasts 1, 2, ...; with no date they start SENDING at once."""
    async with sandbox_client() as api:
        clocked(api)
        first = await create(api, recipients(2))
        second = await create(api, recipients(3))
    assert first.text("input") == "createBroadcastFromJson"
    assert first.broadcast == {
        "id": "1",
        "text": "Hi {0}",
        "startDate": "2030-03-17T17:46:40.000+00:00",
        "endDate": "",
        "expectedMessages": "2",
        "sentMessages": "0",
        "status": "SENDING",
        "shortcode": "55500",
    }
    assert (second.broadcast["id"], second.broadcast["expectedMessages"]) == ("2", "3")


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart", "raw json"])
async def test_to_document_is_read_from_any_body_form(encoding: str) -> None:
    """§4: ``to`` as a urlencoded or multipart field, or the whole body as JSON."""
    document = recipients(2)
    if encoding == "urlencoded":
        request: dict[str, Any] = {"data": {"to": document}}
    elif encoding == "multipart":
        form = aiohttp.FormData()
        form.add_field("to", document.encode(), filename="to.json", content_type="application/json")
        request = {"data": form}
    else:
        request = {"data": document, "headers": {"Content-Type": "application/json"}}
    async with sandbox_client() as api:
        reply = await create(api, **request)
    assert reply.status == "OK"
    assert reply.broadcast["expectedMessages"] == "2"


async def test_lenient_json_shapes_and_aliases_are_accepted() -> None:
    """§8: ``{"recipients": [...]}`` and the ``phone``/``message``/``parameters`` aliases."""
    document = json.dumps(
        {"recipients": [{"phone": 13056708084, "message": "Yo {0}", "parameters": ["Ann"]}]}
    )
    async with sandbox_client(SandboxConfig(broadcast_rate=1e6)) as api:
        reply = await create(api, document)
        entries = api.sandbox.ledger.entries()
    assert reply.status == "OK"
    assert [(e.to, e.text) for e in entries] == [("13056708084", "Yo Ann")]


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[]", "no recipients"),
        ("{}", "must be a list"),
        ('["13056708084"]', "bare number"),
        ('[{"mobile": "13056708084"}]', "'text'"),
        ('[{"mobile": "123", "text": "t"}]', "'mobile'"),
        ('[{"mobile": "13056708084", "text": "t", "timezone": "Mars/Base"}]', "timezone"),
        ('[{"mobile": "13056708084", "text": "t", "encoding": "EBCDIC"}]', "encoding"),
    ],
)
async def test_unusable_recipient_document_is_error(document: str, reason: str) -> None:
    """§5.3: unparseable JSON, no recipients, or an unsendable recipient answers ERROR."""
    async with sandbox_client() as api:
        reply = await create(api, document)
        listed = await api.control("GET", "broadcasts")
    assert reply.status == "ERROR"
    assert reason in reply.error
    assert listed == []


async def test_missing_to_field_is_error() -> None:
    """A form body without ``to`` answers ERROR."""
    async with sandbox_client() as api:
        reply = await create(api, data={"recipients": recipients(1)})
    assert "no 'to' field" in reply.error


async def test_progress_follows_the_clock_until_done() -> None:
    """sentMessages grows at ``broadcast_rate`` per second, then DONE with an endDate."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clock = clocked(api)
        await create(api, recipients(25))
        clock.now = T0 + 1.05
        early = await act(api, "getBroadcast")
        clock.now = T0 + 60
        late = await act(api, "getBroadcast")
    assert (early.broadcast["status"], early.broadcast["sentMessages"]) == ("SENDING", "10")
    assert (late.broadcast["status"], late.broadcast["sentMessages"]) == ("DONE", "25")
    assert late.broadcast["endDate"] == "2030-03-17T17:46:42.500+00:00"


async def test_broadcast_messages_enter_the_ledger_as_they_are_sent() -> None:
    """Each recipient reaches the ledger when sent, with the broadcast id and effective sender."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clock = clocked(api)
        created = await create(api, recipients(25))
        clock.now = T0 + 1.05
        entries = api.sandbox.ledger.entries()
    assert len(entries) == 10
    assert {(e.source, e.broadcast_id, e.sender) for e in entries} == {("broadcast", 1, "55500")}
    assert [e.text for e in entries[:2]] == ["Hi n0", "Hi n1"]
    assert entries[0].request_id == created.headers["X-Sandbox-Request-Id"]


async def test_future_start_date_stays_scheduled_until_it_arrives() -> None:
    """A start date in the future is SCHEDULED, sends nothing, then starts on time."""
    start = (datetime.fromtimestamp(T0, UTC) + timedelta(days=1)).replace(second=0)
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clock = clocked(api)
        created = await create(api, recipients(5), date=start.strftime("%d-%m-%Y %H:%M"))
        clock.now = start.timestamp() - 1
        waiting = await act(api, "getBroadcast")
        clock.now = start.timestamp() + 0.2
        started = await act(api, "getBroadcast")
    assert created.broadcast["status"] == "SCHEDULED"
    assert (waiting.broadcast["status"], waiting.broadcast["sentMessages"]) == ("SCHEDULED", "0")
    assert (started.broadcast["status"], started.broadcast["sentMessages"]) == ("SENDING", "2")
    assert created.broadcast["startDate"] == start.strftime("%Y-%m-%dT%H:%M:00.000+00:00")


async def test_start_date_is_read_in_the_sandbox_time_zone() -> None:
    """The request date ``dd-MM-yyyy HH:mm`` is local time of the configured zone."""
    async with sandbox_client(SandboxConfig(timezone="America/Caracas")) as api:
        clocked(api)
        reply = await create(api, recipients(1), date="01-01-2031 08:30")
    assert reply.broadcast["startDate"] == "2031-01-01T08:30:00.000-04:00"


@pytest.mark.parametrize("date", ["2030-12-25 10:30", "25-12-2030", "1-2-2030 9:05", "null "])
async def test_malformed_start_date_is_error(date: str) -> None:
    """Only ``dd-MM-yyyy HH:mm`` or ``null`` are dates."""
    async with sandbox_client() as api:
        reply = await create(api, recipients(1), date=date)
    assert "dd-MM-yyyy HH:mm" in reply.error


async def test_suspend_pauses_and_resume_continues() -> None:
    """§5.5: SENDING -> SUSPENDED stops progress; resume continues from where it stopped."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clock = clocked(api)
        await create(api, recipients(40))
        clock.now = T0 + 1.05
        suspended = await act(api, "suspendBroadcast")
        clock.now = T0 + 10
        still = await act(api, "getBroadcast")
        resumed = await act(api, "resumeBroadcast")
        clock.now = T0 + 10.55
        after = await act(api, "getBroadcast")
    assert [(r.broadcast["status"], r.broadcast["sentMessages"]) for r in (suspended, still)] == [
        ("SUSPENDED", "10"),
        ("SUSPENDED", "10"),
    ]
    assert resumed.broadcast["status"] == "SENDING"
    assert after.broadcast["sentMessages"] == "15"


async def test_stop_aborts_for_good() -> None:
    """§5.5: stop -> ABORTED with an endDate; an aborted broadcast cannot be resumed."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clock = clocked(api)
        await create(api, recipients(40))
        clock.now = T0 + 2.05
        stopped = await act(api, "stopBroadcast")
        clock.now = T0 + 30
        resumed = await act(api, "resumeBroadcast")
        final = await act(api, "getBroadcast")
    assert (stopped.broadcast["status"], stopped.broadcast["sentMessages"]) == ("ABORTED", "20")
    assert stopped.broadcast["endDate"] == "2030-03-17T17:46:42.050+00:00"
    assert "ABORTED and cannot be resumed" in resumed.error
    assert (final.broadcast["status"], final.broadcast["sentMessages"]) == ("ABORTED", "20")


async def test_impossible_transition_is_error_and_changes_nothing() -> None:
    """§5.5: an action the state does not allow answers ERROR with the reason, state kept."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clocked(api)
        await create(api, recipients(5))
        reply = await act(api, "resumeBroadcast")
        after = await act(api, "getBroadcast")
    assert reply.error == "broadcast 1 is SENDING and cannot be resumed"
    assert after.broadcast["status"] == "SENDING"


async def test_done_broadcast_cannot_be_suspended_stopped_or_edited() -> None:
    """Final states accept no transition and no edit."""
    async with sandbox_client(SandboxConfig(broadcast_rate=1e6)) as api:
        await create(api, recipients(2))
        replies = [await act(api, r) for r in ("suspendBroadcast", "stopBroadcast")]
        edit = await create(api, recipients(1), broadcast_id="1")
    assert [r.error for r in replies] == [
        "broadcast 1 is DONE and cannot be suspended",
        "broadcast 1 is DONE and cannot be stopped",
    ]
    assert edit.error == "broadcast 1 is DONE and cannot be edited"


async def test_edit_replaces_recipients_of_a_running_broadcast() -> None:
    """§5.3: an existing id replaces the list and settings; counting restarts."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clock = clocked(api)
        await create(api, recipients(40))
        clock.now = T0 + 1.05
        edited = await create(api, recipients(3, text="New {0}"), broadcast_id="1")
    assert edited.broadcast["id"] == "1"
    assert edited.broadcast["text"] == "New {0}"
    assert (edited.broadcast["expectedMessages"], edited.broadcast["sentMessages"]) == ("3", "0")


async def test_edit_of_unknown_id_is_error() -> None:
    """Editing a broadcast that does not exist answers ERROR and creates nothing."""
    async with sandbox_client() as api:
        reply = await create(api, recipients(1), broadcast_id="5")
    assert reply.error == "no broadcast with id 5"


async def test_delete_removes_a_broadcast_in_any_state() -> None:
    """§5.6: ``transactionResult`` on success; the id is unknown afterwards."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clocked(api)
        await create(api, recipients(5))
        deleted = await act(api, "broadcast")
        gone = await act(api, "getBroadcast")
        again = await act(api, "broadcast")
    assert deleted.text("input") == "deleteBroadcast"
    assert deleted.text("result/transactionResult/successful") == "true"
    assert deleted.text("result/transactionResult/message") == "Broadcast deleted"
    assert gone.error == again.error == "no broadcast with id 1"


async def test_force_suspend_after_n_messages_then_resume_finishes() -> None:
    """``force_suspend_after`` stops a broadcast at N as FORCED_SUSPENDED; resume completes it."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10, force_suspend_after=5)) as api:
        clock = clocked(api)
        await create(api, recipients(8))
        clock.now = T0 + 3
        forced = await act(api, "getBroadcast")
        await act(api, "resumeBroadcast")
        clock.now = T0 + 10
        done = await act(api, "getBroadcast")
    assert (forced.broadcast["status"], forced.broadcast["sentMessages"]) == (
        "FORCED_SUSPENDED",
        "5",
    )
    assert (done.broadcast["status"], done.broadcast["sentMessages"]) == ("DONE", "8")


async def test_control_api_force_suspends_a_sending_broadcast() -> None:
    """``POST /_sandbox/broadcasts/{id}/force-suspend``; refused (409) when not sending."""
    async with sandbox_client(SandboxConfig(broadcast_rate=10)) as api:
        clocked(api)
        await create(api, recipients(8))
        forced = await api.control("POST", "broadcasts/1/force-suspend")
        with pytest.raises(aiohttp.ClientResponseError) as refused:
            await api.control("POST", "broadcasts/1/force-suspend")
        got = await act(api, "getBroadcast")
    assert forced["status"] == "FORCED_SUSPENDED"
    assert refused.value.status == 409
    assert got.broadcast["status"] == "FORCED_SUSPENDED"


@pytest.mark.parametrize(
    ("literal", "flag", "shortcode", "sender"),
    [
        (True, "false", "99999", "55500"),
        (True, "true", "55500", "55500"),
        (True, "true", "99999", None),
        (False, "true", "99999", "55500"),
        (False, "false", "99999", None),
    ],
)
async def test_shortcode_ignore_meaning_is_switchable(
    literal: bool, flag: str, shortcode: str, sender: str | None
) -> None:
    """§13 A7: by default ``false`` ignores the shortcode (the docs' words); a switch flips it."""
    config = SandboxConfig(shortcode_ignore_literal=literal, broadcast_rate=1e6)
    async with sandbox_client(config) as api:
        reply = await create(api, recipients(1), shortcode=shortcode, ignore=flag)
        listed = await api.control("GET", "broadcasts")
    if sender is None:
        assert reply.error == f"shortcode {shortcode} does not belong to this user"
    else:
        assert reply.broadcast["shortcode"] == sender
        assert listed[0]["shortcode_ignore"] is (flag == "true")
        assert listed[0]["shortcode"] == shortcode


async def test_broadcasts_of_another_workspace_are_invisible() -> None:
    """A broadcast id is only found through the workspace that created it."""
    other = Workspace(instance_id=9, public_key="PK9", private_key="SK9", users={"sandbox": ["1"]})
    config = SandboxConfig(workspaces=[SandboxConfig().workspaces[0], other])
    async with sandbox_client(config) as api:
        await create(api, recipients(1))
        reply = await api.call("GET", "getBroadcast", "9", "1", workspace=1)
    assert reply.error == "no broadcast with id 1"
