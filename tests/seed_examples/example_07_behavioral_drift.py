from proxilion.security.behavioral_drift import BehavioralMonitor

monitor = BehavioralMonitor(
    agent_id="customer-service-agent",
    drift_threshold=3.0,  # 3 standard deviations = anomaly
)

# Record each action
monitor.record_tool_call(
    tool_name="send_email",
    latency_ms=50.0,
)

# Lock baseline after sufficient samples
monitor.lock_baseline()

# Check for drift
drift_result = monitor.check_drift()
if drift_result.is_drifting:
    print(f"Behavioral anomaly: {drift_result.reason}")
