from proxilion.security import AgentTrustManager, AgentTrustLevel

trust_manager = AgentTrustManager(secret_key="your-secret-key")

# Register agent with capabilities
trust_manager.register_agent(
    agent_id="research-agent",
    trust_level=AgentTrustLevel.LIMITED,
    capabilities=["web:search", "file:read"],
    # Cannot: file:write, db:execute, api:call
)
