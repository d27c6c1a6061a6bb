"""The seed's examples run as written (tests/seed_examples/), and the properties the seed
states next to them hold."""

from __future__ import annotations

import datetime as datetime_module
import runpy
from pathlib import Path
from typing import Any

import pytest

from audit_view import audit_events
from proxilion import AuthorizationError, Policy, Proxilion, UserContext

# End-to-end through the public API: run on both hot-path backends.
pytestmark = pytest.mark.backend

EXAMPLES = Path(__file__).parent / "seed_examples"


def run_example(name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / name), init_globals=namespace or {})


def freeze_hour(monkeypatch: pytest.MonkeyPatch, hour: int) -> None:
    """The seed's policy does ``from datetime import datetime`` inside the method: replace
    the class on the datetime module for the duration of the test."""

    class FrozenDatetime(datetime_module.datetime):
        @classmethod
        def now(cls, tz: Any = None) -> FrozenDatetime:  # type: ignore[override]
            return cls(2025, 3, 4, hour, 30, tzinfo=tz)

    monkeypatch.setattr(datetime_module, "datetime", FrozenDatetime)


ANALYST = UserContext(
    "ana", ["security_analyst"], attributes={"permissions": ["data:sensitive:read"]}
)


@pytest.fixture
def example2() -> dict[str, Any]:
    ns = run_example("example_02_authorization.py")
    assert isinstance(ns["auth"], Proxilion)
    return ns


@pytest.mark.parametrize(
    ("hour", "allowed"), [(8, False), (9, True), (13, True), (17, True), (18, False), (23, False)]
)
def test_example_2_business_hours(
    example2: dict[str, Any], monkeypatch: pytest.MonkeyPatch, hour: int, allowed: bool
) -> None:
    freeze_hour(monkeypatch, hour)
    auth: Proxilion = example2["auth"]
    result = auth.check(ANALYST, "read", "sensitive_data")
    assert result.allowed is allowed
    assert result.reason == f"Policy SensitiveDataPolicy.can_read returned {allowed}"
    assert result.policies_evaluated == ["SensitiveDataPolicy"]


@pytest.mark.parametrize(
    "user",
    [
        UserContext("a", ["security_analyst"]),  # no permission
        UserContext("b", ["viewer"], attributes={"permissions": ["data:sensitive:read"]}),  # role
    ],
)
def test_example_2_requires_permission_and_role(
    example2: dict[str, Any], monkeypatch: pytest.MonkeyPatch, user: UserContext
) -> None:
    freeze_hour(monkeypatch, 10)
    assert example2["auth"].check(user, "read", "sensitive_data").allowed is False


def test_example_2_real_clock(example2: dict[str, Any]) -> None:
    hour = datetime_module.datetime.now().hour
    assert example2["auth"].can(ANALYST, "read", "sensitive_data") is (9 <= hour <= 17)


def test_example_2_decisions_through_the_decorator_are_logged(
    example2: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    freeze_hour(monkeypatch, 10)
    auth: Proxilion = example2["auth"]
    assert example2["SensitiveDataPolicy"].get_resource_name() == "sensitive_data"

    @auth.authorize("read", resource="sensitive_data")
    def read_sensitive(record_id: str, user: UserContext | None = None) -> str:
        return record_id

    assert read_sensitive(record_id="r1", user=ANALYST) == "r1"
    with pytest.raises(AuthorizationError):
        read_sensitive(record_id="r1", user=UserContext("eve"))
    with pytest.raises(AuthorizationError):  # other actions: deny by default
        auth.authorize_or_raise(ANALYST, "write", "sensitive_data")
    assert [(e.user_id, e.allowed) for e in audit_events(auth)] == [
        ("ana", True),
        ("eve", False),
    ]


def test_example_12_enable_all_layers() -> None:
    ns = run_example("example_12_enable_all_layers.py", {"Proxilion": Proxilion})
    auth: Proxilion = ns["auth"]
    assert auth.enable_integrity is True
    assert auth.rate_limit_config is not None
    assert auth.audit_logger is not None


def test_example_13_deny_by_default(example2: dict[str, Any]) -> None:
    ns = run_example("example_13_deny_by_default.py", {"auth": example2["auth"], "Policy": Policy})
    auth: Proxilion = ns["auth"]
    user = UserContext("u", ["admin"])
    r = auth.check(user, "read", "default")
    assert (r.allowed, r.reason) == (False, "Policy DefaultPolicy.can_read returned False")
    # deny by default holds for resources without a policy anyway
    r2 = auth.check(user, "read", "never_registered")
    assert (r2.allowed, r2.reason) == (False, "Policy DenyAllPolicy denied action 'read'")
    assert (
        auth.check(user, "write", "default").reason == "Policy DenyAllPolicy denied action 'write'"
    )
