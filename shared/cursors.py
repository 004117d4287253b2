"""Cursors for RFC 9865 paging: where a walk stands, signed so no client can forge one.

A cursor names the position of a record in creation order (the `position`
every record carries, shared/records.py), which resource type it is in, and
which way the walk goes from it. Nothing is kept on the server: the cursor
carries all of that, with the page size and the time it was issued, and an
HMAC over those and over the query it pages (endpoint and filter). So any
worker that shares the key reads any cursor; one that was altered, made up, or
issued for another query is an invalidCursor; one older than CURSOR_TIMEOUT
an expiredCursor; one sent with another `count` an invalidCount (RFC 9865
§2.1). A cursor is two runs of 32 hex digits (the fields, the HMAC), joined by
a dot: only the unreserved characters RFC 9865 §2 allows.
"""

import hashlib
import hmac
import os
import re
import secrets
import struct
import time
from dataclasses import dataclass

from scim2_models import ExpiredCursorException
from scim2_models import InvalidCountException
from scim2_models import InvalidCursorException

from shared import discovery
from shared.tenants import current_tenant

# Which way, which resource type, page size, issued at (Unix time), position.
FIELDS = struct.Struct(">BBHIQ")
CURSOR = re.compile(r"[0-9a-f]{32}\.[0-9a-f]{32}")
KEY_LABEL = b"scim2-cookbook cursor key\x00"  # the token's digest is for cursors only
_PROCESS_KEY = secrets.token_bytes(32)


# --8<-- [start:cursor-key]
def cursor_key() -> bytes:
    """The HMAC key cursors are signed with: one for every worker of a deployment.

    SCIM_CURSOR_SECRET when it is set. Otherwise a digest of SCIM_TOKENS (or
    SCIM_TOKEN), which every worker already shares. Forging a cursor would
    give nothing anyway: a cursor only says where to resume in what the
    storage, scoped to the request's tenant, lets that tenant see. A token
    added or removed ends the walks in progress: set SCIM_CURSOR_SECRET to
    rotate tokens without that. With neither, a key of this process alone: a cursor
    taken to another worker is then an invalidCursor, never a 500.
    """
    configured = os.environ.get("SCIM_CURSOR_SECRET")
    if configured:
        return configured.encode()
    token = os.environ.get("SCIM_TOKENS") or os.environ.get("SCIM_TOKEN")
    if token:
        return hashlib.sha256(KEY_LABEL + token.encode()).digest()
    return _PROCESS_KEY


# --8<-- [end:cursor-key]


# --8<-- [start:cursors]
@dataclass(frozen=True)
class Cursor:
    """Where a walk stands: next to a record, in one of the resource types walked."""

    backwards: bool  # a previousCursor: the page before the record
    type_index: int  # which resource type the record is: 0, or 1 for Groups at /
    position: int  # the record's position in creation order
    count: int  # the page size of the walk


def issue(cursor: Cursor, query: str) -> str:
    """The text of a cursor, for the query it pages (endpoint and filter)."""
    fields = FIELDS.pack(
        cursor.backwards,
        cursor.type_index,
        cursor.count,
        int(time.time()),
        cursor.position,
    )
    return f"{fields.hex()}.{signature(fields, query)}"


def read(text: str, query: str, count: int) -> Cursor:
    """The cursor a client sent back, once it is known to be ours, for this query.

    Checked in this order: the HMAC (invalidCursor), the age (expiredCursor),
    the page size (invalidCount).
    """
    if not CURSOR.fullmatch(text):
        raise InvalidCursorException(detail="This is not a cursor this server issued")
    fields = bytes.fromhex(text[:32])
    if not hmac.compare_digest(text[33:], signature(fields, query)):
        raise InvalidCursorException(
            detail="This cursor was not issued for this query: send the endpoint "
            "and filter of its first page again, or start over with an empty cursor"
        )
    backwards, type_index, page_size, issued, position = FIELDS.unpack(fields)
    if time.time() - issued > discovery.CURSOR_TIMEOUT:
        raise ExpiredCursorException(
            detail=f"This cursor is more than {discovery.CURSOR_TIMEOUT} seconds "
            "old: start over with an empty cursor"
        )
    if page_size != count:
        raise InvalidCountException(
            detail=f"This walk pages by {page_size}: send the count of its first page"
        )
    return Cursor(bool(backwards), type_index, position, page_size)


def signature(fields: bytes, query: str) -> str:
    """The HMAC of a cursor's fields, its tenant and its query, in 32 hex digits.

    The tenant is signed: a cursor one tenant was given is an invalidCursor
    for every other, even one that pages the same query.
    """
    tenant = current_tenant().encode()
    message = b"".join(
        [
            fields,
            len(tenant).to_bytes(4),
            tenant,
            query.encode("utf-8", "surrogatepass"),
        ]
    )
    return hmac.new(cursor_key(), message, hashlib.sha256).hexdigest()[:32]


# --8<-- [end:cursors]
