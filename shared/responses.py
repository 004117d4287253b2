"""What the service answers: a `ScimResponse`, and the SCIM Error for any exception.

The protocol functions (`shared.resources`, `shared.search`, `shared.bulk` and
the discovery endpoints) take what an integration reads off an HTTP request
(the raw body, the query parameters, a few headers, the base URL) and return a
`ScimResponse`. Errors are raised as scim2-models' `SCIMException`s, and
`error_response` turns any exception into the SCIM Error a client must see.
"""

import json
import logging
from typing import Any

from pydantic import ValidationError
from scim2_models import Error
from scim2_models import NotFoundException
from scim2_models import SCIMException

logger = logging.getLogger(__name__)

SCIM_CONTENT_TYPE = "application/scim+json"


# --8<-- [start:scim-response]
class ScimResponse:
    """What the integration sends back: status, JSON body (or None) and headers.

    The body comes as JSON data (`body`) or already encoded (`content`, the
    bytes a representation cache keeps): each is derived from the other when
    asked for, so an integration sends `content` as is, and Bulk reads `body`.
    """

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        *,
        content: bytes | None = None,
    ) -> None:
        self.status = status
        self.headers = {} if headers is None else headers
        self._body = body
        self._content = content

    @property
    def body(self) -> dict[str, Any] | None:
        if self._body is None and self._content is not None:
            self._body = json.loads(self._content)
        return self._body

    @property
    def content(self) -> bytes | None:
        """The body as the JSON bytes sent on the wire, or None (204, 304)."""
        if self._content is None and self._body is not None:
            self._content = json.dumps(self._body).encode()
        return self._content

    def __repr__(self) -> str:
        return f"ScimResponse({self.status}, {self.body!r}, {self.headers!r})"


# --8<-- [end:scim-response]


# --8<-- [start:errors]
def error_response(exc: Exception) -> ScimResponse:
    """The SCIM Error for any exception (RFC 7644 §3.12); never a traceback."""
    if isinstance(exc, SCIMException):
        error = exc.to_error()
    elif isinstance(exc, ValidationError):
        error = Error.from_validation_errors(exc)[0]
    else:
        logger.exception("Unexpected error while serving a SCIM request")
        error = Error(status=500, detail="The server could not complete the request")
    headers = {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="SCIM"'
    return ScimResponse(error.status or 500, error.model_dump(), headers)


# --8<-- [end:errors]


def route_not_found() -> ScimResponse:
    """The answer to a URL the server does not serve."""
    return error_response(NotFoundException(detail="No such SCIM endpoint"))


def method_not_allowed() -> ScimResponse:
    """The answer to a method the endpoint does not support."""
    error = Error(status=405, detail="This endpoint does not support that method")
    return ScimResponse(405, error.model_dump())
