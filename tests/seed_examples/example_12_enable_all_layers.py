auth = Proxilion(
    enable_audit=True,
    enable_integrity=True,
    enable_rate_limiting=True
)
