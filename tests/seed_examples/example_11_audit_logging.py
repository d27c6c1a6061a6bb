from proxilion.audit import AuditLogger, LoggerConfig

config = LoggerConfig.default("./logs/audit.jsonl")
logger = AuditLogger(config)

# Automatic logging of all authorization decisions
# Each entry contains:
# - Timestamp (ISO 8601)
# - User/Agent context
# - Tool call details
# - Decision and reason
# - Previous hash (chain integrity)
# - Current hash
