from proxilion.guards.input_guard import InputGuard, InjectionPattern

guard = InputGuard()

# SQL Injection prevention
guard.add_pattern(InjectionPattern(
    name="sql_injection",
    pattern=r"(\bUNION\b.*\bSELECT\b|\bDROP\b|\bDELETE\b|\b--\b|;\s*$)",
    severity=1.0,
    description="SQL injection attempt detected"
))

# Command injection prevention
guard.add_pattern(InjectionPattern(
    name="command_injection",
    pattern=r"(;\s*|\||\$\(|`|&&|\|\|)",
    severity=1.0,
    description="Command injection attempt detected"
))

# Path traversal prevention
guard.add_pattern(InjectionPattern(
    name="path_traversal",
    pattern=r"(\.\.\/|\.\.\\|%2e%2e|%252e)",
    severity=0.8,
    description="Path traversal attempt detected"
))
