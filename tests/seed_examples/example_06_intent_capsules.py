from proxilion.security import IntentCapsule, IntentGuard

# Create capsule with original intent
capsule = IntentCapsule.create(
    user_id="alice",
    intent="Summarize Q3 sales data",
    secret_key="your-secret-key",
    allowed_tools=["database_query", "chart_generator"],
)

# Guard validates tool calls against original intent
guard = IntentGuard(capsule, "your-secret-key")

# Valid - matches allowed tools
assert guard.validate_tool_call("database_query", {"table": "sales"})

# Blocked - not in allowed tools
assert not guard.validate_tool_call("delete_table", {"table": "users"})
