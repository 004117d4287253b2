"""Reading a request: content type, size, body and query string.

A body is parsed within the limits of `shared.limits`, then validated by
scim2-models in the `Context` of the request it came in, under the server's
`ScimPolicy`; what does not validate is the SCIM Error scim2-models describes.
"""

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from scim2_models import Context
from scim2_models import Error
from scim2_models import InvalidSyntaxException
from scim2_models import PayloadTooLargeException
from scim2_models import SCIMException
from scim2_models import SearchRequest

from shared import discovery
from shared import limits
from shared.discovery import PROVIDER

ACCEPTED_CONTENT_TYPES = ("application/scim+json", "application/json")


def check_content_type(content_type: str | None) -> None:
    """Refuse a body that announces itself as something other than JSON."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type and media_type not in ACCEPTED_CONTENT_TYPES:
        raise InvalidSyntaxException(
            detail="Send the body as application/scim+json or application/json"
        )


def check_payload_size(size: int) -> None:
    """413 for a body over the size the ServiceProviderConfig announces."""
    if size > discovery.MAX_PAYLOAD_SIZE:
        raise PayloadTooLargeException(
            detail=f"The body exceeds {discovery.MAX_PAYLOAD_SIZE} bytes"
        )


# --8<-- [start:validate]
def validate(model: Any, payload: Any, ctx: Context) -> Any:
    """Validate parsed JSON with scim2-models, under the server's policy."""
    try:
        return model.model_validate(payload, scim_ctx=ctx, scim_provider=PROVIDER)
    except ValidationError as exc:
        raise SCIMException.from_error(Error.from_validation_errors(exc)[0]) from None


def query_parameters(model: Any, query: Mapping[str, str]) -> SearchRequest:
    """Validate the query string (attributes, filter, paging...) of a request."""
    known = {name: query[name] for name in _QUERY_PARAMETERS if name in query}
    if not known:  # most requests: no need to validate nothing
        if model not in _NO_PARAMETERS:
            _NO_PARAMETERS[model] = SearchRequest[model]()
        return _NO_PARAMETERS[model]
    limits.check_filter_length(known.get("filter"))
    search = validate(SearchRequest[model], known, Context.SEARCH_REQUEST)
    limits.check_filter_terms(search.filter)
    return search


# --8<-- [end:validate]


_NO_PARAMETERS: dict[Any, SearchRequest] = {}
_QUERY_PARAMETERS = (
    "attributes",
    "excludedAttributes",
    "filter",
    "sortBy",
    "sortOrder",
    "startIndex",
    "count",
    "cursor",  # RFC 9865
)
