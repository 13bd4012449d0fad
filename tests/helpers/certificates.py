"""Self-signed key pairs for tests, cached per name (the sandbox makes its own at set-up)."""

from __future__ import annotations

from functools import lru_cache

from maestrano_sandbox.keys import IdpKeyPair, generate_key_pair

KeyPair = IdpKeyPair


@lru_cache(maxsize=8)
def make_key_pair(common_name: str = "test-idp", bits: int = 2048) -> KeyPair:
    return generate_key_pair(bits=bits, common_name=common_name)
