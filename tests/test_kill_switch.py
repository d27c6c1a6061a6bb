"""The local KillSwitch (API.md 8.5, seed example 8)."""

from __future__ import annotations

import logging
import threading

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
