"""The sandbox's protocol surface: routes, verbs, signatures (§2), envelope (§6), getShortcodes."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from ogangi.sandbox import SandboxConfig, Workspace
from ogangi.sandbox.testing import sandbox_client
from ogangi.signing import sign

#: The spec's §14 example workspace (keys from the vendor docs, not secrets).
DOC_KEYS = Workspace(
    instance_id=8,
    public_key="d1F2T3Y4N56",
    private_key="A1B2T3J4N5",
    users={"peter": ["434"], "sandbox": ["55500"]},
)
V4_SIGNATURE = "57312d37b89e16cd69d324b6004aa596b527852beaa1abd83f60ac5f66a61a8f"
V6_SIGNATURE = "e0222056c37ce95e84f5a75adcc952908b5bcbdec10d45bfa2db26eb9c90509d"
V7_SIGNATURE = "fe392cef685453f2f88afcc3a3e2c92ce374ba6caa77577b53d1be6fcc36b24f"
V8_SIGNATURE = "661aba58bde669933b5d90862813255550fb8d9dce8f639f7e90cff263529d7a"
ONE_RECIPIENT = '[{"mobile":"13056708084","text":"Hi"}]'


def doc_config(**changes: object) -> SandboxConfig:
    return SandboxConfig(workspaces=[DOC_KEYS], broadcast_rate=1e6, **changes)  # type: ignore[arg-type]


async def test_shortcodes_lists_the_users_codes_in_the_response_envelope() -> None:
    """getShortcodes answers 200 with the §6 envelope and the user's codes as text."""
    async with sandbox_client() as api:
        reply = await api.call("GET", "getShortcodes", "8", "sandbox")
    assert reply.http_status == 200
    assert reply.headers["Content-Type"] == "application/xml; charset=UTF-8"
    assert reply.body.startswith(b'<?xml version="1.0" encoding="UTF-8"?><response><input>')
    assert reply.xml.tag == "response"
    assert [reply.text("input"), reply.status, reply.text("description")] == [
        "getShortcodes",
        "OK",
        "Completed",
    ]
    assert [sc.text for sc in reply.xml.iterfind("result/shortcodes/shortcode/sc")] == ["55500"]


async def test_documented_vector_v4_is_accepted() -> None:
    """The spec's V4 signature for getShortcodes/8/peter is accepted as is."""
    async with sandbox_client(doc_config()) as api:
        reply = await api.call("GET", "getShortcodes", "8", "peter", signature=V4_SIGNATURE)
    assert reply.status == "OK"
    assert reply.text("result/shortcodes/shortcode/sc") == "434"


@pytest.mark.parametrize("user", ["cGV0ZXI=", "cGV0ZXI"])
async def test_user_name_may_be_url_safe_base64_with_or_without_padding(user: str) -> None:
    """§5.2: a Base64 userName, padded or not, finds the same user."""
    async with sandbox_client(doc_config()) as api:
        reply = await api.call("GET", "getShortcodes", "8", user)
    assert reply.status == "OK"
    assert reply.text("result/shortcodes/shortcode/sc") == "434"


async def test_unknown_user_is_error_with_a_reason() -> None:
    """An unknown userName answers ERROR, with the fixed description and a diagnostic."""
    async with sandbox_client() as api:
        reply = await api.call("GET", "getShortcodes", "8", "nobody")
    assert reply.status == "ERROR"
    assert reply.text("description") == "Internal error, please report this to support@messangi.com"
    assert "unknown user" in reply.error


async def test_wrong_private_key_is_bad_signature() -> None:
    """A signature made with another private key answers BAD_SIGNATURE (HTTP 200)."""
    async with sandbox_client() as api:
        reply = await api.call(
            "GET", "getShortcodes", "8", "sandbox", signature=sign("wrong", ["8", "sandbox"])
        )
    assert reply.http_status == 200
    assert reply.status == "BAD_SIGNATURE"
    assert reply.text("description") == "Invalid signature, access denied"


async def test_unknown_public_key_is_bad_signature() -> None:
    """§2.4: a public key no workspace has answers BAD_SIGNATURE."""
    async with sandbox_client() as api:
        reply = await api.call("GET", "getShortcodes", "8", "sandbox", public_key="NOPE")
    assert reply.status == "BAD_SIGNATURE"


async def test_instance_of_another_workspace_is_bad_signature() -> None:
    """§2.4: a correctly signed call naming another instance is refused."""
    async with sandbox_client() as api:
        reply = await api.call("GET", "getShortcodes", "9", "sandbox")
    assert reply.status == "BAD_SIGNATURE"


async def test_upper_case_hex_is_refused_in_strict_mode() -> None:
    """§2.2: strict mode accepts lower-case hex only."""
    async with sandbox_client(doc_config()) as api:
        reply = await api.call("GET", "getShortcodes", "8", "peter", signature=V4_SIGNATURE.upper())
    assert reply.status == "BAD_SIGNATURE"


async def test_upper_case_hex_is_accepted_in_lenient_mode() -> None:
    """§2.2: the lenient flag also accepts upper-case hex."""
    async with sandbox_client(doc_config(lenient=True)) as api:
        reply = await api.call("GET", "getShortcodes", "8", "peter", signature=V4_SIGNATURE.upper())
    assert reply.status == "OK"


@pytest.mark.parametrize("lenient", [False, True])
@pytest.mark.parametrize(
    "encode",
    [
        base64.b64encode,
        base64.urlsafe_b64encode,
        lambda mac: base64.urlsafe_b64encode(mac).rstrip(b"="),
    ],
    ids=["standard", "url-safe", "url-safe-unpadded"],
)
async def test_base64_signatures_are_never_accepted(encode: object, lenient: bool) -> None:
    """§2.2: no Base64 form of the right MAC is accepted, in either mode."""
    mac = hmac.new(b"A1B2T3J4N5", b"8/1234", hashlib.sha256).digest()
    signature = encode(mac).decode()  # type: ignore[operator]
    async with sandbox_client(doc_config(lenient=lenient)) as api:
        reply = await api.call("GET", "getBroadcast", "8", "1234", signature=signature)
    # A standard-alphabet '/' splits the segment: then the route does not even match.
    assert reply.http_status == 404 or reply.status == "BAD_SIGNATURE"


async def test_percent_encoded_value_is_verified_decoded_v7() -> None:
    """§2.3 V7: a date sent as ``25-12-2024%2010:30`` is signed as ``25-12-2024 10:30``."""
    async with sandbox_client(doc_config()) as api:
        base = api.sandbox.base_url
        url = (
            f"{base}/rest/api/createBroadcastFromJson/8/-1/434/peter/true/testJsonBroadcast/"
            f"25-12-2024%2010:30/d1F2T3Y4N56/{V7_SIGNATURE}"
        )
        reply = await api.request("POST", url, data={"to": ONE_RECIPIENT})
    assert reply.status == "OK"


async def test_signing_the_percent_encoded_text_is_refused_v8() -> None:
    """§2.3 V8: the signature over the still-encoded segment is BAD_SIGNATURE in strict mode."""
    async with sandbox_client(doc_config()) as api:
        base = api.sandbox.base_url
        url = (
            f"{base}/rest/api/createBroadcastFromJson/8/-1/434/peter/true/testJsonBroadcast/"
            f"25-12-2024%2010:30/d1F2T3Y4N56/{V8_SIGNATURE}"
        )
        reply = await api.request("POST", url, data={"to": ONE_RECIPIENT})
    assert reply.status == "BAD_SIGNATURE"


async def test_delete_route_name_is_not_signed_v6() -> None:
    """§5.6 V6: DELETE broadcast/8/1234 carries the same signature as getBroadcast/8/1234."""
    async with sandbox_client(doc_config()) as api:
        reply = await api.call("DELETE", "broadcast", "8", "1234", signature=V6_SIGNATURE)
    assert reply.status == "ERROR"  # signature accepted; there is just no broadcast 1234
    assert "no broadcast" in reply.error


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "rest/api/nosuchRoute/8/KEY/SIG"),
        ("GET", "rest/api/getShortcodes/8/KEY/SIG"),
        ("GET", "rest/api/getShortcodes/8/sandbox/extra/KEY/SIG"),
        ("POST", "rest/api/sendSMSByFile/8/KEY/SIG"),
        ("GET", "rest/api/getShortcodes/8/sandbox/KEY/SIG/"),
    ],
    ids=["unknown route", "too few segments", "too many segments", "missing tools/", "slash"],
)
async def test_unmatched_routes_are_404_without_xml(method: str, path: str) -> None:
    """§2.4 step 1: route name and exact segment count, else a bare 404."""
    async with sandbox_client() as api:
        reply = await api.request(method, f"{api.sandbox.base_url}/{path}")
    assert reply.http_status == 404
    assert b"<response>" not in reply.body


@pytest.mark.parametrize(
    ("method", "route", "params"),
    [
        ("GET", "tools/sendSMSByFile", ("8",)),
        ("POST", "getShortcodes", ("8", "sandbox")),
        ("GET", "broadcast", ("8", "1")),
        ("DELETE", "getBroadcast", ("8", "1")),
    ],
)
async def test_wrong_verb_is_405(method: str, route: str, params: tuple[str, ...]) -> None:
    """A known route with the wrong HTTP verb answers 405 and names the allowed ones."""
    async with sandbox_client() as api:
        reply = await api.call(method, route, *params)
    assert reply.http_status == 405
    assert reply.headers["Allow"]


@pytest.mark.parametrize("verb", ["GET", "POST"])
async def test_broadcast_actions_accept_get_and_post(verb: str) -> None:
    """§4: getBroadcast/suspend/resume/stop are routed for GET and for POST."""
    async with sandbox_client() as api:
        replies = [
            await api.call(verb, route, "8", "77")
            for route in ("getBroadcast", "suspendBroadcast", "resumeBroadcast", "stopBroadcast")
        ]
    assert [r.text("input") for r in replies] == [
        "getBroadcast",
        "suspendBroadcast",
        "resumeBroadcast",
        "stopBroadcast",
    ]
    assert {r.status for r in replies} == {"ERROR"}  # authenticated; broadcast 77 is unknown


async def test_text_echoed_in_responses_is_xml_escaped() -> None:
    """A request value echoed in an error reason cannot break the XML."""
    async with sandbox_client() as api:
        params = ("8", "-1", "<x&y>", "sandbox", "true", "null", "null")
        reply = await api.call(
            "POST", "createBroadcastFromJson", *params, data={"to": ONE_RECIPIENT}
        )
    assert reply.status == "ERROR"
    assert reply.error == "shortcode <x&y> does not belong to this user"
