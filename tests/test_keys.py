"""Secret-key validation and rotation (API.md 7.0, adapted: the seed's short keys warn)."""

from __future__ import annotations

import logging
import warnings

import pytest

from proxilion.exceptions import ConfigurationError
from proxilion.security._keys import KeyRing, WeakSecretKeyWarning, validate_secret_key


@pytest.mark.parametrize(
    ("key", "match"),
    [
        ("short-key-15chr", "shorter than 16"),
        ("a-changeme-value-long", "placeholder"),
        ("EXAMPLE-0123456789", "placeholder"),
        ("x" * 40, "placeholder"),
        (b"\x00" * 32, "placeholder"),
        (b"short", "shorter than 16"),
    ],
)
def test_weak_keys_warn(key: str | bytes, match: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), pytest.warns(WeakSecretKeyWarning, match=match):
        raw = validate_secret_key(key)
    assert raw == (key.encode() if isinstance(key, str) else key)
    assert match in caplog.text
    assert (key if isinstance(key, str) else "\x00") not in caplog.text.replace("\x00", "")


def test_good_keys_are_silent() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert validate_secret_key("Zq8#kT2!vW9@mP4$") == b"Zq8#kT2!vW9@mP4$"
        assert validate_secret_key(bytearray(range(1, 33))) == bytes(range(1, 33))
        assert validate_secret_key(b"\xff\xfe" + bytes(range(30))) == b"\xff\xfe" + bytes(range(30))


@pytest.mark.parametrize("key", ["", b""])
def test_empty_rejected(key: str | bytes) -> None:
    with pytest.raises(ConfigurationError, match="secret_key must not be empty"):
        validate_secret_key(key)


@pytest.mark.parametrize("key", [None, 1, 1.5, ["k"], memoryview(b"k" * 16)])
def test_wrong_types_rejected(key: object) -> None:
    with pytest.raises(TypeError, match=f"not {type(key).__name__}"):
        validate_secret_key(key)


def test_surrogate_key_rejected() -> None:
    with pytest.raises(ConfigurationError, match="surrogate"):
        validate_secret_key("\ud800" * 20)


def test_ring_rotation_and_expiry() -> None:
    now = [100.0]
    ring = KeyRing("first-key-0123456789", clock=lambda: now[0])
    assert ring.current_key_id == "k1" and len(ring.signing_keys()) == 1
    tag1 = ring.signing_keys().sign("m")
    assert ring.rotate("second-key-0123456789", grace_seconds=10) == "k2"
    assert ring.rotate("third-key-0123456789", key_id="blue", grace_seconds=5) == "blue"
    assert ring.key_ids() == ["blue", "k2", "k1"]
    keys = ring.signing_keys()
    assert keys.verify("m", tag1) == 2
    now[0] = 106.0
    assert ring.key_ids() == ["blue", "k1"]
    now[0] = 111.0
    assert ring.key_ids() == ["blue"] and ring.signing_keys().verify("m", tag1) == -1
    with pytest.raises(ConfigurationError, match="already in use"):
        ring.rotate("fourth-key-0123456789", key_id="blue")
    with pytest.raises(ConfigurationError, match="grace_seconds"):
        ring.rotate("fourth-key-0123456789", grace_seconds=-1)
    with pytest.raises(ConfigurationError, match="current key cannot be retired"):
        ring.retire("blue")
    ring.rotate("fourth-key-0123456789", key_id="green")
    assert ring.retire("blue") and not ring.retire("blue")
    assert ring.key_ids() == ["green"]
    text = repr(ring)
    assert text == "KeyRing(current='green', active=['green'])"
    assert "key-0123456789" not in text


def test_random_uuid4_is_a_version_4_uuid() -> None:
    import uuid

    from proxilion.security._keys import random_uuid4

    seen = set()
    for _ in range(200):
        text = random_uuid4()
        u = uuid.UUID(text)
        assert str(u) == text and u.version == 4 and u.variant == uuid.RFC_4122
        seen.add(text)
    assert len(seen) == 200


def test_random_uuid4_threads_never_share_an_id() -> None:
    import threading

    from proxilion.security._keys import random_uuid4

    out: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i].extend(random_uuid4() for _ in range(500))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ids = [x for chunk in out for x in chunk]
    assert len(ids) == 2000 and len(set(ids)) == 2000


def test_random_uuid4_fork_child_does_not_reuse_parent_bytes() -> None:
    import os

    import pytest

    from proxilion.security import _keys

    if not hasattr(os, "fork"):
        pytest.skip("no fork")
    _keys.random_uuid4()  # the pool now holds unused bytes
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and exit at once
        try:
            os.write(w, _keys.random_uuid4().encode())
        finally:
            os._exit(0)
    os.close(w)
    child_id = os.read(r, 100).decode()
    os.close(r)
    os.waitpid(pid, 0)
    assert len(child_id) == 36
    assert child_id != _keys.random_uuid4()


def test_weak_key_warning_is_public() -> None:
    import warnings

    from proxilion.security import MemoryIntegrityGuard, WeakSecretKeyWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        MemoryIntegrityGuard(secret_key="your-secret-key")
    assert {w.category for w in caught} == {WeakSecretKeyWarning}


def test_signing_keys_cache_keeps_weak_key_warnings_and_errors() -> None:
    import warnings

    import pytest

    from proxilion.exceptions import ConfigurationError
    from proxilion.security import WeakSecretKeyWarning, _keys
    from proxilion.security.intent_capsule import IntentCapsule

    strong = "cache-test-key-0123456789abcdef-" + "x1y2z3"
    first = _keys.signing_keys_for(strong)
    assert _keys.signing_keys_for(strong) is first
    assert _keys.cached_signing_keys(strong) is first
    assert first.sign("m") == _keys.impl.SigningKeys([strong]).sign("m")
    # Weak keys are never cached: every use warns again.
    for _ in range(3):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            IntentCapsule.create("u", "find files", "your-secret-key", allowed_tools=["t"])
        assert {w.category for w in caught} == {WeakSecretKeyWarning}
    assert _keys.cached_signing_keys("your-secret-key") is None
    with pytest.raises(ConfigurationError, match="must not be empty"):
        _keys.signing_keys_for("")
    with pytest.raises(TypeError, match="must be str or bytes"):
        _keys.signing_keys_for(12345)
    # Bounded.
    for i in range(40):
        _keys.signing_keys_for(f"bounded-cache-key-{i:04d}-abcdefghij")
    assert len(_keys._KEYS_CACHE) <= _keys._KEYS_CACHE_SIZE
    assert _keys.cached_signing_keys(strong) is None  # evicted, oldest first
