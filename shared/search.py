"""Lists and searches: GET with a query string, POST /.search (RFC 7644 §3.4)."""

from collections.abc import Mapping
from typing import Any

from scim2_models import Context
from scim2_models import ListResponse
from scim2_models import SearchRequest

from shared import discovery
from shared import limits
from shared import storage
from shared.endpoints import ENDPOINTS
from shared.endpoints import ROOT_ENDPOINT
from shared.endpoints import ResourceEndpoint
from shared.endpoints import find_endpoint
from shared.parsing import query_parameters
from shared.parsing import validate
from shared.representations import REPRESENTATIONS
from shared.representations import projects
from shared.representations import shows_members
from shared.responses import ScimResponse

MAX_START = 2**62  # an offset beyond any store


# --8<-- [start:list-resources]
def list_resources(
    endpoint_name: str, query: Mapping[str, str], base_url: str
) -> ScimResponse:
    """GET /Users?filter=...&sortBy=...&startIndex=...&count=... (RFC 7644 §3.4.2)."""
    endpoints = searched_endpoints(endpoint_name)
    search = query_parameters(union_model(endpoints), query)
    return run_search(endpoints, search, base_url)


def search_resources(endpoint_name: str, body: bytes, base_url: str) -> ScimResponse:
    """POST /Users/.search, /Groups/.search or /.search (RFC 7644 §3.4.3)."""
    endpoints = searched_endpoints(endpoint_name)
    payload = limits.read_json(body)
    if isinstance(payload, dict):
        limits.check_filter_length(payload.get("filter"))
    search = validate(
        SearchRequest[union_model(endpoints)], payload, Context.SEARCH_REQUEST
    )
    limits.check_filter_terms(search.filter)
    return run_search(endpoints, search, base_url)


# --8<-- [end:list-resources]


def searched_endpoints(endpoint_name: str) -> list[ResourceEndpoint]:
    if endpoint_name == ROOT_ENDPOINT:
        return list(ENDPOINTS.values())
    return [find_endpoint(endpoint_name)]


def union_model(endpoints: list[ResourceEndpoint]) -> Any:
    model = endpoints[0].model
    for endpoint in endpoints[1:]:
        model = model | endpoint.model
    return model


# --8<-- [start:search]
def run_search(
    endpoints: list[ResourceEndpoint], search: SearchRequest, base_url: str
) -> ScimResponse:
    count = discovery.DEFAULT_PAGE_SIZE if search.count is None else search.count
    count = min(count, discovery.MAX_RESULTS)
    # Far past the end is past the end: the cap keeps SQL's OFFSET a 64-bit int.
    start = min(search.start_index_0 or 0, MAX_START)

    if len(endpoints) > 1 and search.sort_by is not None:
        # The root /.search sorted across types: merge the filtered results.
        found = [
            (endpoint, record)
            for endpoint in endpoints
            for record in search_kind(endpoint, search, 0, None, base_url)[1]
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
            kind_total, records = search_kind(endpoint, search, offset, stop, base_url)
            total += kind_total
            page += [(endpoint, record) for record in records]

    listing = ListResponse[union_model(endpoints)](
        total_results=total, start_index=start + 1, items_per_page=len(page)
    )
    if projects(search):
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


def search_kind(
    endpoint: ResourceEndpoint,
    search: SearchRequest,
    start: int,
    stop: int | None,
    base_url: str,
) -> tuple[int, list[dict[str, Any]]]:
    members = shows_members(search)
    if search.filter is None and search.sort_by is None:
        return storage.list_records(endpoint.kind, start, stop, members)
    return storage.search_records(
        endpoint.kind,
        search,
        start,
        stop,
        lambda record: REPRESENTATIONS.resource(endpoint, record, base_url),
        members,
    )


# --8<-- [end:search]
