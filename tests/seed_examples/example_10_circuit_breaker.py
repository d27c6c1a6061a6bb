from proxilion import circuit_protected

@circuit_protected(
    failure_threshold=5,  # Open after 5 failures
    recovery_timeout=60,  # Stay open 60 seconds
    half_open_max_calls=1  # Allow 1 test call
)
async def external_api_call():
    pass
