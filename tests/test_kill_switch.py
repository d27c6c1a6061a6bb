"""The local KillSwitch (API.md 8.5, seed example 8)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from proxilion.exceptions import EmergencyHaltError
from proxilion.security import KillSwitch


def test_seed_example_8_raises() -> None:
    kill_switch = KillSwitch()
    with pytest.raises(EmergencyHaltError) as ei:
        kill_switch.activate(
            reason="Severe behavioral drift detected",
            raise_exception=True,  # Halts all operations
        )
    e = ei.value
    assert (e.reason, e.triggered_by) == ("Severe behavioral drift detected", "system")
    assert str(e).startswith(
        "EMERGENCY HALT: Severe behavioral drift detected (triggered by: system)"
    )
    assert kill_switch.is_active is True


def test_halt_is_logged_with_reason_and_kept_in_history(caplog: pytest.LogCaptureFixture) -> None:
    ks = KillSwitch()
    with caplog.at_level(logging.CRITICAL, logger="proxilion.security.kill_switch"):
        ks.activate("runaway agent", triggered_by="ops", raise_exception=False)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.CRITICAL, "EMERGENCY HALT activated by ops: runaway agent")
    ]
    assert [(h.reason, h.triggered_by) for h in ks.history] == [("runaway agent", "ops")]
    assert ks.reason == "runaway agent" and ks.triggered_by == "ops"
    status = ks.get_status()
    assert status["active"] is True and status["reason"] == "runaway agent"
    assert status["activation_time"] is not None


def test_every_protected_check_fails_until_reset() -> None:
    ks = KillSwitch()
    ks.check()  # inactive: nothing
    ks.activate("stop", raise_exception=False)
    for _ in range(3):
        with pytest.raises(EmergencyHaltError) as ei:
            ks.check()
        assert ei.value.triggered_by == "kill_switch_check"
        assert ei.value.reason == "stop"
    assert ks.reset() is True
    assert ks.reset() is False
    ks.check()
    assert ks.get_status() == {"active": False, "reason": None, "activation_time": None}


def test_callbacks_run_and_their_errors_are_swallowed() -> None:
    ks = KillSwitch()
    halts: list[str] = []
    resets: list[int] = []

    def bad(_reason: str) -> None:
        raise RuntimeError("callback bug")

    ks.on_halt(bad)
    ks.on_halt(halts.append)
    ks.on_reset(lambda: resets.append(1))
    assert ks.deactivate() is False
    assert resets == [], "reset callbacks run only when the switch was active"
    ks.activate("r1", raise_exception=False)
    assert halts == ["r1"]
    assert ks.deactivate() is True
    assert resets == [1]
    with pytest.raises(TypeError, match="callback must be callable, not int"):
        ks.on_halt(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ks.on_reset("x")  # type: ignore[arg-type]


def test_auto_reset_with_injected_clock() -> None:
    t = [0.0]
    resets: list[int] = []
    ks = KillSwitch(auto_reset_seconds=10, clock=lambda: t[0])
    ks.on_reset(lambda: resets.append(1))
    ks.activate("temp", raise_exception=False)
    t[0] = 9.9
    assert ks.is_active
    t[0] = 10.0
    assert ks.is_active is False
    assert resets == [], "auto-reset does not call the reset callbacks (as the original)"


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_auto_reset_validation(bad: float) -> None:
    with pytest.raises(ValueError):
        KillSwitch(auto_reset_seconds=bad)


def test_reason_required() -> None:
    ks = KillSwitch()
    for bad in ("", "   "):
        with pytest.raises(ValueError, match="reason must be a non-empty string"):
            ks.activate(bad)
    assert ks.is_active is False


def test_wait_wakes_on_activation_from_another_thread() -> None:
    ks = KillSwitch()
    assert ks.wait(0.01) is False
    threading.Timer(0.01, lambda: ks.activate("later", raise_exception=False)).start()
    assert ks.wait(5.0) is True
    ks.reset()
    assert ks.wait(0) is False
    ks.close()  # no backend: no-op


class _FakeLink:
    """Stands in for RedisKillSwitchLink: records publishes, lets the test deliver state."""

    def __init__(self, backend: _FakeBackend, on_state: Any, generation: Any) -> None:
        self.backend = backend
        self.on_state = on_state
        self.generation = generation
        self.unavailable: str | None = None
        self.published: list[tuple[str, ...]] = []
        self.accept = True

    def due(self) -> bool:
        return False

    def publish_halt(self, reason: str, triggered_by: str, ttl: float | None) -> bool:
        self.published.append(("halt", reason, triggered_by))
        self.during_publish = self.generation()
        return self.accept

    def publish_reset(self) -> bool:
        self.published.append(("reset",))
        return self.accept

    def close(self) -> None:
        pass


class _FakeBackend:
    fail_open = False

    def kill_switch_link(self, name: str, on_state: Any, generation: Any) -> _FakeLink:
        self.link = _FakeLink(self, on_state, generation)
        return self.link


def _shared() -> tuple[KillSwitch, _FakeLink]:
    backend = _FakeBackend()
    ks = KillSwitch(backend=backend, name="t")  # type: ignore[arg-type]
    return ks, backend.link


def test_shared_state_stale_read_never_undoes_a_newer_halt() -> None:
    ks, link = _shared()
    before = link.generation()
    ks.activate("local", triggered_by="ops", raise_exception=False)
    assert link.published == [("halt", "local", "ops")]
    link.on_state(None, before)  # a read that started before the activation
    assert ks.is_active
    link.on_state(None, link.during_publish)  # ... or before the key was written
    assert ks.is_active
    # A fresh read saying "not halted" means another replica reset it: follow it.
    link.on_state(None, link.generation())
    assert not ks.is_active


def test_shared_halt_made_during_an_outage_is_republished() -> None:
    ks, link = _shared()
    link.accept = False
    ks.activate("during outage", raise_exception=False)
    link.accept = True
    link.on_state(None, link.generation())  # Redis is back and knows nothing of it
    assert ks.is_active
    assert link.published[-1] == ("halt", "during outage", "system")
    link.on_state(None, link.generation())  # now shared: a fresh "not halted" is a reset
    assert not ks.is_active


def test_shared_messages_halt_and_reset_with_callbacks(caplog: pytest.LogCaptureFixture) -> None:
    ks, link = _shared()
    halts: list[str] = []
    resets: list[int] = []
    ks.on_halt(halts.append)
    ks.on_reset(lambda: resets.append(1))
    with caplog.at_level(logging.WARNING, logger="proxilion.security.kill_switch"):
        link.on_state({"reason": "remote halt", "triggered_by": "replica-2"}, None)
        link.on_state({"reason": "remote halt", "triggered_by": "replica-2"}, None)  # dup
    assert ks.is_active and ks.reason == "remote halt" and ks.triggered_by == "replica-2"
    assert halts == ["remote halt"] and ks.wait(0)
    assert [h.reason for h in ks.history] == ["remote halt"]
    with pytest.raises(EmergencyHaltError, match="remote halt"):
        ks.check()
    link.on_state(None, None)  # reset message
    assert not ks.is_active and resets == [1]
    msgs = [r.getMessage() for r in caplog.records]
    assert "EMERGENCY HALT (shared switch 't') activated by replica-2: remote halt" in msgs
    assert "Kill switch 't' reset by another replica" in msgs
    # A local reset is broadcast.
    ks.reset()
    assert link.published[-1] == ("reset",)


def test_shared_switch_unreachable_fails_closed() -> None:
    ks, link = _shared()
    link.unavailable = "Redis at redis://127.0.0.1:1 unreachable: ConnectionError"
    assert ks.is_active is True
    with pytest.raises(EmergencyHaltError, match="kill switch state unknown, failing closed"):
        ks.check()
    link.backend.fail_open = True
    assert ks.is_active is False
