from proxilion import AuthorizationError
from proxilion.security import IDORProtector

protector = IDORProtector()

# Register what each user can access
protector.register_scope("user_123", "document", {"doc_1", "doc_2"})
protector.register_scope("admin_456", "document", {"doc_1", "doc_2", "doc_3"})

# Validate before tool execution
if not protector.validate_access("user_123", "document", "doc_3"):
    raise AuthorizationError("Access denied")
