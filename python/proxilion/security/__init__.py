"""Security controls (API.md section 7). Names are added here as their modules land."""

from __future__ import annotations

from proxilion.security.behavioral_drift import (
    BaselineStats,
    BehavioralMonitor,
    DriftDetector,
    DriftMetric,
    DriftResult,
)
from proxilion.security.kill_switch import KillSwitch

__all__ = [
    "BaselineStats",
    "BehavioralMonitor",
    "DriftDetector",
    "DriftMetric",
    "DriftResult",
    "KillSwitch",
]
