"""Agent trust: registered agents with trust levels and capabilities, signed inter-agent
messages, delegation tokens and chains, revocation.

API.md section 8.1; seed example 3 ("Agent Trust Levels"). Messages are signed with
HMAC-SHA256 under a per-agent key derived from the manager's master key, over
``f"{message_id}|{from}|{to}|{action}|{json.dumps(payload, sort_keys=True)}|{timestamp}"``
(bytes identical to the original SDK). Agents registered with ``algorithm="ed25519"`` sign with
an Ed25519 private key instead, so a service that only knows their public key
(:meth:`AgentTrustManager.register_remote_agent`) can verify but never sign.

Differences from the original, on purpose (see ``docs/trust-and-integrity.md``):

* ``TrustLevel.NONE`` exists (the seed's name); ``UNTRUSTED`` is the same member. An agent at
  ``NONE`` has no capability at all, cannot send messages and cannot delegate.
* **Delegation tokens are verified when used**: in :meth:`AgentTrustManager.verify_message` a
  token must carry a valid signature by its issuer, be issued to the sender, be unrevoked and
  unexpired, and its issuer must still be registered and hold the capability. The original
  checked none of the signature, issuer or delegate there. Tokens also carry a ``seal`` that
  covers ``expires_at``, depth and constraints (``signature`` keeps the original's bytes).
* **Replay protection does not forget**: seen message ids are evicted oldest first, and any
  message not newer than the newest evicted one is rejected, so an evicted id cannot be
  replayed (the original dropped arbitrary ids once it held 10,000).
* Capability checks when delegating honour wildcards (``"x:*"`` covers ``"x:read"``).
* Keys: short keys warn instead of failing, binary keys work, keys rotate with a grace period
  (:meth:`AgentTrustManager.rotate_key`). Secrets never appear in ``repr`` or ``to_dict``.
"""

from __future__ import annotations

import hashlib
import hmac as _hmac
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from proxilion._backend import adopt_dataclass, impl
from proxilion._reference.agent_msg import AgentCredential as _DataclassCredential
from proxilion._reference.agent_msg import SignedMessage as _DataclassSignedMessage
from proxilion._reference.agent_msg import VerificationResult as _DataclassResult
from proxilion.exceptions import AgentTrustError, ConfigurationError
from proxilion.security._keys import KeyRing, random_uuid4

__all__ = [
    "AgentCredential",
    "AgentTrustManager",
    "DelegationChain",
    "DelegationToken",
    "SignedMessage",
    "TrustLevel",
    "VerificationResult",
]

logger = logging.getLogger("proxilion.security.agent_trust")

HMAC_SHA256 = "hmac-sha256"
ED25519 = "ed25519"
_TOKEN_SEAL_PREFIX = "proxilion-delegation-v2|"  # noqa: S105 - a domain tag, not a secret


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TrustLevel(IntEnum):
    """How far an agent is trusted; ordering is integer ordering.

    ``NONE`` (the seed's name) and ``UNTRUSTED`` (the original's) are the same member.
    """

    NONE = 0
    UNTRUSTED = 0
    MINIMAL = 1
    LIMITED = 2
    STANDARD = 3
    ELEVATED = 4
    FULL = 5
    SYSTEM = 6


def _capability_match(capabilities: set[str] | frozenset[str], capability: str) -> bool:
    if "*" in capabilities or capability in capabilities:
        return True
    return any(c.endswith(":*") and capability.startswith(c[:-1]) for c in capabilities)


#: The twin dataclass's methods the native ``AgentCredential`` takes over as they are.
_CREDENTIAL_METHODS = (
    "__init__",
    "__repr__",
    "__eq__",
    "__hash__",
    "is_expired",
    "has_capability",
    "can_delegate_to",
    "to_dict",
)

if TYPE_CHECKING:
    from proxilion._reference.agent_msg import AgentCredential as AgentCredential
else:
    # A registered agent (fields: agent_id, trust_level, capabilities, public_key,
    # parent_agent, created_at, expires_at, metadata, _secret, algorithm; methods is_expired,
    # has_capability, can_delegate_to, to_dict; ``_secret`` is never shown or serialised).
    # On the native backend a native class (fields in the object; its setters keep current
    # what the message fast paths read, so a mutated credential is never read stale) given
    # the twin dataclass's methods and metadata, as SignedMessage below.
    AgentCredential = impl.AgentCredential
    try:
        from proxilion import _core as _native

        adopt_dataclass(_native.AgentCredential, _DataclassCredential, _CREDENTIAL_METHODS)
    except ImportError:  # pragma: no cover - the extension is missing
        pass


@dataclass
class DelegationToken:
    """A signed grant of capabilities from one agent to another.

    ``signature`` has the original's bytes; ``seal`` (new) also covers ``expires_at``,
    ``chain_depth``, ``max_chain_depth`` and ``constraints``.
    """

    token_id: str
    issuer_agent: str
    delegate_agent: str
    granted_capabilities: set[str]
    issued_at: datetime
    expires_at: datetime
    signature: str
    chain_depth: int = 1
    max_chain_depth: int = 3
    constraints: dict[str, Any] = field(default_factory=dict)
    seal: str = ""

    def is_expired(self) -> bool:
        """True once ``expires_at`` has passed."""
        return _utcnow() > self.expires_at

    def is_valid(self) -> bool:
        """Unexpired and within its depth limit (signatures are checked by the manager)."""
        return not self.is_expired() and self.chain_depth <= self.max_chain_depth

    def signed_text(self) -> str:
        """The original's canonical form: id, issuer, delegate, sorted grants, issue time."""
        caps = sorted(self.granted_capabilities)
        return (
            f"{self.token_id}|{self.issuer_agent}|{self.delegate_agent}|{caps!s}|"
            f"{self.issued_at.isoformat()}"
        )

    def sealed_text(self) -> str:
        """Canonical form covering every field that matters."""
        constraints = impl.sorted_json(self.constraints or {}, True)
        return (
            f"{_TOKEN_SEAL_PREFIX}{self.signed_text()}|{self.expires_at.isoformat()}|"
            f"{self.chain_depth}|{self.max_chain_depth}|{constraints}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "token_id": self.token_id,
            "issuer_agent": self.issuer_agent,
            "delegate_agent": self.delegate_agent,
            "granted_capabilities": sorted(self.granted_capabilities),
            "issued_at": self.issued_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "signature": self.signature,
            "seal": self.seal,
            "chain_depth": self.chain_depth,
            "max_chain_depth": self.max_chain_depth,
            "constraints": self.constraints,
        }


#: The twin dataclass's methods the native ``SignedMessage`` takes over as they are.
_DATACLASS_METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "signed_text", "to_dict")

if TYPE_CHECKING:
    from proxilion._reference.agent_msg import SignedMessage as SignedMessage
else:
    # The dataclass of API.md 8.4 (fields: message_id, from_agent, to_agent, action, payload,
    # timestamp, signature, delegation_token, reply_to, metadata; methods signed_text and
    # to_dict). On the native backend it is a native class (its fields live in the object:
    # much cheaper to build and to verify) given this dataclass's methods and metadata, so it
    # behaves as the dataclass; see rust/python/src/agent_msg.rs.
    SignedMessage = impl.AgentSignedMessage
    try:  # complete the native class even when the reference backend is active
        from proxilion import _core as _native

        adopt_dataclass(_native.AgentSignedMessage, _DataclassSignedMessage, _DATACLASS_METHODS)
    except ImportError:  # pragma: no cover - the extension is missing
        pass


#: The twin dataclass's methods the native ``VerificationResult`` takes over as they are.
_RESULT_METHODS = ("__init__", "__repr__", "__eq__", "__hash__", "to_dict")

if TYPE_CHECKING:
    from proxilion._reference.agent_msg import VerificationResult as VerificationResult
else:
    # The outcome of a message or chain verification (fields: valid, error, warnings,
    # verified_at). On the native backend a native class given the twin dataclass's methods
    # and metadata, as SignedMessage above; results of verify_message make ``warnings`` and
    # the ``verified_at`` datetime only when they are read.
    VerificationResult = impl.AgentVerificationResult
    try:
        from proxilion import _core as _native

        adopt_dataclass(_native.AgentVerificationResult, _DataclassResult, _RESULT_METHODS)
    except ImportError:  # pragma: no cover - the extension is missing
        pass


def _result(
    valid: bool, error: str | None = None, warnings: list[str] | None = None
) -> VerificationResult:
    """A :class:`VerificationResult` stamped now, without its ``__init__`` (whose
    ``datetime.now`` costs more than the whole check): ``verified_at`` is made when read."""
    return impl.agent_result(valid, error, warnings)  # type: ignore[no-any-return]


class DelegationChain:
    """An ordered chain of delegation tokens (issuer of each = delegate of the previous)."""

    def __init__(self, max_depth: int = 3) -> None:
        self.max_depth = max_depth
        self._tokens: list[DelegationToken] = []

    def add(self, token: DelegationToken) -> bool:
        """Append a token; False once the chain holds ``max_depth`` tokens."""
        if len(self._tokens) >= self.max_depth:
            return False
        self._tokens.append(token)
        return True

    @property
    def depth(self) -> int:
        """Number of tokens."""
        return len(self._tokens)

    @property
    def tokens(self) -> list[DelegationToken]:
        """A copy of the tokens."""
        return list(self._tokens)

    def validate(self) -> tuple[bool, str | None]:
        """Depth, expiry, validity and linkage (signatures: ``verify_delegation_chain``)."""
        if len(self._tokens) > self.max_depth:
            return False, f"Chain depth {len(self._tokens)} exceeds max {self.max_depth}"
        for i, tok in enumerate(self._tokens):
            if tok.is_expired():
                return False, f"Token at position {i} has expired"
            if not tok.is_valid():
                return False, f"Token at position {i} is invalid"
            if i > 0:
                prev = self._tokens[i - 1]
                if prev.delegate_agent != tok.issuer_agent:
                    return (
                        False,
                        f"Chain break at position {i}: {prev.delegate_agent} != {tok.issuer_agent}",
                    )
        return True, None

    def get_effective_capabilities(self) -> set[str]:
        """Intersection of the grants (a ``{"*"}`` grant narrows nothing); empty if no token."""
        result: set[str] | None = None
        for tok in self._tokens:
            if "*" in tok.granted_capabilities:
                continue
            grants = set(tok.granted_capabilities)
            result = grants if result is None else result & grants
        if result is None:
            return {"*"} if self._tokens else set()
        return result


def _load_ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "Ed25519 signing needs the 'cryptography' package (pip install proxilion[crypto])"
        ) from exc
    return ed25519


class AgentTrustManager:
    """Registers agents, signs and verifies their messages, issues and checks delegations.

    Args:
        secret_key: master key (``str``/``bytes``, or a :class:`~proxilion.security._keys.KeyRing`);
            per-agent HMAC keys are derived from it.
        default_token_ttl: delegation lifetime in seconds when none is given.
        max_delegation_depth: longest delegation chain accepted.
        require_explicit_trust: reject messages from/to unregistered agents (default). With
            False, an unknown sender only draws a warning and its signature is not checked
            (the original's behaviour; an explicit opt-out).
        clock: wall clock in seconds (injectable for tests).
        replay_cache_size: how many recent message ids are remembered (>= 1).

    Thread-safe: one reentrant lock (``_lock``; on the native backend an ``AgentLock``, which
    the native message paths take without a Python call) guards the registry and replay state.
    """

    def __init__(
        self,
        secret_key: str | bytes | KeyRing,
        default_token_ttl: int = 3600,
        max_delegation_depth: int = 3,
        require_explicit_trust: bool = True,
        *,
        clock: Callable[[], float] = time.time,
        replay_cache_size: int = 10000,
    ) -> None:
        self._ring = (
            secret_key
            if isinstance(secret_key, KeyRing)
            else KeyRing(secret_key, clock=clock, _stacklevel=2)
        )
        for name, value in (
            ("default_token_ttl", default_token_ttl),
            ("max_delegation_depth", max_delegation_depth),
            ("replay_cache_size", replay_cache_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be an int >= 1", received=value)
        self.default_token_ttl = default_token_ttl
        self.max_delegation_depth = max_delegation_depth
        self.require_explicit_trust = require_explicit_trust
        self.replay_cache_size = replay_cache_size
        self._clock = clock
        # Reentrant; natively one the message fast paths take without a Python call.
        self._lock = impl.AgentLock()
        self._agents: dict[str, AgentCredential] = {}
        self._agent_keys: dict[str, tuple[int, Any]] = {}
        self._ed_private: dict[str, Any] = {}
        self._ed_public: dict[str, Any] = {}
        self._tokens: dict[str, DelegationToken] = {}
        self._revoked: set[str] = set()
        self._seen: dict[str, float] = {}
        self._replay_floor = -math.inf
        # The message paths, natively: unless a subclass overrides them, the instance's
        # ``create_signed_message`` and ``verify_message`` are the native object's own
        # methods (one native call per message; anything but the common case comes back to
        # ``_create_signed_message`` / ``_verify_message``).
        self._messages = impl.AgentMessages(self, AgentCredential)
        cls = type(self)
        if cls.create_signed_message is AgentTrustManager.create_signed_message:
            self.__dict__["create_signed_message"] = self._messages.sign
        if cls.verify_message is AgentTrustManager.verify_message:
            self.__dict__["verify_message"] = self._messages.verify

    def __repr__(self) -> str:
        return f"AgentTrustManager(agents={len(self._agents)}, keys={self._ring!r})"

    @property
    def key_ring(self) -> KeyRing:
        """The master keys (ids only are shown)."""
        return self._ring

    def rotate_key(
        self, new_key: str | bytes, *, key_id: str | None = None, grace_seconds: float = 3600.0
    ) -> str:
        """New master key; messages signed under the old one verify for ``grace_seconds``."""
        return self._ring.rotate(new_key, key_id=key_id, grace_seconds=grace_seconds)

    # -- keys ----------------------------------------------------------------------------

    @staticmethod
    def _derive(master: bytes, agent_id: str) -> str:
        return _hmac.new(master, b"agent:" + agent_id.encode(), hashlib.sha256).hexdigest()

    def _hmac_keys(self, agent_id: str) -> Any:
        cached = self._agent_keys.get(agent_id)
        if cached is not None and cached[0] == self._ring.generation:
            return cached[1]
        gen = self._ring.generation
        keys = impl.SigningKeys([self._derive(k, agent_id) for _, k in self._ring.active_keys()])
        self._agent_keys[agent_id] = (gen, keys)
        return keys

    def _sign(self, cred: AgentCredential, texts: list[str]) -> list[str]:
        if cred.algorithm == ED25519:
            private = self._ed_private.get(cred.agent_id)
            if private is None:
                raise AgentTrustError(
                    cred.agent_id, "", "No signing key for this agent (verify-only Ed25519 agent)"
                )
            return [private.sign(t.encode()).hex() for t in texts]
        return list(self._hmac_keys(cred.agent_id).sign_many(texts))

    def _verify(self, cred: AgentCredential, text: str, signature: object) -> bool:
        try:
            data = text.encode()
        except UnicodeEncodeError:
            return False
        if not isinstance(signature, str):
            return False
        if cred.algorithm == ED25519:
            public = self._ed_public.get(cred.agent_id)
            if public is None:
                return False
            try:
                public.verify(bytes.fromhex(signature), data)
            except Exception:  # InvalidSignature, bad hex or length: all mean "not valid"
                return False
            return True
        return bool(self._hmac_keys(cred.agent_id).verify(data, signature) >= 0)

    def _verify_message_signature(self, cred: AgentCredential, message: SignedMessage) -> bool:
        """Whether ``message.signature`` authenticates the message's canonical text."""
        try:
            if cred.algorithm == ED25519:
                return self._verify(cred, message.signed_text(), message.signature)
            found: int = self._hmac_keys(cred.agent_id).agent_verify(
                message.message_id,
                message.from_agent,
                message.to_agent,
                message.action,
                message.payload,
                message.timestamp,
                message.signature,
            )
        except (TypeError, ValueError):
            return False
        return found >= 0

    # -- agents --------------------------------------------------------------------------

    def register_agent(
        self,
        agent_id: str,
        trust_level: TrustLevel | int,
        capabilities: set[str] | list[str],
        parent_agent: str | None = None,
        ttl_seconds: float | None = None,
        metadata: dict[str, Any] | None = None,
        *,
        algorithm: str = HMAC_SHA256,
    ) -> AgentCredential:
        """Register an agent. ``algorithm="ed25519"`` gives it an Ed25519 key pair (its public
        key, hex, is ``credential.public_key``; share it with :meth:`export_public_key`)."""
        return self._register(
            agent_id, trust_level, capabilities, parent_agent, ttl_seconds, metadata, algorithm
        )

    def register_remote_agent(
        self,
        agent_id: str,
        trust_level: TrustLevel | int,
        capabilities: set[str] | list[str],
        public_key: str | bytes,
        parent_agent: str | None = None,
        ttl_seconds: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> AgentCredential:
        """Register an agent of another service by its Ed25519 public key (32 bytes or 64
        hex characters). Its messages can be verified here; nothing here can sign for it."""
        ed = _load_ed25519()
        try:
            raw = bytes.fromhex(public_key) if isinstance(public_key, str) else bytes(public_key)
            public = ed.Ed25519PublicKey.from_public_bytes(raw)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                "public_key must be an Ed25519 public key (32 bytes or 64 hex characters)"
            ) from exc
        return self._register(
            agent_id,
            trust_level,
            capabilities,
            parent_agent,
            ttl_seconds,
            metadata,
            ED25519,
            public=public,
        )

    def _register(
        self,
        agent_id: str,
        trust_level: TrustLevel | int,
        capabilities: set[str] | list[str],
        parent_agent: str | None,
        ttl_seconds: float | None,
        metadata: dict[str, Any] | None,
        algorithm: str,
        public: Any = None,
    ) -> AgentCredential:
        if not isinstance(agent_id, str) or not agent_id:
            raise TypeError("agent_id must be a non-empty str")
        level = TrustLevel(trust_level)
        given: object = capabilities
        if isinstance(given, str):
            raise TypeError("capabilities must be a set or list of str, not a single str")
        caps = set(capabilities)
        if algorithm not in (HMAC_SHA256, ED25519):
            raise ConfigurationError(
                "algorithm must be 'hmac-sha256' or 'ed25519'", received=algorithm
            )
        with self._lock:
            if agent_id in self._agents:
                raise AgentTrustError(agent_id, "", f"Agent '{agent_id}' is already registered")
            if parent_agent is not None:
                parent = self._agents.get(parent_agent)
                if parent is None:
                    raise AgentTrustError(
                        agent_id, parent_agent, f"Parent agent '{parent_agent}' not found"
                    )
                if not parent.trust_level > level:
                    raise AgentTrustError(
                        agent_id,
                        parent_agent,
                        "Child agent cannot have equal or higher trust than parent",
                    )
            secret = self._derive(self._ring.current_key(), agent_id)
            if algorithm == ED25519:
                ed = _load_ed25519()
                if public is None:
                    private = ed.Ed25519PrivateKey.generate()
                    self._ed_private[agent_id] = private
                    public = private.public_key()
                self._ed_public[agent_id] = public
                from cryptography.hazmat.primitives import serialization

                public_hex = public.public_bytes(
                    serialization.Encoding.Raw, serialization.PublicFormat.Raw
                ).hex()
                secret = ""
            else:
                public_hex = hashlib.sha256(secret.encode()).hexdigest()[:32]
            now = _utcnow()
            cred = AgentCredential(
                agent_id=agent_id,
                trust_level=level,
                capabilities=caps,
                public_key=public_hex,
                parent_agent=parent_agent,
                created_at=now,
                expires_at=now + timedelta(seconds=ttl_seconds) if ttl_seconds else None,
                metadata=dict(metadata or {}),
                _secret=secret,
                algorithm=algorithm,
            )
            self._agents[agent_id] = cred
            return cred

    def export_public_key(self, agent_id: str) -> str:
        """Hex Ed25519 public key of an Ed25519 agent (for :meth:`register_remote_agent`)."""
        with self._lock:
            cred = self._agents.get(agent_id)
            if cred is None or cred.algorithm != ED25519:
                raise AgentTrustError(agent_id, "", "Agent is not a registered Ed25519 agent")
            return cred.public_key

    def unregister_agent(self, agent_id: str) -> bool:
        """Remove an agent and revoke every token issued by or to it."""
        with self._lock:
            if self._agents.pop(agent_id, None) is None:
                return False
            self._agent_keys.pop(agent_id, None)
            self._ed_private.pop(agent_id, None)
            self._ed_public.pop(agent_id, None)
            for tid, tok in list(self._tokens.items()):
                if agent_id in (tok.issuer_agent, tok.delegate_agent):
                    self._revoked.add(tid)
                    del self._tokens[tid]
            return True

    def get_agent(self, agent_id: str) -> AgentCredential | None:
        """The agent's credential, or None."""
        with self._lock:
            return self._agents.get(agent_id)

    def get_registered_agents(self) -> list[str]:
        """Ids of all registered agents."""
        with self._lock:
            return list(self._agents)

    def get_trust_level(self, agent_id: str) -> TrustLevel | None:
        """The agent's trust level, or None."""
        with self._lock:
            cred = self._agents.get(agent_id)
            return cred.trust_level if cred else None

    # -- delegation ----------------------------------------------------------------------

    def create_delegation(
        self,
        from_agent: str,
        to_agent: str,
        capabilities: set[str] | list[str],
        ttl_seconds: float | None = None,
        constraints: dict[str, Any] | None = None,
    ) -> DelegationToken:
        """Issue a signed delegation of ``capabilities`` from ``from_agent`` to ``to_agent``."""
        caps = set(capabilities)
        with self._lock:
            issuer = self._agents.get(from_agent)
            if issuer is None:
                raise AgentTrustError(
                    from_agent, to_agent, f"Issuer agent '{from_agent}' not found"
                )
            delegate = self._agents.get(to_agent)
            if delegate is None:
                raise AgentTrustError(
                    from_agent, to_agent, f"Delegate agent '{to_agent}' not found"
                )
            if issuer.is_expired():
                raise AgentTrustError(from_agent, to_agent, "Issuer credential has expired")
            if not issuer.can_delegate_to(delegate):
                raise AgentTrustError(
                    from_agent, to_agent, f"Agent '{from_agent}' cannot delegate to '{to_agent}'"
                )
            if "*" not in issuer.capabilities:
                missing = {c for c in caps if not issuer.has_capability(c)}
                if missing:
                    raise AgentTrustError(
                        from_agent,
                        to_agent,
                        f"Cannot delegate capabilities not owned: {missing}",
                    )
            issued = _utcnow()
            token = DelegationToken(
                token_id=random_uuid4(),
                issuer_agent=from_agent,
                delegate_agent=to_agent,
                granted_capabilities=caps,
                issued_at=issued,
                expires_at=issued + timedelta(seconds=ttl_seconds or self.default_token_ttl),
                signature="",
                chain_depth=1,
                max_chain_depth=self.max_delegation_depth,
                constraints=dict(constraints or {}),
            )
            token.signature, token.seal = self._sign(
                issuer, [token.signed_text(), token.sealed_text()]
            )
            self._tokens[token.token_id] = token
            return token

    def revoke_delegation(self, token_id: str) -> bool:
        """Revoke a token; False if this manager never issued it."""
        with self._lock:
            if token_id not in self._tokens:
                return False
            self._revoked.add(token_id)
            return True

    def _check_token(self, token: DelegationToken) -> str | None:
        """Why a token is not authentic (revocation and expiry are checked by callers)."""
        issuer = self._agents.get(token.issuer_agent)
        if issuer is None:
            return f"Issuer {token.issuer_agent} not found"
        try:
            signed, sealed = token.signed_text(), token.sealed_text()
        except (TypeError, ValueError, AttributeError):
            return f"Invalid signature on token {token.token_id}"
        if not (
            self._verify(issuer, signed, token.signature)
            and self._verify(issuer, sealed, token.seal)
        ):
            return f"Invalid signature on token {token.token_id}"
        return None

    def verify_delegation_chain(self, chain: DelegationChain) -> VerificationResult:
        """Validate a chain: depth, expiry, linkage, revocation, issuers and signatures."""
        ok, error = chain.validate()
        if not ok:
            return VerificationResult(valid=False, error=error)
        with self._lock:
            for token in chain.tokens:
                if token.token_id in self._revoked:
                    return VerificationResult(
                        valid=False, error=f"Token {token.token_id} has been revoked"
                    )
                problem = self._check_token(token)
                if problem is not None:
                    return VerificationResult(valid=False, error=problem)
                if token.chain_depth > self.max_delegation_depth:
                    return VerificationResult(
                        valid=False, error=f"Token {token.token_id} exceeds the depth limit"
                    )
        return VerificationResult(valid=True)

    # -- messages ------------------------------------------------------------------------

    def create_signed_message(
        self,
        from_agent: str,
        to_agent: str,
        action: str,
        payload: dict[str, Any],
        delegation_token: DelegationToken | None = None,
        reply_to: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> SignedMessage:
        """Sign a message from a registered agent (trust above ``NONE``, unexpired).

        Raises:
            AgentTrustError: unknown sender, expired credential, trust ``NONE``, or an
                Ed25519 agent known only by its public key.
            TypeError / ValueError: the payload is not JSON-serialisable, or a part of the
                message is not encodable text.
        """
        return self._messages.sign(  # type: ignore[no-any-return]
            from_agent, to_agent, action, payload, delegation_token, reply_to, metadata
        )

    def _create_signed_message(
        self,
        from_agent: str,
        to_agent: str,
        action: str,
        payload: dict[str, Any],
        delegation_token: DelegationToken | None,
        reply_to: str | None,
        metadata: dict[str, Any] | None,
    ) -> SignedMessage:
        """The general path of :meth:`create_signed_message` (every sender, every error)."""
        # No lock: one dict read, and the per-agent key cache tolerates races (a stale
        # entry is detected by its key-ring generation).
        sender = self._agents.get(from_agent)
        if sender is None:
            raise AgentTrustError(from_agent, to_agent, f"Unknown sender: {from_agent}")
        expires = sender.expires_at
        if expires is not None and _utcnow() > expires:
            raise AgentTrustError(from_agent, to_agent, "Sender credential has expired")
        if sender.trust_level == 0:  # TrustLevel.NONE
            raise AgentTrustError(
                from_agent, to_agent, "Sender has NONE trust level: all actions are denied"
            )
        timestamp = float(self._clock())
        if sender.algorithm != ED25519:
            cached = self._agent_keys.get(from_agent)
            keys = (
                cached[1]
                if cached is not None and cached[0] == self._ring.generation
                else self._hmac_keys(from_agent)
            )
            # One native call builds the canonical text (the same bytes as signed_text())
            # and MACs it. The dataclass is built with positional arguments: on CPython 3.11+
            # its __init__ (specialised attribute stores) is as fast as building the
            # instance natively, which was measured and dropped.
            mid = random_uuid4()
            return SignedMessage(
                mid,
                from_agent,
                to_agent,
                action,
                payload,
                timestamp,
                keys.agent_sign(mid, from_agent, to_agent, action, payload, timestamp),
                delegation_token,
                reply_to,
                dict(metadata) if metadata else {},
            )
        message = SignedMessage(
            message_id=random_uuid4(),
            from_agent=from_agent,
            to_agent=to_agent,
            action=action,
            payload=payload,
            timestamp=timestamp,
            signature="",
            delegation_token=delegation_token,
            reply_to=reply_to,
            metadata=dict(metadata or {}),
        )
        with self._lock:
            message.signature = self._sign(sender, [message.signed_text()])[0]
        return message

    def verify_message(
        self, message: SignedMessage, check_replay: bool = True, max_age_seconds: float = 300.0
    ) -> VerificationResult:
        """Verify a message; the first failed check gives ``valid=False`` and its ``error``.

        Order: replay, age, sender, sender expiry, signature, receiver, sender trust, then
        capability (own, or through a verified delegation token).
        """
        return self._messages.verify(  # type: ignore[no-any-return]
            message, check_replay, max_age_seconds
        )

    def _verify_message(
        self, message: SignedMessage, check_replay: bool, max_age_seconds: float, now: float
    ) -> VerificationResult:
        """The general path of :meth:`verify_message` (every check, every error), at the
        clock reading ``now``."""
        warnings: list[str] = []
        with self._lock:
            mid = message.message_id
            ts = message.timestamp
            if type(ts) is float:
                if ts - ts != 0.0:  # NaN or infinite
                    return _result(False, "Invalid message timestamp")
            elif isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
                return _result(False, "Invalid message timestamp")
            if check_replay and (mid in self._seen or ts <= self._replay_floor):
                return _result(False, "Replay attack detected: message already processed")
            age = now - ts
            if age > max_age_seconds:
                return _result(False, f"Message too old: {age:.1f}s > {max_age_seconds}s")
            if age < -60:
                return _result(False, "Message timestamp in the future")
            sender = self._agents.get(message.from_agent)
            if sender is None:
                if self.require_explicit_trust:
                    return _result(False, f"Unknown sender: {message.from_agent}")
                warnings.append(f"Sender {message.from_agent} not registered")
            else:
                expires = sender.expires_at
                if expires is not None and _utcnow() > expires:
                    return _result(False, "Sender credential has expired")
                cached = self._agent_keys.get(sender.agent_id)
                if (
                    cached is not None
                    and sender.algorithm == HMAC_SHA256
                    and cached[0] == self._ring.generation
                ):
                    # The common case inlined: cached per-agent keys, one native call.
                    try:
                        good = (
                            cached[1].agent_verify(
                                mid,
                                message.from_agent,
                                message.to_agent,
                                message.action,
                                message.payload,
                                ts,
                                message.signature,
                            )
                            >= 0
                        )
                    except (TypeError, ValueError):
                        good = False
                else:
                    good = self._verify_message_signature(sender, message)
                if not good:
                    return _result(False, "Invalid signature")
            if self.require_explicit_trust and message.to_agent not in self._agents:
                return _result(False, f"Unknown receiver: {message.to_agent}")
            if sender is not None:
                if sender.trust_level == 0:  # TrustLevel.NONE
                    return _result(False, "Sender has UNTRUSTED trust level")
                action = message.action
                caps = sender.capabilities
                if not ("*" in caps or action in caps or _capability_match(caps, action)):
                    error = self._delegated(message)
                    if error is not None:
                        return _result(False, error)
            if check_replay:
                seen = self._seen
                seen[mid] = ts
                if len(seen) > self.replay_cache_size:
                    self._evict_seen(now, max_age_seconds)
            return _result(True, None, warnings)

    def _delegated(self, message: SignedMessage) -> str | None:
        action = message.action
        token = message.delegation_token
        if token is None:
            return f"Sender lacks capability for action '{action}'"
        if token.token_id in self._revoked:
            return "Delegation token has been revoked"
        if token.is_expired():
            return "Delegation token has expired"
        problem = self._check_token(token)
        if problem is not None:
            return problem
        if token.delegate_agent != message.from_agent:
            return "Delegation token was not issued to the sender"
        if token.chain_depth > min(token.max_chain_depth, self.max_delegation_depth):
            return "Delegation token exceeds the depth limit"
        issuer = self._agents[token.issuer_agent]
        if issuer.is_expired() or not issuer.has_capability(action):
            return f"Delegation issuer can no longer grant action '{action}'"
        if not _capability_match(token.granted_capabilities, action):
            return f"Action '{action}' not in delegation"
        return None

    def _evict_seen(self, now: float, max_age: float) -> None:
        # Ids older than the age limit would be refused anyway: drop them first.
        horizon = now - max_age
        for old in [k for k, t in self._seen.items() if t < horizon]:
            del self._seen[old]
        if len(self._seen) > self.replay_cache_size:
            # Still full: drop the oldest half and refuse anything not newer than them.
            ordered = sorted(self._seen.items(), key=lambda kv: kv[1])
            cut = ordered[: len(ordered) // 2]
            for k, _ in cut:
                del self._seen[k]
            self._replay_floor = max(self._replay_floor, cut[-1][1])
        self._replay_floor = max(self._replay_floor, horizon)

    def cleanup_expired(self) -> int:
        """Remove expired agents and tokens; returns how many were removed."""
        removed = 0
        with self._lock:
            for aid in [a for a, c in self._agents.items() if c.is_expired()]:
                self.unregister_agent(aid)
                removed += 1
            for tid in [t for t, tok in self._tokens.items() if tok.is_expired()]:
                del self._tokens[tid]
                removed += 1
            return removed
