"""The SCIM protocol, once, for every framework (RFC 7644).

Each function takes what an integration reads off an HTTP request (the raw
body, the query parameters, a few headers, the base URL) and returns a
`ScimResponse`: a status, a JSON body and headers. Errors are raised as
scim2-models' `SCIMException`s; `error_response` turns any exception into the
SCIM Error a client must see. An integration only translates HTTP in and out.
"""

import hashlib
import hmac
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pydantic import ValidationError
from scim2_models import BulkRequest
from scim2_models import BulkResponse
from scim2_models import ConflictException
from scim2_models import Context
from scim2_models import Error
from scim2_models import Group
from scim2_models import InvalidSyntaxException
from scim2_models import InvalidValueException
from scim2_models import ListResponse
from scim2_models import NotFoundException
from scim2_models import NotImplementedException
from scim2_models import PatchOp
from scim2_models import PayloadTooLargeException
from scim2_models import PreconditionFailedException
from scim2_models import ResponseParameters
from scim2_models import SCIMException
from scim2_models import SearchRequest
from scim2_models import UnauthorizedException

from shared import discovery
from shared import limits
from shared import mapping
from shared import quirks
from shared import storage
from shared.discovery import PROVIDER
from shared.discovery import UserResource

logger = logging.getLogger(__name__)

SCIM_CONTENT_TYPE = "application/scim+json"
ACCEPTED_CONTENT_TYPES = ("application/scim+json", "application/json")
ROOT_ENDPOINT = ""  # the server root, whose /.search covers every resource type
_CAS_ATTEMPTS = 50


@dataclass
class ScimResponse:
    """What the integration sends back: status, JSON body (or None) and headers."""

    status: int
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceEndpoint:
    """One resource endpoint (RFC 7644 §3.2): its model, storage kind and mapping."""

    name: str
    kind: str
    model: Any
    to_scim: Callable[[dict[str, Any], str], Any]
    from_scim: Callable[[Any], dict[str, Any]]


ENDPOINTS = {
    "Users": ResourceEndpoint(
        "Users",
        storage.USER,
        UserResource,
        mapping.to_scim_user,
        mapping.from_scim_user,
    ),
    "Groups": ResourceEndpoint(
        "Groups",
        storage.GROUP,
        Group,
        mapping.to_scim_group,
        mapping.from_scim_group,
    ),
}


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


def route_not_found() -> ScimResponse:
    """The answer to a URL the server does not serve."""
    return error_response(NotFoundException(detail="No such SCIM endpoint"))


def method_not_allowed() -> ScimResponse:
    """The answer to a method the endpoint does not support."""
    error = Error(status=405, detail="This endpoint does not support that method")
    return ScimResponse(405, error.model_dump())


def _endpoint(name: str) -> ResourceEndpoint:
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise NotFoundException(detail=f"No resource endpoint /{name}") from None


def _validate(model: Any, payload: Any, ctx: Context) -> Any:
    """Validate parsed JSON with scim2-models, under the server's policy."""
    try:
        return model.model_validate(payload, scim_ctx=ctx, scim_provider=PROVIDER)
    except ValidationError as exc:
        raise SCIMException.from_error(Error.from_validation_errors(exc)[0]) from None


def _parse(model: Any, body: bytes, ctx: Context) -> Any:
    """Parse a request body within the limits, then validate it."""
    return _validate(model, limits.read_json(body), ctx)


def _query_parameters(model: Any, query: Mapping[str, str]) -> SearchRequest:
    """Validate the query string (attributes, filter, paging...) of a request."""
    known = {name: query[name] for name in _QUERY_PARAMETERS if name in query}
    if not known:  # most requests: no need to validate nothing
        if model not in _NO_PARAMETERS:
            _NO_PARAMETERS[model] = SearchRequest[model]()
        return _NO_PARAMETERS[model]
    limits.check_filter_length(known.get("filter"))
    search = _validate(SearchRequest[model], known, Context.SEARCH_REQUEST)
    limits.check_filter_terms(search.filter)
    return search


_NO_PARAMETERS: dict[Any, SearchRequest] = {}
_QUERY_PARAMETERS = (
    "attributes",
    "excludedAttributes",
    "filter",
    "sortBy",
    "sortOrder",
    "startIndex",
    "count",
)


# --8<-- [start:etag-preconditions]
def _etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match header names `etag` (weak comparison)."""
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def _check_if_match(if_match: str | None, record: dict[str, Any]) -> None:
    if if_match is not None and not _etag_matches(if_match, mapping.make_etag(record)):
        raise PreconditionFailedException(
            detail="The resource changed since the version the client read"
        )


# --8<-- [end:etag-preconditions]


# --8<-- [start:representations]
class Representations:
    """SCIM resources built from records, reused while the record's version holds.

    The version is the ETag: it changes whenever the representation would
    (derived `groups` and member names included), so a cached resource is
    never stale. Reads and scans then skip validating and dumping the same
    record again and again. Each process keeps its own; bounded, least
    recently used first out.
    """

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], tuple] = OrderedDict()
        self._lock = threading.Lock()

    def resource(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> Any:
        """The resource for a record: treat it as read-only, it is shared."""
        return self._entry(endpoint, record, base_url)[0]

    def editable(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> Any:
        """A resource of the caller's own to change: copying one is half the
        price of building it again."""
        key = (endpoint.kind, record["id"])
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[:2] == (record["version"], base_url):
            return entry[2].model_copy(deep=True)
        return endpoint.to_scim(record, base_url)

    def dump(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> dict[str, Any]:
        """The full JSON a read answers for a record (no attributes asked)."""
        resource, dumped = self._entry(endpoint, record, base_url)
        if dumped is None:
            dumped = resource.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            self._store(endpoint, record, base_url, resource, dumped)
        return dumped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _entry(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> tuple[Any, dict[str, Any] | None]:
        key = (endpoint.kind, record["id"])
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[:2] == (record["version"], base_url):
                self._entries.move_to_end(key)
                return entry[2], entry[3]
        resource = endpoint.to_scim(record, base_url)
        self._store(endpoint, record, base_url, resource, None)
        return resource, None

    def _store(self, endpoint, record, base_url, resource, dumped) -> None:  # noqa: ANN001
        key = (endpoint.kind, record["id"])
        with self._lock:
            self._entries[key] = (record["version"], base_url, resource, dumped)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


REPRESENTATIONS = Representations()
# --8<-- [end:representations]


def _resource_response(
    endpoint: ResourceEndpoint,
    record: dict[str, Any],
    base_url: str,
    ctx: Context,
    params: ResponseParameters | None = None,
    status: int = 200,
) -> ScimResponse:
    headers = {"ETag": mapping.make_etag(record)}
    if status == 201:
        headers["Location"] = f"{base_url}/{endpoint.name}/{record['id']}"
    if not _projects(params):
        # A whole resource dumps alike in every response context (a test checks
        # it), so the JSON kept for reads also answers creations and updates.
        return ScimResponse(
            status, REPRESENTATIONS.dump(endpoint, record, base_url), headers
        )
    resource = REPRESENTATIONS.resource(endpoint, record, base_url)
    body = resource.model_dump(scim_ctx=ctx, response_parameters=params)
    return ScimResponse(status, body, headers)


def _projects(params: ResponseParameters | None) -> bool:
    """Whether the client asked for some attributes only (RFC 7644 §3.9)."""
    return params is not None and bool(params.attributes or params.excluded_attributes)


def _get_existing(endpoint: ResourceEndpoint, resource_id: str) -> dict[str, Any]:
    record = storage.get_record(endpoint.kind, resource_id)
    if record is None:
        raise NotFoundException(detail=f"{endpoint.kind} {resource_id} not found")
    return record


# --8<-- [start:discovery]
def get_service_provider_config(base_url: str) -> ScimResponse:
    config = discovery.service_provider_config(base_url)
    return ScimResponse(
        200, config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    )


def list_schemas(base_url: str) -> ScimResponse:
    return _discovery_list(discovery.schemas(base_url))


def get_schema(base_url: str, schema_id: str) -> ScimResponse:
    return _discovery_item(discovery.schemas(base_url), schema_id, "Schema")


def list_resource_types(base_url: str) -> ScimResponse:
    return _discovery_list(discovery.resource_types(base_url))


def get_resource_type(base_url: str, type_id: str) -> ScimResponse:
    return _discovery_item(discovery.resource_types(base_url), type_id, "ResourceType")


# --8<-- [end:discovery]


def _discovery_list(documents: list[Any]) -> ScimResponse:
    listing = ListResponse[type(documents[0])](
        total_results=len(documents),
        start_index=1,
        items_per_page=len(documents),
        resources=documents,
    )
    return ScimResponse(200, listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE))


def _discovery_item(documents: list[Any], doc_id: str, what: str) -> ScimResponse:
    for document in documents:
        if document.id == doc_id:
            body = document.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
            return ScimResponse(200, body)
    raise NotFoundException(detail=f"No {what} {doc_id}")


# --8<-- [start:create-resource]
def create_resource(
    endpoint_name: str, body: bytes, query: Mapping[str, str], base_url: str
) -> ScimResponse:
    """POST /Users or /Groups (RFC 7644 §3.3): 201 with Location and ETag."""
    endpoint = _endpoint(endpoint_name)
    params = _query_parameters(endpoint.model, query)
    payload = quirks.adapt_body(limits.read_json(body), base_url)
    resource = _validate(endpoint.model, payload, Context.RESOURCE_CREATION_REQUEST)
    record = storage.save_record(endpoint.kind, endpoint.from_scim(resource))
    return _resource_response(
        endpoint, record, base_url, Context.RESOURCE_CREATION_RESPONSE, params, 201
    )


# --8<-- [end:create-resource]


# --8<-- [start:get-resource]
def get_resource(
    endpoint_name: str,
    resource_id: str,
    query: Mapping[str, str],
    base_url: str,
    if_none_match: str | None = None,
) -> ScimResponse:
    """GET /Users/{id} (RFC 7644 §3.4.1); 304 when If-None-Match names the version."""
    endpoint = _endpoint(endpoint_name)
    params = _query_parameters(endpoint.model, query)
    record = _get_existing(endpoint, resource_id)
    etag = mapping.make_etag(record)
    if if_none_match is not None and _etag_matches(if_none_match, etag):
        return ScimResponse(304, None, {"ETag": etag})
    return _resource_response(
        endpoint, record, base_url, Context.RESOURCE_QUERY_RESPONSE, params
    )


# --8<-- [end:get-resource]


# --8<-- [start:replace-resource]
def replace_resource(
    endpoint_name: str,
    resource_id: str,
    body: bytes,
    query: Mapping[str, str],
    base_url: str,
    if_match: str | None = None,
) -> ScimResponse:
    """PUT /Users/{id} (RFC 7644 §3.5.1): what the body leaves out is cleared."""
    endpoint = _endpoint(endpoint_name)
    params = _query_parameters(endpoint.model, query)
    payload = quirks.adapt_body(limits.read_json(body), base_url)
    replacement = _validate(
        endpoint.model, payload, Context.RESOURCE_REPLACEMENT_REQUEST
    )

    def replace(record: dict[str, Any]) -> dict[str, Any]:
        wanted = replacement.model_copy(deep=True)
        # Copies id, meta and groups from the stored resource (PUT bodies from
        # Entra ID and Okta carry them) and refuses a change to an immutable.
        wanted.replace(endpoint.to_scim(record, base_url))
        return endpoint.from_scim(wanted)

    record = _update(endpoint, resource_id, if_match, replace)
    return _resource_response(
        endpoint, record, base_url, Context.RESOURCE_REPLACEMENT_RESPONSE, params
    )


# --8<-- [end:replace-resource]


# --8<-- [start:patch-resource]
def patch_resource(
    endpoint_name: str,
    resource_id: str,
    body: bytes,
    query: Mapping[str, str],
    base_url: str,
    if_match: str | None = None,
) -> ScimResponse:
    """PATCH /Users/{id} (RFC 7644 §3.5.2), answered with the patched resource."""
    endpoint = _endpoint(endpoint_name)
    params = _query_parameters(endpoint.model, query)
    payload = quirks.split_filtered_keys(limits.read_json(body))
    limits.check_patch_path_lengths(payload)
    patch = _validate(PatchOp[endpoint.model], payload, Context.RESOURCE_PATCH_REQUEST)
    for operation in patch.operations:
        limits.check_patch_path_terms(operation.path)

    def apply_patch(record: dict[str, Any]) -> dict[str, Any] | None:
        resource = REPRESENTATIONS.editable(endpoint, record, base_url)
        adapted = quirks.adapt_patch(patch, resource, base_url)
        if not adapted.patch(resource, scim_policy=discovery.POLICY):
            return None
        return endpoint.from_scim(resource)

    record = _update(endpoint, resource_id, if_match, apply_patch)
    return _resource_response(
        endpoint, record, base_url, Context.RESOURCE_PATCH_RESPONSE, params
    )


# --8<-- [end:patch-resource]


# --8<-- [start:update]
def _update(
    endpoint: ResourceEndpoint,
    resource_id: str,
    if_match: str | None,
    change: Callable[[dict[str, Any]], dict[str, Any] | None],
) -> dict[str, Any]:
    """Read, change and write a record as one optimistic transaction.

    The write is a compare-and-swap on the version that was read. With an
    If-Match header, losing the race is the client's 412. Without one, the
    change is replayed on the fresh record, so parallel PATCHes that add
    different members to one group all survive.
    """
    for _ in range(_CAS_ATTEMPTS):
        record = _get_existing(endpoint, resource_id)
        _check_if_match(if_match, record)
        changed = change(record)
        if changed is None:  # a PATCH that changes nothing writes nothing
            return record
        changed["id"] = record["id"]
        if "password_hash" not in changed and "password_hash" in record:
            changed["password_hash"] = record["password_hash"]
        try:
            return storage.save_record(endpoint.kind, changed, record["version"])
        except PreconditionFailedException:
            if if_match is not None:
                raise
    raise ConflictException(detail="Too many concurrent writes, try again")


# --8<-- [end:update]


# --8<-- [start:delete-resource]
def delete_resource(
    endpoint_name: str, resource_id: str, if_match: str | None = None
) -> ScimResponse:
    """DELETE /Users/{id} (RFC 7644 §3.6): 204, and gone from every group."""
    endpoint = _endpoint(endpoint_name)
    if if_match is None:
        storage.delete_record(endpoint.kind, resource_id)
        return ScimResponse(204)
    record = _get_existing(endpoint, resource_id)
    _check_if_match(if_match, record)
    # The version checked is the version deleted, or 412: one atomic step.
    storage.delete_record(endpoint.kind, resource_id, record["version"])
    return ScimResponse(204)


# --8<-- [end:delete-resource]


# --8<-- [start:list-resources]
def list_resources(
    endpoint_name: str, query: Mapping[str, str], base_url: str
) -> ScimResponse:
    """GET /Users?filter=...&sortBy=...&startIndex=...&count=... (RFC 7644 §3.4.2)."""
    endpoints = _searched(endpoint_name)
    search = _query_parameters(_union(endpoints), query)
    return _search(endpoints, search, base_url)


def search_resources(endpoint_name: str, body: bytes, base_url: str) -> ScimResponse:
    """POST /Users/.search, /Groups/.search or /.search (RFC 7644 §3.4.3)."""
    endpoints = _searched(endpoint_name)
    payload = limits.read_json(body)
    if isinstance(payload, dict):
        limits.check_filter_length(payload.get("filter"))
    search = _validate(
        SearchRequest[_union(endpoints)], payload, Context.SEARCH_REQUEST
    )
    limits.check_filter_terms(search.filter)
    return _search(endpoints, search, base_url)


# --8<-- [end:list-resources]


def _searched(endpoint_name: str) -> list[ResourceEndpoint]:
    if endpoint_name == ROOT_ENDPOINT:
        return list(ENDPOINTS.values())
    return [_endpoint(endpoint_name)]


def _union(endpoints: list[ResourceEndpoint]) -> Any:
    model = endpoints[0].model
    for endpoint in endpoints[1:]:
        model = model | endpoint.model
    return model


# --8<-- [start:search]
def _search(
    endpoints: list[ResourceEndpoint], search: SearchRequest, base_url: str
) -> ScimResponse:
    count = discovery.DEFAULT_PAGE_SIZE if search.count is None else search.count
    count = min(count, discovery.MAX_RESULTS)
    start = search.start_index_0 or 0

    if len(endpoints) > 1 and search.sort_by is not None:
        # The root /.search sorted across types: merge the filtered results.
        found = [
            (endpoint, record)
            for endpoint in endpoints
            for record in _search_kind(endpoint, search, 0, None, base_url)[1]
        ]
        resources = {
            id(REPRESENTATIONS.resource(endpoint, record, base_url)): (endpoint, record)
            for endpoint, record in found
        }
        ordered = search.sort(
            REPRESENTATIONS.resource(endpoint, record, base_url)
            for endpoint, record in found
        )
        total = len(found)
        page = [resources[id(resource)] for resource in ordered][start : start + count]
    else:
        # One type after the other, each filtered, sorted and paged by storage.
        total, page = 0, []
        for endpoint in endpoints:
            offset = max(0, start - total)
            stop = offset + max(0, count - len(page))
            kind_total, records = _search_kind(endpoint, search, offset, stop, base_url)
            total += kind_total
            page += [(endpoint, record) for record in records]

    listing = ListResponse[_union(endpoints)](
        total_results=total, start_index=start + 1, items_per_page=len(page)
    )
    if _projects(search):
        listing.resources = [
            REPRESENTATIONS.resource(endpoint, record, base_url)
            for endpoint, record in page
        ] or None
        body = listing.model_dump(
            scim_ctx=Context.SEARCH_RESPONSE, response_parameters=search
        )
    else:
        # Each resource's JSON is the one a GET of it answers: reuse it.
        body = listing.model_dump(scim_ctx=Context.SEARCH_RESPONSE)
        if page:
            body["Resources"] = [
                REPRESENTATIONS.dump(endpoint, record, base_url)
                for endpoint, record in page
            ]
    return ScimResponse(200, body)


def _search_kind(
    endpoint: ResourceEndpoint,
    search: SearchRequest,
    start: int,
    stop: int | None,
    base_url: str,
) -> tuple[int, list[dict[str, Any]]]:
    if search.filter is None and search.sort_by is None:
        return storage.list_records(endpoint.kind, start, stop)
    return storage.search_records(
        endpoint.kind,
        search,
        start,
        stop,
        lambda record: REPRESENTATIONS.resource(endpoint, record, base_url),
    )


# --8<-- [end:search]


def get_me() -> ScimResponse:
    """/Me needs a user behind the token; this server's clients are provisioners."""
    raise NotImplementedException(
        detail="/Me is not implemented: the token identifies a client, not a user"
    )


# --8<-- [start:bulk]
def process_bulk(body: bytes, base_url: str) -> ScimResponse:
    """POST /Bulk (RFC 7644 §3.7): run each operation, resolving bulkId references.

    An operation that refers to a resource a later POST of the request creates
    waits for it (RFC 7644 §3.7.1); the results keep the request's order.
    """
    check_payload_size(len(body))
    request = _parse_bulk(body)
    operations = request["Operations"]
    fail_on_errors = request.get("failOnErrors")
    announced = {_bulk_id(operation) for operation in operations} - {None}
    created: dict[str, str] = {}  # bulkId -> id of the resource it created
    results: dict[int, dict[str, Any]] = {}
    errors = 0
    pending = list(range(len(operations)))
    while pending and (fail_on_errors is None or errors < fail_on_errors):
        ready = [
            index
            for index in pending
            if not (_bulk_references(operations[index]) & announced) - created.keys()
        ]
        # No progress left (a cycle, or a POST that failed): the rest run now,
        # and each reference still unresolved is that operation's 409.
        for index in ready or pending:
            if fail_on_errors is not None and errors >= fail_on_errors:
                break
            results[index] = _bulk_operation(operations[index], created, base_url)
            if int(results[index]["status"]) >= 400:
                errors += 1
                announced.discard(_bulk_id(operations[index]))
        pending = [index for index in pending if index not in results]
    response = BulkResponse[_union(list(ENDPOINTS.values()))](operations=[])
    body_out = response.model_dump(scim_ctx=Context.BULK_RESPONSE)
    body_out["Operations"] = [results[index] for index in sorted(results)]
    return ScimResponse(200, body_out)


# --8<-- [end:bulk]


def _parse_bulk(body: bytes) -> dict[str, Any]:
    request = limits.read_json(body)
    if not isinstance(request, dict) or not isinstance(request.get("Operations"), list):
        raise InvalidSyntaxException(detail="A BulkRequest needs an Operations list")
    schemas = request.get("schemas")
    if not isinstance(schemas, list) or str(BulkRequest.__schema__) not in schemas:
        raise InvalidSyntaxException(
            detail=f"schemas must list {BulkRequest.__schema__}"
        )
    if len(request["Operations"]) > discovery.MAX_BULK_OPERATIONS:
        raise PayloadTooLargeException(
            detail=f"A bulk request holds at most {discovery.MAX_BULK_OPERATIONS} "
            "operations"
        )
    fail_on_errors = request.get("failOnErrors")
    if fail_on_errors is not None and (
        not isinstance(fail_on_errors, int) or fail_on_errors < 1
    ):
        raise InvalidValueException(detail="failOnErrors must be a positive integer")
    return request


def _bulk_operation(
    operation: Any, created: dict[str, str], base_url: str
) -> dict[str, Any]:
    method = (
        str(operation.get("method", "")).upper() if isinstance(operation, dict) else ""
    )
    result: dict[str, Any] = {"method": method}
    try:
        if method not in ("POST", "PUT", "PATCH", "DELETE"):
            raise InvalidSyntaxException(
                detail="method must be POST, PUT, PATCH or DELETE"
            )
        if operation.get("bulkId") is not None:
            if not isinstance(operation["bulkId"], str):
                raise InvalidValueException(detail="bulkId must be a string")
            result["bulkId"] = operation["bulkId"]
        path = _resolve_bulk_ids(str(operation.get("path", "")), created)
        data = json.dumps(_resolve_bulk_ids(operation.get("data"), created)).encode()
        endpoint_name, _, resource_id = path.strip("/").partition("/")
        version = operation.get("version")
        if method == "POST":
            if resource_id or not operation.get("bulkId"):
                raise InvalidValueException(
                    detail="POST needs a bulkId and a path like /Users"
                )
            response = create_resource(endpoint_name, data, {}, base_url)
            created[operation["bulkId"]] = response.body["id"]
        elif not resource_id:
            raise InvalidValueException(
                detail=f"{method} needs a path like /Users/<id>"
            )
        elif method == "PUT":
            response = replace_resource(
                endpoint_name, resource_id, data, {}, base_url, version
            )
        elif method == "PATCH":
            response = patch_resource(
                endpoint_name, resource_id, data, {}, base_url, version
            )
        else:
            response = delete_resource(endpoint_name, resource_id, version)
            response.headers["Location"] = f"{base_url}/{endpoint_name}/{resource_id}"
    except Exception as exc:  # each operation fails alone (RFC 7644 §3.7.3)
        response = error_response(exc)
        result.update(status=str(response.status), response=response.body)
        return result
    if response.body is not None:
        result["location"] = response.body["meta"]["location"]
        result["version"] = response.headers["ETag"]
    else:
        result["location"] = response.headers["Location"]
    result["status"] = str(response.status)
    return result


def _bulk_id(operation: Any) -> str | None:
    """The bulkId a POST announces, if it is one."""
    if isinstance(operation, dict) and str(operation.get("method", "")).upper() == (
        "POST"
    ):
        bulk_id = operation.get("bulkId")
        return bulk_id if isinstance(bulk_id, str) else None
    return None


def _bulk_references(value: Any) -> set[str]:
    """Every bulkId that "bulkId:<id>" strings in an operation refer to."""
    if isinstance(value, str) and (value.startswith("bulkId:") or "/bulkId:" in value):
        return {value.rpartition("bulkId:")[2]}
    if isinstance(value, list):
        return set().union(*(_bulk_references(item) for item in value))
    if isinstance(value, dict):
        return set().union(*(_bulk_references(item) for item in value.values()))
    return set()


def _resolve_bulk_ids(value: Any, created: dict[str, str]) -> Any:
    """Replace every "bulkId:<id>" with the id the referenced POST created."""
    if isinstance(value, str) and value.startswith("bulkId:"):
        bulk_id = value.removeprefix("bulkId:")
        if bulk_id not in created:
            raise ConflictException(
                detail=f"bulkId {bulk_id!r} names no POST of this request that "
                "succeeded"
            )
        return created[bulk_id]
    if isinstance(value, str) and "/bulkId:" in value:
        head, _, bulk_id = value.rpartition("/bulkId:")
        return f"{head}/{_resolve_bulk_ids('bulkId:' + bulk_id, created)}"
    if isinstance(value, list):
        return [_resolve_bulk_ids(item, created) for item in value]
    if isinstance(value, dict):
        return {key: _resolve_bulk_ids(item, created) for key, item in value.items()}
    return value
