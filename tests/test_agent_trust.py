"""Agent trust: levels, signed messages, delegation, replay, Ed25519 (API.md 8.1, seed 3)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxilion import AgentTrustError
from proxilion.exceptions import ConfigurationError
from proxilion.security import (
    AgentSignedMessage,
    AgentTrustLevel,
    AgentTrustManager,
    DelegationChain,
)
from proxilion.security._keys import WeakSecretKeyWarning
from proxilion.security.agent_trust import TrustLevel

pytestmark = pytest.mark.backend

KEY = "agent-master-key-0123456789abcdef"
L = AgentTrustLevel


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def manager(clock: Clock | None = None, **kw: object) -> AgentTrustManager:
    m = AgentTrustManager(KEY, clock=clock or Clock(), **kw)  # type: ignore[arg-type]
    m.register_agent("boss", L.FULL, ["*"])
    m.register_agent("worker", L.LIMITED, ["web:search", "file:*"])
    return m


def test_seed_example_3_verbatim() -> None:
    with pytest.warns(WeakSecretKeyWarning):
        from proxilion.security import AgentTrustLevel, AgentTrustManager

        trust_manager = AgentTrustManager(secret_key="your-secret-key")
        # Register agent with capabilities
        trust_manager.register_agent(
            agent_id="research-agent",
            trust_level=AgentTrustLevel.LIMITED,
            capabilities=["web:search", "file:read"],
            # Cannot: file:write, db:execute, api:call
        )
    cred = trust_manager.get_agent("research-agent")
    assert cred is not None and cred.capabilities == {"web:search", "file:read"}
    assert cred.has_capability("web:search") and not cred.has_capability("file:write")
    assert not cred.has_capability("db:execute") and not cred.has_capability("api:call")


def test_levels() -> None:
    assert [m.name for m in TrustLevel] == [
        "NONE", "MINIMAL", "LIMITED", "STANDARD", "ELEVATED", "FULL", "SYSTEM",
    ]  # fmt: skip
    assert TrustLevel.UNTRUSTED is TrustLevel.NONE and int(TrustLevel.NONE) == 0
    assert TrustLevel.SYSTEM == 6 and TrustLevel.FULL > TrustLevel.ELEVATED
    assert TrustLevel(0) is TrustLevel.NONE


def test_none_level_denies_everything() -> None:
    m = manager()
    cred = m.register_agent("ghost", L.NONE, ["*", "delegate"])
    assert not cred.has_capability("anything") and not cred.has_capability("*")
    with pytest.raises(AgentTrustError, match="NONE trust level"):
        m.create_signed_message("ghost", "boss", "x", {})
    with pytest.raises(AgentTrustError, match="cannot delegate"):
        m.create_delegation("ghost", "worker", ["x"])
    # A message from an agent demoted to NONE after signing is refused.
    msg = m.create_signed_message("worker", "boss", "web:search", {})
    m.get_agent("worker").trust_level = L.UNTRUSTED  # type: ignore[union-attr]
    assert m.verify_message(msg).error == "Sender has UNTRUSTED trust level"


def test_message_bytes_are_the_originals() -> None:
    m = manager(Clock(1712345678.0))
    payload = {"z": [1, 2.5, None], "a": "é\"'\\", "n": {"b": True}}
    msg = m.create_signed_message("worker", "boss", "web:search", payload)
    agent_secret = hmac.new(KEY.encode(), b"agent:worker", hashlib.sha256).hexdigest()
    text = (
        f"{msg.message_id}|worker|boss|web:search|{json.dumps(payload, sort_keys=True)}|"
        "1712345678.0"
    )
    want = hmac.new(agent_secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert msg.signature == want and msg.timestamp == 1712345678.0
    cred = m.get_agent("worker")
    assert cred is not None
    assert cred.public_key == hashlib.sha256(agent_secret.encode()).hexdigest()[:32]
    assert agent_secret not in repr(cred) and "_secret" not in cred.to_dict()
    # A message made by the original (same bytes) verifies here.
    original = AgentSignedMessage(
        "mid-1", "worker", "boss", "web:search", payload, 1712345678.0, ""
    )
    original.signature = hmac.new(
        agent_secret.encode(), original.signed_text().encode(), hashlib.sha256
    ).hexdigest()
    assert m.verify_message(original).valid


def test_verify_order_and_errors() -> None:
    clock = Clock()
    m = manager(clock)
    msg = m.create_signed_message("worker", "boss", "web:search", {"q": 1})
    assert m.verify_message(msg).valid
    assert m.verify_message(msg).error == "Replay attack detected: message already processed"
    assert m.verify_message(msg, check_replay=False).valid
    fresh = m.create_signed_message("worker", "boss", "web:search", {"q": 1})
    clock.t += 301
    assert m.verify_message(fresh).error == "Message too old: 301.0s > 300.0s"
    assert m.verify_message(fresh, max_age_seconds=400).valid
    clock.t -= 1000
    future = m.create_signed_message("worker", "boss", "web:search", {})
    clock.t -= 61
    assert m.verify_message(future).error == "Message timestamp in the future"
    clock.t += 61
    bad = m.create_signed_message("worker", "boss", "web:search", {"q": 1})
    bad.payload["q"] = 2
    assert m.verify_message(bad).error == "Invalid signature"
    bad2 = m.create_signed_message("worker", "boss", "web:search", {})
    bad2.to_agent = "nobody"
    assert m.verify_message(bad2).error == "Invalid signature"
    nobody = m.create_signed_message("worker", "nobody", "web:search", {})
    assert m.verify_message(nobody).error == "Unknown receiver: nobody"
    stranger = AgentSignedMessage("x", "stranger", "boss", "a", {}, clock.t, "00")
    assert m.verify_message(stranger).error == "Unknown sender: stranger"
    lacks = m.create_signed_message("worker", "boss", "db:execute", {})
    assert m.verify_message(lacks).error == "Sender lacks capability for action 'db:execute'"
    wild = m.create_signed_message("worker", "boss", "file:write", {})
    assert m.verify_message(wild).valid
    nan = m.create_signed_message("worker", "boss", "web:search", {})
    nan.timestamp = float("nan")
    assert m.verify_message(nan).error == "Invalid message timestamp"
    other = manager(clock)
    m2 = other.create_signed_message("worker", "boss", "web:search", {})
    assert m.verify_message(m2).valid  # same master key -> same agent keys
    third = AgentTrustManager("a-completely-different-key-000", clock=clock)
    third.register_agent("worker", L.LIMITED, ["web:search"])
    third.register_agent("boss", L.FULL, ["*"])
    assert (
        third.verify_message(m.create_signed_message("worker", "boss", "web:search", {})).error
        == "Invalid signature"
    )


def test_non_explicit_mode_warns() -> None:
    m = manager(require_explicit_trust=False)
    msg = AgentSignedMessage("x", "stranger", "elsewhere", "a", {}, Clock()(), "00")
    res = m.verify_message(msg)
    assert res.valid and res.warnings == ["Sender stranger not registered"]


def test_delegation_verified_when_used() -> None:
    clock = Clock()
    m = manager(clock)
    m.register_agent("helper", L.MINIMAL, ["web:search"])
    tok = m.create_delegation("boss", "worker", ["db:execute"], ttl_seconds=600)
    ok = m.create_signed_message("worker", "boss", "db:execute", {}, delegation_token=tok)
    assert m.verify_message(ok).valid
    not_granted = m.create_signed_message("worker", "boss", "db:drop", {}, delegation_token=tok)
    assert m.verify_message(not_granted).error == "Action 'db:drop' not in delegation"
    # Someone else presenting the token: refused (the original accepted it).
    stolen = m.create_signed_message("helper", "boss", "db:execute", {}, delegation_token=tok)
    assert m.verify_message(stolen).error == "Delegation token was not issued to the sender"
    # Forged or altered tokens: refused (the original never checked the signature here).
    for field, value in [
        ("granted_capabilities", {"*"}),
        ("expires_at", tok.expires_at + timedelta(days=30)),
        ("constraints", {"any": True}),
        ("chain_depth", 0),
        ("signature", "0" * 64),
    ]:
        forged = type(tok)(**{**tok.__dict__, field: value})
        msg = m.create_signed_message("worker", "boss", "db:execute", {}, delegation_token=forged)
        assert m.verify_message(msg).error == f"Invalid signature on token {tok.token_id}"
    assert m.revoke_delegation(tok.token_id) and not m.revoke_delegation("nope")
    again = m.create_signed_message("worker", "boss", "db:execute", {}, delegation_token=tok)
    assert m.verify_message(again).error == "Delegation token has been revoked"
    tok2 = m.create_delegation("boss", "worker", ["db:execute"], ttl_seconds=600)
    tok2.expires_at = tok2.issued_at - timedelta(seconds=1)
    expired = m.create_signed_message("worker", "boss", "db:execute", {}, delegation_token=tok2)
    assert m.verify_message(expired).error == "Delegation token has expired"


def test_delegation_rules() -> None:
    m = manager()
    m.register_agent("lead", L.ELEVATED, ["delegate", "file:*", "db:read"])
    with pytest.raises(AgentTrustError, match="Issuer agent 'nope' not found"):
        m.create_delegation("nope", "worker", ["x"])
    with pytest.raises(AgentTrustError, match="Delegate agent 'nope' not found"):
        m.create_delegation("lead", "nope", ["x"])
    with pytest.raises(AgentTrustError, match="Agent 'worker' cannot delegate to 'lead'"):
        m.create_delegation("worker", "lead", ["file:read"])
    with pytest.raises(AgentTrustError, match="Cannot delegate capabilities not owned"):
        m.create_delegation("lead", "worker", ["db:write"])
    tok = m.create_delegation("lead", "worker", ["file:read", "db:read"])  # wildcard honoured
    assert tok.chain_depth == 1 and tok.max_chain_depth == 3 and tok.is_valid()
    assert (
        tok.signature
        == hmac.new(
            hmac.new(KEY.encode(), b"agent:lead", hashlib.sha256).hexdigest().encode(),
            tok.signed_text().encode(),
            hashlib.sha256,
        ).hexdigest()
    )
    assert tok.signed_text().endswith(f"|['db:read', 'file:read']|{tok.issued_at.isoformat()}")
    m.unregister_agent("lead")  # revokes its tokens
    msg = m.create_signed_message("worker", "boss", "db:read", {}, delegation_token=tok)
    assert m.verify_message(msg).error == "Delegation token has been revoked"


def test_chains() -> None:
    m = manager()
    m.register_agent("lead", L.ELEVATED, ["delegate", "file:*"])
    m.register_agent("mid", L.STANDARD, ["delegate", "file:read", "file:list"])
    t1 = m.create_delegation("lead", "mid", ["file:read", "file:list"])
    t2 = m.create_delegation("mid", "worker", ["file:read"])
    chain = DelegationChain()
    assert chain.validate() == (True, None) and chain.get_effective_capabilities() == set()
    assert chain.add(t1) and chain.add(t2)
    assert chain.depth == 2 and chain.get_effective_capabilities() == {"file:read"}
    assert m.verify_delegation_chain(chain).valid
    broken = DelegationChain()
    broken.add(t2)
    broken.add(t1)
    assert broken.validate() == (False, "Chain break at position 1: worker != lead")
    assert m.verify_delegation_chain(broken).error == "Chain break at position 1: worker != lead"
    small = DelegationChain(max_depth=1)
    assert small.add(t1) and not small.add(t2)
    t2.granted_capabilities.add("file:delete")
    assert m.verify_delegation_chain(chain).error == f"Invalid signature on token {t2.token_id}"
    m.revoke_delegation(t1.token_id)
    assert m.verify_delegation_chain(chain).error == f"Token {t1.token_id} has been revoked"
    t1.expires_at = t1.issued_at
    assert chain.validate() == (False, "Token at position 0 has expired")


def test_registration_rules() -> None:
    m = manager()
    with pytest.raises(AgentTrustError, match="Agent 'boss' is already registered"):
        m.register_agent("boss", L.FULL, [])
    with pytest.raises(AgentTrustError, match="Parent agent 'nope' not found"):
        m.register_agent("kid", L.MINIMAL, [], parent_agent="nope")
    with pytest.raises(AgentTrustError, match="equal or higher trust than parent"):
        m.register_agent("kid", L.LIMITED, [], parent_agent="worker")
    kid = m.register_agent("kid", L.MINIMAL, ["a"], parent_agent="worker", ttl_seconds=60)
    assert kid.expires_at is not None and kid.parent_agent == "worker"
    assert m.get_trust_level("kid") is L.MINIMAL and m.get_trust_level("x") is None
    assert set(m.get_registered_agents()) == {"boss", "worker", "kid"}
    kid.expires_at = kid.created_at
    assert m.cleanup_expired() == 1 and m.get_agent("kid") is None
    assert m.unregister_agent("worker") and not m.unregister_agent("worker")
    with pytest.raises(TypeError, match="not a single str"):
        m.register_agent("y", L.MINIMAL, "abc")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="replay_cache_size must be an int >= 1"):
        AgentTrustManager(KEY, replay_cache_size=0)


def test_key_rotation_grace() -> None:
    clock = Clock()
    m = manager(clock)
    old = m.create_signed_message("worker", "boss", "web:search", {})
    m.rotate_key("rotated-master-key-0123456789", grace_seconds=30)
    new = m.create_signed_message("worker", "boss", "web:search", {})
    assert old.signature != new.signature
    assert m.verify_message(old).valid and m.verify_message(new).valid
    clock.t += 31
    late = dataclasses.replace(old, message_id="other")
    assert m.verify_message(late).error == "Invalid signature"
    assert KEY not in repr(m)


def test_replay_cache_never_forgets() -> None:
    clock = Clock()
    m = manager(clock, replay_cache_size=4)
    msgs = []
    for _ in range(10):
        msgs.append(m.create_signed_message("worker", "boss", "web:search", {}))
        clock.t += 1
    for msg in msgs:
        assert m.verify_message(msg).valid
    # Every id is refused again, evicted or not, while still within the age window.
    for msg in msgs:
        assert m.verify_message(msg).error == "Replay attack detected: message already processed"


def test_ed25519_remote_agent_verify_only() -> None:
    pytest.importorskip("cryptography")
    clock = Clock()
    sender_side = AgentTrustManager(KEY, clock=clock)
    sender_side.register_agent("svc-a", L.STANDARD, ["orders:read"], algorithm="ed25519")
    sender_side.register_agent("svc-b", L.STANDARD, [])
    pub = sender_side.export_public_key("svc-a")
    assert len(pub) == 64
    msg = sender_side.create_signed_message("svc-a", "svc-b", "orders:read", {"id": 7})
    assert len(msg.signature) == 128 and sender_side.verify_message(msg).valid
    # The verifying service has another master key and only the public key.
    verifier = AgentTrustManager("verifier-side-key-0123456789", clock=clock)
    verifier.register_remote_agent("svc-a", L.STANDARD, ["orders:read"], pub)
    verifier.register_agent("svc-b", L.STANDARD, [])
    assert verifier.verify_message(msg).valid
    with pytest.raises(AgentTrustError, match="verify-only"):
        verifier.create_signed_message("svc-a", "svc-b", "orders:read", {})
    msg2 = sender_side.create_signed_message("svc-a", "svc-b", "orders:read", {"id": 7})
    msg2.payload["id"] = 8
    assert verifier.verify_message(msg2).error == "Invalid signature"
    hmac_sig = sender_side.create_signed_message("svc-b", "svc-a", "x", {})
    hmac_sig.from_agent = "svc-a"  # an HMAC tag where an Ed25519 signature is required
    assert verifier.verify_message(hmac_sig).error == "Invalid signature"
    with pytest.raises(ConfigurationError, match="Ed25519 public key"):
        verifier.register_remote_agent("bad", L.MINIMAL, [], "abcd")
    with pytest.raises(AgentTrustError, match="not a registered Ed25519 agent"):
        verifier.export_public_key("svc-b")


def test_keys_validation() -> None:
    with pytest.raises(ConfigurationError, match="secret_key must not be empty"):
        AgentTrustManager(b"")
    with pytest.raises(TypeError, match="secret_key must be str or bytes, not int"):
        AgentTrustManager(123)  # type: ignore[arg-type]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(
    payload=st.dictionaries(st.text(max_size=6), json_values, max_size=4), ts=st.floats(1e9, 2e9)
)
def test_signature_equals_python_recomputation(payload: dict[str, object], ts: float) -> None:
    m = manager(Clock(ts))
    msg = m.create_signed_message("worker", "boss", "web:search", payload)
    secret = hmac.new(KEY.encode(), b"agent:worker", hashlib.sha256).hexdigest()
    text = f"{msg.message_id}|worker|boss|web:search|{json.dumps(payload, sort_keys=True)}|{ts}"
    assert msg.signature == hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    assert m.verify_message(msg).valid
