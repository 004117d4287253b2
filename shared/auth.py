"""The bearer token every SCIM request carries (RFC 6750), and whose it is.

One server can serve many customers, each provisioning from an identity
provider of its own: every token belongs to a tenant, and the tenant of the
token a request carries is the only one it can see (shared/tenants.py).
"""

import hashlib
import hmac
import os
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping

from scim2_models import UnauthorizedException

from shared.tenants import DEFAULT_TENANT

# What a host application may give instead of tokens: its own lookup, from the
# token a request presents to the tenant it belongs to, or None if none.
TenantOfToken = Callable[[str], str | None]

TENANT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
HASHED = "sha256:"  # an entry that gives the token's digest, not the token
SHA256_HEX = re.compile(r"[0-9a-f]{64}")


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


# --8<-- [start:token-table]
def token_digest(token: str) -> bytes:
    """What is kept of a token, and compared: its SHA-256 digest."""
    return hashlib.sha256(token.encode()).digest()


class TokenTable:
    """Which tenant each token belongs to, keeping only the tokens' SHA-256 digests.

    A tenant may have several tokens: add the new one, move the identity
    provider to it, then remove the old one, and no request is refused
    in between.
    """

    def __init__(self, tokens: Iterable[tuple[str, str]]) -> None:
        """`tokens`: (tenant, token) pairs; a token may be given as `sha256:<hex>`."""
        self._digests: list[tuple[bytes, str]] = []
        for tenant, token in tokens:
            if not TENANT_NAME.fullmatch(tenant):
                raise ValueError(
                    f"a tenant name is 1-64 of A-Z a-z 0-9 _ . -: {tenant!r}"
                )
            if token.startswith(HASHED) and SHA256_HEX.fullmatch(token[len(HASHED) :]):
                digest = bytes.fromhex(token[len(HASHED) :])
            elif token.strip() and token == token.strip():
                digest = token_digest(token)
            else:
                raise ValueError(f"tenant {tenant!r}: a token cannot be blank")
            self._digests.append((digest, tenant))
        if not self._digests:
            raise ValueError("no token given: no client could ever authenticate")
        self.tenants = frozenset(tenant for _, tenant in self._digests)

    @classmethod
    def parse(cls, text: str) -> "TokenTable":
        """The tokens of SCIM_TOKENS: `tenant:token,tenant:sha256:<hex>,...`."""
        pairs = []
        for entry in text.split(","):
            tenant, colon, token = entry.strip().partition(":")
            if not colon:
                raise ValueError("SCIM_TOKENS entries are tenant:token")
            pairs.append((tenant, token))
        return cls(pairs)

    def __call__(self, token: str) -> str | None:
        """The tenant `token` belongs to, or None.

        Every digest is compared, whichever matches: the time taken tells
        nothing about which token, or which tenant, was close.
        """
        presented = token_digest(token)
        found = None
        for digest, tenant in self._digests:
            if hmac.compare_digest(presented, digest):
                found = tenant
        return found


def tokens_from_environment(environ: Mapping[str, str] = os.environ) -> TokenTable:
    """SCIM_TOKENS (`tenant:token,...`), else SCIM_TOKEN for the one default tenant."""
    if environ.get("SCIM_TOKENS"):
        return TokenTable.parse(environ["SCIM_TOKENS"])
    if environ.get("SCIM_TOKEN"):
        return TokenTable([(DEFAULT_TENANT, environ["SCIM_TOKEN"])])
    raise KeyError("Set SCIM_TOKEN, or SCIM_TOKENS for several tenants")


def tenant_lookup(tokens: str | TenantOfToken) -> TenantOfToken:
    """What an integration is given, as a lookup; one token is the default tenant's."""
    if isinstance(tokens, str):
        return TokenTable([(DEFAULT_TENANT, tokens)])
    return tokens


def authenticate(authorization: str | None, tenant_of: TenantOfToken) -> str:
    """The tenant of the bearer token in the Authorization header, or a 401."""
    scheme, _, credentials = (authorization or "").partition(" ")
    tenant = tenant_of(credentials.strip()) if scheme.lower() == "bearer" else None
    if tenant is None:
        raise UnauthorizedException(detail="A valid bearer token is required")
    return tenant


# --8<-- [end:token-table]
