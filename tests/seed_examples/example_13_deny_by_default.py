# Deny by default, allow explicitly
@auth.policy("default")
class DefaultPolicy(Policy):
    def can_read(self, context):
        return False  # Deny unless specific policy allows
