import secrets
secret_key = secrets.token_hex(32)  # 256 bits
