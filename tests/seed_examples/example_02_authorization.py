from proxilion import Proxilion, Policy, UserContext

auth = Proxilion()


@auth.policy("sensitive_data")
class SensitiveDataPolicy(Policy):
    """Multi-factor authorization for sensitive operations."""

    def can_read(self, context) -> bool:
        # Require explicit permission
        if "data:sensitive:read" not in self.user.attributes.get("permissions", []):
            return False

        # Require specific role
        if "security_analyst" not in self.user.roles:
            return False

        # Time-based restriction (business hours only)
        from datetime import datetime
        hour = datetime.now().hour
        if not (9 <= hour <= 17):
            return False

        return True
