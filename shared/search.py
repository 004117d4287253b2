"""Lists and searches: GET with a query string, POST /.search (RFC 7644 §3.4).

Pages come two ways: by `startIndex` (RFC 7644 §3.4.2.4), the default, and by
`cursor` (RFC 9865), a signed position in creation order (shared/cursors.py).
"""

from collections.abc import Mapping
from typing import Any

from scim2_models import Context
from scim2_models import InvalidValueException
from scim2_models import ListResponse
from scim2_models import SearchRequest

from shared import cursors
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
    if search.cursor is not None:  # even empty: the first page of a cursor walk
        return run_cursor_search(endpoints, search, base_url)
    count = page_size(search)
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
    return page_response(listing, page, search, base_url)


def page_size(search: SearchRequest) -> int:
    """`count`, DEFAULT_PAGE_SIZE without one, and never over MAX_RESULTS."""
    count = discovery.DEFAULT_PAGE_SIZE if search.count is None else search.count
    return min(count, discovery.MAX_RESULTS)


def page_response(
    listing: ListResponse,
    page: list[tuple[ResourceEndpoint, dict[str, Any]]],
    search: SearchRequest,
    base_url: str,
) -> ScimResponse:
    """The ListResponse with the page's resources, as `attributes` asks."""
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
    *,
    past: int | None = None,
    backwards: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    members = shows_members(search)
    if search.filter is None and search.sort_by is None:
        return storage.list_records(
            endpoint.kind, start, stop, members, past=past, backwards=backwards
        )
    return storage.search_records(
        endpoint.kind,
        search,
        start,
        stop,
        lambda record: REPRESENTATIONS.resource(endpoint, record, base_url),
        members,
        past=past,
        backwards=backwards,
    )


# --8<-- [end:search]


# --8<-- [start:cursor-search]
def run_cursor_search(
    endpoints: list[ResourceEndpoint], search: SearchRequest, base_url: str
) -> ScimResponse:
    """One page of a cursor walk (RFC 9865): the matches, in creation order.

    Each resource type walked reads the records past the cursor's position (or
    before it, going back) in one keyset query, one more than the page to tell
    whether there is a page beyond; the types the walk has left behind are only
    counted. A record added or deleted meanwhile moves no other, so a walk
    meets every record that was there when it began exactly once.
    """
    if search.sort_by is not None:
        # RFC 9865 §2.2: cursor pages "should" follow sortBy. A keyset on
        # creation order cannot, and pages in another order than the one asked
        # for would look right and be wrong: refused, plainly.
        raise InvalidValueException(
            detail="sortBy cannot be combined with cursor: cursor pages come in "
            "creation order; page with startIndex to sort"
        )
    if search.start_index is not None:
        raise InvalidValueException(
            detail="startIndex and cursor are two ways of paging: send one"
        )
    count = page_size(search)
    query = cursor_query(endpoints, search)
    at = cursors.read(search.cursor, query, count) if search.cursor else None
    backwards = at is not None and at.backwards

    types = list(enumerate(endpoints))
    total, found = 0, []
    for index, endpoint in reversed(types) if backwards else types:
        past, wanted = None, max(0, count + 1 - len(found))
        if at is not None and index == at.type_index:
            past = at.position
        elif at is not None and (index > at.type_index) == backwards:
            wanted = 0  # a type the walk has left behind: counted, not read
        kind_total, records = search_kind(
            endpoint, search, 0, wanted, base_url, past=past, backwards=backwards
        )
        total += kind_total
        found += [(index, endpoint, record) for record in records]
    beyond = len(found) > count  # more pages the way the walk goes
    page = found[:count][::-1] if backwards else found[:count]

    listing = ListResponse[union_model(endpoints)](
        total_results=total, items_per_page=len(page)
    )
    # Going back, the next page is where the walk came from; going on, the
    # previous one is, but for the first page (RFC 9865 §2). An empty page
    # (count=0, or nothing left) ends the walk.
    has_next = beyond or backwards
    has_previous = beyond if backwards else at is not None
    if page and has_next:
        last_type, _, last = page[-1]
        listing.next_cursor = cursors.issue(
            cursors.Cursor(False, last_type, last["position"], count), query
        )
    if page and has_previous:
        first_type, _, first = page[0]
        listing.previous_cursor = cursors.issue(
            cursors.Cursor(True, first_type, first["position"], count), query
        )
    page_of = [(endpoint, record) for _, endpoint, record in page]
    return page_response(listing, page_of, search, base_url)


def cursor_query(endpoints: list[ResourceEndpoint], search: SearchRequest) -> str:
    """What a cursor is bound to: the resource types walked, and the filter."""
    names = " ".join(endpoint.name for endpoint in endpoints)
    return f"{names}\n{'' if search.filter is None else search.filter}"


# --8<-- [end:cursor-search]
