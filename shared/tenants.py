"""Which customer a request acts for: its tenant, bound while the request runs.

Each customer's identity provider gets tokens of its own (shared/auth.py says
which token is whose). The integration binds the tenant of the token a request
carries, and `shared.storage.backend()` hands out the storage scoped to it, so
nothing below the integration can reach another tenant's records. Code that
runs outside a request (tests, notebooks, demos) acts for DEFAULT_TENANT, or
for the tenant a `serving()` block names.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from contextvars import Token

# The one tenant of a server configured with SCIM_TOKEN alone.
DEFAULT_TENANT = "default"

# A context variable, not a global: each thread, and each asyncio task, sees
# the tenant of the request it runs.
_current: ContextVar[str] = ContextVar("scim_tenant", default=DEFAULT_TENANT)


# --8<-- [start:tenant-context]
def current_tenant() -> str:
    """The tenant of the request being served (DEFAULT_TENANT outside one)."""
    return _current.get()


def bind(tenant: str) -> Token[str]:
    """Act for `tenant` from now on, in this thread or task, until `unbind`."""
    return _current.set(tenant)


def unbind(token: Token[str]) -> None:
    """Act again for the tenant before the `bind` that gave `token`."""
    _current.reset(token)


@contextmanager
def serving(tenant: str) -> Iterator[None]:
    """Act for `tenant` inside the block, then for whichever tenant was before."""
    token = _current.set(tenant)
    try:
        yield
    finally:
        _current.reset(token)


# --8<-- [end:tenant-context]
