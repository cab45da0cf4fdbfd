"""Signature vectors (spec §14, shared/vectors/signatures.json) and the forms that must fail."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from ogangi.errors import InvalidParameter
from ogangi.signing import check_segment, sign, signed_path, verify

SHARED = Path(__file__).parents[2] / "shared"
VECTORS: list[dict[str, Any]] = json.loads(
    (SHARED / "vectors" / "signatures.json").read_text(encoding="utf-8")
)["vectors"]
SPEC = (SHARED / "ogangi-api.md").read_text(encoding="utf-8")
WRONG_FORM_LABELS = (
    "hex upper",
    "Base64 std",
    "Base64 URL-safe padded",
    "Base64 URL-safe unpadded",
)


def _spec_vectors() -> list[tuple[str, str, str, str]]:
    """(vector, private key, string to sign, wrong form) for every wrong form listed in §14."""
    section = SPEC[SPEC.index("## 14.") :]
    found = []
    key = ""
    for block in re.split(r"^### ", section, flags=re.MULTILINE)[1:]:
        name = block.split(" ", 1)[0]
        key_match = re.search(r"private key `([^`]+)`", block)
        key = key_match.group(1) if key_match else key
        message = re.search(r"string to sign `([^`]+)`", block)
        for label in WRONG_FORM_LABELS:
            form = re.search(rf"^- {re.escape(label)}: `([^`]+)`", block, flags=re.MULTILINE)
            if message and form:
                found.append((name, key, message.group(1), form.group(1)))
    return found


SPEC_WRONG_FORMS = _spec_vectors()


def _wrong_forms(digest_hex: str) -> list[str]:
    raw = bytes.fromhex(digest_hex)
    return [
        digest_hex.upper(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"].split(" ")[0] for v in VECTORS])
def test_vector_signature_is_lower_hex_hmac(vector: dict[str, Any]) -> None:
    """Every shared vector signs to its documented lower-case hex."""
    assert sign(vector["private_key"], vector["params"]) == vector["signature"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"].split(" ")[0] for v in VECTORS])
def test_vector_signature_verifies_strictly(vector: dict[str, Any]) -> None:
    """The documented signature passes strict verification."""
    assert verify(vector["private_key"], vector["params"], vector["signature"])


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"].split(" ")[0] for v in VECTORS])
def test_vector_wrong_encodings_fail_strict_verification(vector: dict[str, Any]) -> None:
    """Upper-case hex and all Base64 forms of the right MAC are refused in strict mode."""
    for form in _wrong_forms(vector["signature"]):
        assert not verify(vector["private_key"], vector["params"], form), form


def test_spec_lists_wrong_forms_for_every_vector() -> None:
    """The §14 parser found the four wrong forms of all eight signed vectors (V8 has none)."""
    assert len(SPEC_WRONG_FORMS) == 8 * len(WRONG_FORM_LABELS)


@pytest.mark.parametrize(
    ("key", "message", "form"),
    [(k, m, f) for _, k, m, f in SPEC_WRONG_FORMS],
    ids=[f"{n}-{i % 4}" for i, (n, *_) in enumerate(SPEC_WRONG_FORMS)],
)
def test_spec_wrong_forms_fail_strict_verification(key: str, message: str, form: str) -> None:
    """Each upper/Base64 value printed in spec §14 fails strict verification."""
    assert not verify(key, message.split("/"), form)


def test_lenient_mode_accepts_upper_hex_only() -> None:
    """Lenient verification adds upper-case hex and still refuses every Base64 form."""
    vector = VECTORS[0]
    upper, *base64_forms = _wrong_forms(vector["signature"])
    assert verify(vector["private_key"], vector["params"], upper, lenient=True)
    for form in base64_forms:
        assert not verify(vector["private_key"], vector["params"], form, lenient=True)


def test_percent_encoded_reading_is_refused() -> None:
    """V8 (signing the escaped date text) does not verify against the decoded V7 parameters."""
    v7 = next(v for v in VECTORS if v["name"].startswith("V7"))
    v8_signature = "661aba58bde669933b5d90862813255550fb8d9dce8f639f7e90cff263529d7a"
    assert not verify(v7["private_key"], v7["params"], v8_signature)


def test_latin1_key_bytes_would_be_wrong() -> None:
    """V9 signs UTF-8 bytes: the Latin-1 reading from the spec does not match."""
    v9 = next(v for v in VECTORS if v["name"].startswith("V9"))
    latin1 = "2cedc45313f46040f5cfb05022900c844d973e711a0ba557cbdb4e183713a4b8"
    assert sign(v9["private_key"], v9["params"]) != latin1


@pytest.mark.parametrize(
    ("vector_name", "url"),
    [
        (
            "V1",
            (
                "http://customer.domain.com/mmc/rest/api/login/8/peter/peterpassword/"
                "4BFB-4943-9546-9BB8964254F2/"
                "954221dc7ba612b2633c0ff1e0f5c4058f2bf982902faada38c78c4f044f5ef4"
            ),
        ),
        (
            "V2",
            (
                "http://customer.ogangi.com/mmc/rest/api/createBroadcastFromJson/8/-1/434/peter/"
                "true/testJsonBroadcast/null/d1F2T3Y4N56/"
                "345c9baab29d1500ebbf756b9aaa61fcdf265aa5703cd9d1a82ae57850d9b688"
            ),
        ),
    ],
)
def test_signed_path_matches_documented_url(vector_name: str, url: str) -> None:
    """base URL + '/' + signed_path reproduces the URLs printed in §14."""
    vector = next(v for v in VECTORS if v["name"].startswith(vector_name))
    base = url[: url.index("/rest/api/")]
    path = signed_path(
        vector["route"], vector["params"], vector["public_key"], vector["private_key"]
    )
    assert f"{base}/{path}" == url


@pytest.mark.parametrize(
    ("vector_name", "segment"), [("V7", "/25-12-2024%2010:30/"), ("V9", "/Caf%C3%A9/")]
)
def test_signed_path_percent_encodes_but_signs_decoded(vector_name: str, segment: str) -> None:
    """Space and non-ASCII travel percent-encoded while the signature covers the decoded text."""
    vector = next(v for v in VECTORS if v["name"].startswith(vector_name))
    path = signed_path(
        vector["route"], vector["params"], vector["public_key"], vector["private_key"]
    )
    assert segment in path
    assert path.endswith("/" + vector["signature"])


@pytest.mark.parametrize("value", ["", "a/b"])
def test_check_segment_refuses_what_a_path_cannot_carry(value: str) -> None:
    """Empty values and values with '/' are refused before any request exists."""
    with pytest.raises(InvalidParameter):
        check_segment("campaign", value)
