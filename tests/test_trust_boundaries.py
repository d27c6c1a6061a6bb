"""Trust zones and boundary delegations (proxilion.security.trust_boundaries)."""

from __future__ import annotations

import dataclasses

import pytest

from proxilion.exceptions import ConfigurationError, ProxilionError
from proxilion.security import (
    DEFAULT_BOUNDARIES,
    AgentIdentity,
    DelegationToken,
    TrustBoundary,
    TrustBoundaryViolation,
    TrustEnforcer,
    TrustLevel,
)

pytestmark = pytest.mark.backend


class Clock:
    def __init__(self, t: float = 1_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def enforcer(clock: Clock | None = None) -> TrustEnforcer:
    e = TrustEnforcer(secret_key="boundary-key-0123456789", clock=clock or Clock())
    e.register_agent(AgentIdentity("core", TrustLevel.INTERNAL, "acme"))
    e.register_agent(AgentIdentity("core2", TrustLevel.INTERNAL, "acme"))
    e.register_agent(AgentIdentity("partner", TrustLevel.PARTNER, "globex"))
    e.register_agent(AgentIdentity("partner2", TrustLevel.PARTNER, "globex"))
    e.register_agent(AgentIdentity("outsider", TrustLevel.EXTERNAL))
    return e


def test_names_and_levels() -> None:
    assert [lvl.name for lvl in TrustLevel] == ["INTERNAL", "PARTNER", "EXTERNAL"]
    assert TrustLevel.INTERNAL < TrustLevel.EXTERNAL  # lower is more trusted
    assert len(DEFAULT_BOUNDARIES) == 9
    exc = TrustBoundaryViolation("nope", chain_depth=2, from_level=TrustLevel.PARTNER)
    assert isinstance(exc, ProxilionError)
    assert exc.message == "Trust boundary violation: nope"
    assert exc.details["from_level"] == "PARTNER" and exc.chain_depth == 2


def test_default_rules() -> None:
    e = enforcer()
    assert e.check("core", "outsider", "write") == (True, None)
    assert e.check("partner", "partner2", "anything") == (True, None)
    assert e.check("outsider", "core", "read") == (
        False,
        "EXTERNAL agents may not interact with INTERNAL agents",
    )
    assert e.check("partner", "core", "write") == (
        False,
        "Action 'write' is not allowed from PARTNER to INTERNAL",
    )
    assert e.check("partner", "core", "read") == (
        False,
        "A delegation is required from PARTNER to INTERNAL",
    )
    assert e.check("ghost", "core", "read") == (False, "Unknown agent 'ghost'")
    with pytest.raises(TrustBoundaryViolation) as ei:
        e.enforce("outsider", "core", "read")
    assert ei.value.from_level is TrustLevel.EXTERNAL and ei.value.to_level is TrustLevel.INTERNAL


def test_delegation_crosses_a_boundary() -> None:
    clock = Clock()
    e = enforcer(clock)
    tok = e.create_delegation("core", "partner", ["read"], ttl_seconds=60)
    assert tok.chain_depth == 1 and e.verify_delegation(tok)
    e.enforce("partner", "core2", "read", tok)
    assert e.check("partner2", "core", "read", tok) == (
        False,
        "Delegation token was not issued to this agent",
    )
    # Altered, forged, expired, revoked: all refused.
    for bad in [
        dataclasses.replace(tok, scopes=frozenset({"*"})),
        dataclasses.replace(tok, expires_at=tok.expires_at + 3600),
        dataclasses.replace(tok, signature="0" * 64),
    ]:
        assert e.check("partner", "core", "read", bad) == (
            False,
            "Delegation token signature is invalid",
        )
    other = TrustEnforcer(secret_key="other-key-0123456789ab", clock=clock)
    assert not other.verify_delegation(tok)
    clock.t += 61
    assert e.check("partner", "core", "read", tok)[1] == "Delegation token has expired"
    clock.t -= 61
    e.revoke_delegation(tok.token_id)
    assert e.check("partner", "core", "read", tok)[1] == "Delegation token has been revoked"
    # A delegation from a less trusted zone cannot open a more trusted one.
    low = e.create_delegation("partner2", "partner", ["read"])
    assert e.check("partner", "core", "read", low)[1] == (
        "Delegation must originate in a zone trusted at least as the target"
    )
    scoped = e.create_delegation("core", "partner", ["query"])
    assert e.check("partner", "core", "read", scoped)[1] == "Action 'read' is not in the delegation"
    assert e.check("partner", "core", "read", "token")[1] == (  # type: ignore[arg-type]
        "Delegation is not a DelegationToken"
    )


def test_chains() -> None:
    e = enforcer()
    e.register_agent(AgentIdentity("partner3", TrustLevel.PARTNER))
    t1 = e.create_delegation("core", "partner2", ["read", "query"])
    t2 = e.create_delegation("partner2", "partner", ["read"], parent=t1)
    assert t2.chain == ("core",) and t2.chain_depth == 2 and t2.expires_at <= t1.expires_at
    e.enforce("partner", "core", "read", t2)  # PARTNER->INTERNAL allows depth 2
    t3 = e.create_delegation("partner", "partner3", ["read"], parent=t2)
    assert e.check("partner3", "core", "read", t3)[1] == "Delegation chain depth 3 exceeds max 2"
    with pytest.raises(TrustBoundaryViolation, match="Cannot widen delegated scopes"):
        e.create_delegation("partner2", "partner", ["write"], parent=t1)
    with pytest.raises(TrustBoundaryViolation, match="is not the delegate of the parent"):
        e.create_delegation("partner", "partner3", ["read"], parent=t1)
    with pytest.raises(TrustBoundaryViolation, match="chain depth 4 exceeds max 3"):
        e.create_delegation("partner3", "partner2", ["read"], parent=t3)
    with pytest.raises(TrustBoundaryViolation, match="Unknown agent 'ghost'"):
        e.create_delegation("core", "ghost", ["read"])
    assert t2.to_dict()["chain"] == ["core"] and t2.to_dict()["signature"] == t2.signature


def test_custom_boundaries_and_config() -> None:
    e = TrustEnforcer(boundaries=[TrustBoundary(TrustLevel.INTERNAL, TrustLevel.INTERNAL)])
    e.register_agent(AgentIdentity("a", TrustLevel.INTERNAL))
    e.register_agent(AgentIdentity("b", TrustLevel.PARTNER))
    assert e.check("a", "a", "x") == (True, None)
    assert e.check("a", "b", "x")[0] is False  # no rule: denied
    e.set_boundary(TrustBoundary(TrustLevel.INTERNAL, TrustLevel.PARTNER))
    assert e.check("a", "b", "x") == (True, None)
    assert e.get_boundary(TrustLevel.PARTNER, TrustLevel.INTERNAL) is None
    with pytest.raises(ConfigurationError, match="max_chain_depth"):
        TrustEnforcer(max_chain_depth=0)
    with pytest.raises(TypeError, match="identity must be AgentIdentity"):
        e.register_agent("a")  # type: ignore[arg-type]
    assert isinstance(DelegationToken, type)
