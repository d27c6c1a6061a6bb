# Verify integrity of audit log
result = logger.verify()
if result.valid:
    print("Audit log integrity verified")
else:
    print(f"Audit log tampering detected: {result.error}")
