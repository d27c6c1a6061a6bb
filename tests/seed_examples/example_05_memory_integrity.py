from proxilion import ContextIntegrityError
from proxilion.security import MemoryIntegrityGuard

guard = MemoryIntegrityGuard(secret_key="your-256-bit-secret-key")

# Sign each message in conversation
msg1 = guard.sign_message("user", "Help me with Python")
msg2 = guard.sign_message("assistant", "Sure! What do you need?")

# Verify entire context is intact
result = guard.verify_context([msg1, msg2])
if not result.valid:
    raise ContextIntegrityError(
        f"Context tampering detected: {result.violations}"
    )
