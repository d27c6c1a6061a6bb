"""Trust boundaries between organisations' agents: which trust zone may call which, and
signed, depth-limited delegations to cross a boundary that requires one.

Exported from ``proxilion.security`` as ``TrustLevel`` (this module's enum: ``INTERNAL=0``,
``PARTNER=1``, ``EXTERNAL=2``, lower is more trusted), ``DelegationToken`` (this module's token),
``AgentIdentity``, ``TrustBoundary``, ``TrustBoundaryViolation``, ``TrustEnforcer`` and
``DEFAULT_BOUNDARIES`` (API.md section 7). The agent-trust equivalents are
``AgentTrustLevel`` and ``AgentDelegationToken``.

Delegation tokens are HMAC-SHA256 signed over every field (through the native key set) and
are verified whenever they are used; an unsigned, altered, expired, misaddressed or too deep
token fails closed.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from proxilion.exceptions import ConfigurationError, ProxilionError
from proxilion.security._keys import KeyRing, random_uuid4

__all__ = [
    "DEFAULT_BOUNDARIES",
    "AgentIdentity",
    "DelegationToken",
    "TrustBoundary",
    "TrustBoundaryViolation",
    "TrustEnforcer",
    "TrustLevel",
]

_TOKEN_PREFIX = "proxilion-boundary-delegation-v1|"  # noqa: S105 - a domain tag


class TrustLevel(IntEnum):
    """Trust zone of an agent; lower means more trusted."""

    INTERNAL = 0
    PARTNER = 1
    EXTERNAL = 2


class TrustBoundaryViolation(ProxilionError):
    """An interaction crossed a trust boundary it may not cross."""

    def __init__(
        self,
        reason: str,
        chain_depth: int | None = None,
        from_level: TrustLevel | None = None,
        to_level: TrustLevel | None = None,
    ) -> None:
        self.reason = reason
        self.chain_depth = chain_depth
        self.from_level = from_level
        self.to_level = to_level
        super().__init__(
            f"Trust boundary violation: {reason}",
            {
                "reason": reason,
                "chain_depth": chain_depth,
                "from_level": from_level.name if from_level is not None else None,
                "to_level": to_level.name if to_level is not None else None,
            },
        )


@dataclass(frozen=True)
class AgentIdentity:
    """An agent and the trust zone it belongs to."""

    agent_id: str
    trust_level: TrustLevel
    organization: str | None = None
    capabilities: frozenset[str] = frozenset()
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class TrustBoundary:
    """Whether agents of ``from_level`` may act on agents of ``to_level``, and how."""

    from_level: TrustLevel
    to_level: TrustLevel
    allowed: bool = True
    allowed_actions: frozenset[str] = frozenset({"*"})
    require_delegation: bool = False
    max_chain_depth: int = 3
    description: str = ""

    def permits(self, action: str) -> bool:
        """True when the boundary is open for ``action``."""
        return self.allowed and ("*" in self.allowed_actions or action in self.allowed_actions)


_I, _P, _E = TrustLevel.INTERNAL, TrustLevel.PARTNER, TrustLevel.EXTERNAL
#: Deny-leaning defaults: calls towards less trusted zones are open; a partner reaches internal
#: agents only to read, through a delegation; external agents never reach internal ones.
DEFAULT_BOUNDARIES: tuple[TrustBoundary, ...] = (
    TrustBoundary(_I, _I, description="internal to internal"),
    TrustBoundary(_I, _P, description="internal to partner"),
    TrustBoundary(_I, _E, description="internal to external"),
    TrustBoundary(
        _P,
        _I,
        allowed_actions=frozenset({"read", "query"}),
        require_delegation=True,
        max_chain_depth=2,
        description="partner to internal: read only, delegated",
    ),
    TrustBoundary(_P, _P, description="partner to partner"),
    TrustBoundary(_P, _E, description="partner to external"),
    TrustBoundary(_E, _I, allowed=False, description="external to internal: never"),
    TrustBoundary(
        _E,
        _P,
        allowed_actions=frozenset({"read", "query"}),
        require_delegation=True,
        max_chain_depth=1,
        description="external to partner: read only, delegated",
    ),
    TrustBoundary(_E, _E, description="external to external"),
)


@dataclass(frozen=True)
class DelegationToken:
    """A signed grant from ``delegator`` to ``delegate`` of ``scopes`` (actions).

    ``chain`` lists the earlier delegators when the token re-delegates a parent token;
    ``chain_depth`` is ``len(chain) + 1``.
    """

    token_id: str
    delegator: str
    delegate: str
    scopes: frozenset[str]
    issued_at: float
    expires_at: float
    chain: tuple[str, ...] = ()
    signature: str = ""

    @property
    def chain_depth(self) -> int:
        """Number of delegations this token stands for."""
        return len(self.chain) + 1

    def is_expired(self, now: float | None = None) -> bool:
        """True once ``expires_at`` has passed."""
        return (time.time() if now is None else now) > self.expires_at

    def signed_text(self) -> str:
        """Canonical text covered by the signature (every field but the signature)."""
        body = {
            "token_id": self.token_id,
            "delegator": self.delegator,
            "delegate": self.delegate,
            "scopes": sorted(self.scopes),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "chain": list(self.chain),
        }
        return _TOKEN_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {**json.loads(self.signed_text()[len(_TOKEN_PREFIX) :]), "signature": self.signature}


class TrustEnforcer:
    """Decides interactions between registered agents across trust zones. Thread-safe.

    Args:
        boundaries: the rules (default :data:`DEFAULT_BOUNDARIES`); a pair without a rule is
            denied.
        secret_key: key that signs delegation tokens (default: a random per-process key, so
            tokens verify only in this enforcer).
        max_chain_depth: global limit on delegation chains.
        clock: wall clock in seconds (injectable for tests).
    """

    def __init__(
        self,
        boundaries: Iterable[TrustBoundary] | None = None,
        secret_key: str | bytes | KeyRing | None = None,
        max_chain_depth: int = 3,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(max_chain_depth, bool) or not isinstance(max_chain_depth, int):
            raise ConfigurationError(
                "max_chain_depth must be an int >= 1", received=max_chain_depth
            )
        if max_chain_depth < 1:
            raise ConfigurationError(
                "max_chain_depth must be an int >= 1", received=max_chain_depth
            )
        if secret_key is None:
            secret_key = secrets.token_bytes(32)
        self._ring = (
            secret_key
            if isinstance(secret_key, KeyRing)
            else KeyRing(secret_key, clock=clock, _stacklevel=2)
        )
        self._rules: dict[tuple[TrustLevel, TrustLevel], TrustBoundary] = {}
        for b in DEFAULT_BOUNDARIES if boundaries is None else boundaries:
            self._rules[(b.from_level, b.to_level)] = b
        self.max_chain_depth = max_chain_depth
        self._clock = clock
        self._lock = threading.RLock()
        self._agents: dict[str, AgentIdentity] = {}
        self._revoked: set[str] = set()

    def __repr__(self) -> str:
        return f"TrustEnforcer(agents={len(self._agents)}, rules={len(self._rules)})"

    def register_agent(self, identity: AgentIdentity) -> None:
        """Register (or replace) an agent's identity."""
        if not isinstance(identity, AgentIdentity):
            raise TypeError(f"identity must be AgentIdentity, not {type(identity).__name__}")
        with self._lock:
            self._agents[identity.agent_id] = identity

    def get_agent(self, agent_id: str) -> AgentIdentity | None:
        """The agent's identity, or None."""
        with self._lock:
            return self._agents.get(agent_id)

    def set_boundary(self, boundary: TrustBoundary) -> None:
        """Add or replace the rule for one (from, to) pair."""
        with self._lock:
            self._rules[(boundary.from_level, boundary.to_level)] = boundary

    def get_boundary(self, from_level: TrustLevel, to_level: TrustLevel) -> TrustBoundary | None:
        """The rule for a pair, or None (denied)."""
        with self._lock:
            return self._rules.get((TrustLevel(from_level), TrustLevel(to_level)))

    def create_delegation(
        self,
        delegator: str,
        delegate: str,
        scopes: Iterable[str],
        ttl_seconds: float = 3600.0,
        parent: DelegationToken | None = None,
    ) -> DelegationToken:
        """Sign a delegation. Re-delegating a ``parent`` token needs ``delegator`` to be its
        delegate, may only narrow its scopes and ends no later than it.

        Raises:
            TrustBoundaryViolation: unknown agents, an invalid parent, widened scopes or too
                deep a chain.
        """
        wanted = frozenset(scopes)
        now = float(self._clock())
        with self._lock:
            for aid in (delegator, delegate):
                if aid not in self._agents:
                    raise TrustBoundaryViolation(f"Unknown agent '{aid}'")
            chain: tuple[str, ...] = ()
            expires = now + float(ttl_seconds)
            if parent is not None:
                problem = self._token_problem(parent, now)
                if problem is not None:
                    raise TrustBoundaryViolation(problem, chain_depth=parent.chain_depth)
                if parent.delegate != delegator:
                    raise TrustBoundaryViolation(
                        f"'{delegator}' is not the delegate of the parent token",
                        chain_depth=parent.chain_depth,
                    )
                if "*" not in parent.scopes and not wanted <= parent.scopes:
                    raise TrustBoundaryViolation(
                        f"Cannot widen delegated scopes: {sorted(wanted - parent.scopes)}",
                        chain_depth=parent.chain_depth,
                    )
                chain = (*parent.chain, parent.delegator)
                expires = min(expires, parent.expires_at)
            if len(chain) + 1 > self.max_chain_depth:
                raise TrustBoundaryViolation(
                    f"Delegation chain depth {len(chain) + 1} exceeds max {self.max_chain_depth}",
                    chain_depth=len(chain) + 1,
                )
            unsigned = DelegationToken(
                token_id=random_uuid4(),
                delegator=delegator,
                delegate=delegate,
                scopes=wanted,
                issued_at=now,
                expires_at=expires,
                chain=chain,
            )
            signature = self._ring.signing_keys().sign(unsigned.signed_text())
            return DelegationToken(**{**unsigned.__dict__, "signature": signature})

    def revoke_delegation(self, token_id: str) -> None:
        """Refuse this token from now on."""
        with self._lock:
            self._revoked.add(token_id)

    def _token_problem(self, token: object, now: float) -> str | None:
        if not isinstance(token, DelegationToken):
            return "Delegation is not a DelegationToken"
        try:
            text = token.signed_text()
        except (TypeError, ValueError):
            return "Delegation token is malformed"
        if self._ring.signing_keys().verify(text, f"{token.signature}") < 0:
            return "Delegation token signature is invalid"
        if token.token_id in self._revoked:
            return "Delegation token has been revoked"
        if token.is_expired(now):
            return "Delegation token has expired"
        return None

    def verify_delegation(self, token: DelegationToken) -> bool:
        """True for an authentic, unrevoked, unexpired token of acceptable depth."""
        with self._lock:
            return (
                self._token_problem(token, float(self._clock())) is None
                and token.chain_depth <= self.max_chain_depth
            )

    def check(
        self,
        from_agent: str,
        to_agent: str,
        action: str,
        delegation: DelegationToken | None = None,
    ) -> tuple[bool, str | None]:
        """``(allowed, reason)`` for ``from_agent`` doing ``action`` on ``to_agent``."""
        try:
            self.enforce(from_agent, to_agent, action, delegation)
        except TrustBoundaryViolation as exc:
            return False, exc.reason
        return True, None

    def enforce(
        self,
        from_agent: str,
        to_agent: str,
        action: str,
        delegation: DelegationToken | None = None,
    ) -> None:
        """Raise :class:`TrustBoundaryViolation` unless the interaction is allowed."""
        now = float(self._clock())
        with self._lock:
            src = self._agents.get(from_agent)
            dst = self._agents.get(to_agent)
            if src is None or dst is None:
                missing = from_agent if src is None else to_agent
                raise TrustBoundaryViolation(f"Unknown agent '{missing}'")
            fl, tl = src.trust_level, dst.trust_level
            rule = self._rules.get((fl, tl))
            if rule is None or not rule.allowed:
                raise TrustBoundaryViolation(
                    f"{fl.name} agents may not interact with {tl.name} agents",
                    from_level=fl,
                    to_level=tl,
                )
            if not rule.permits(action):
                raise TrustBoundaryViolation(
                    f"Action '{action}' is not allowed from {fl.name} to {tl.name}",
                    from_level=fl,
                    to_level=tl,
                )
            if not rule.require_delegation:
                return
            if delegation is None:
                raise TrustBoundaryViolation(
                    f"A delegation is required from {fl.name} to {tl.name}",
                    from_level=fl,
                    to_level=tl,
                )
            problem = self._token_problem(delegation, now)
            depth = delegation.chain_depth if problem is None else None
            if problem is None and delegation.delegate != from_agent:
                problem = "Delegation token was not issued to this agent"
            if problem is None:
                issuer = self._agents.get(delegation.delegator)
                origin_id = delegation.chain[0] if delegation.chain else delegation.delegator
                origin = self._agents.get(origin_id)
                if origin is None or issuer is None:
                    problem = "Delegation issuer is not registered"
                elif origin.trust_level > tl:
                    problem = "Delegation must originate in a zone trusted at least as the target"
            if problem is None and not ("*" in delegation.scopes or action in delegation.scopes):
                problem = f"Action '{action}' is not in the delegation"
            limit = min(rule.max_chain_depth, self.max_chain_depth)
            if problem is None and depth is not None and depth > limit:
                problem = f"Delegation chain depth {depth} exceeds max {rule.max_chain_depth}"
            if problem is not None:
                raise TrustBoundaryViolation(problem, chain_depth=depth, from_level=fl, to_level=tl)
