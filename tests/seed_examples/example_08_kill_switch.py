from proxilion import EmergencyHaltError
from proxilion.security.behavioral_drift import KillSwitch

kill_switch = KillSwitch()

# Activate kill switch when needed
kill_switch.activate(
    reason="Severe behavioral drift detected",
    raise_exception=True,  # Halts all operations
)
