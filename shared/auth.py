"""The bearer token every SCIM request carries (RFC 6750)."""

import hashlib
import hmac

from scim2_models import UnauthorizedException


# --8<-- [start:auth]
def check_bearer_token(authorization: str | None, token: str) -> None:
    """Raise 401 unless the Authorization header carries `token` (RFC 6750)."""
    scheme, _, credentials = (authorization or "").partition(" ")
    # Both sides are hashed first: compare_digest then compares two strings of
    # the same length, in a time that reveals neither how much of a guess
    # matched nor how long the real token is.
    presented = hashlib.sha256(credentials.strip().encode()).digest()
    expected = hashlib.sha256(token.encode()).digest()
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented, expected):
        raise UnauthorizedException(detail="A valid bearer token is required")


# --8<-- [end:auth]
