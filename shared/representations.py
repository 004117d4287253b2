"""SCIM resources built from records, and the JSON a response carries."""

import threading
from collections import OrderedDict
from typing import Any

from scim2_models import Context
from scim2_models import NotFoundException
from scim2_models import ResponseParameters

from shared import mapping
from shared import storage
from shared.endpoints import ResourceEndpoint
from shared.records import GROUP
from shared.records import SCHEMAS
from shared.responses import ScimResponse


# --8<-- [start:representations]
class Representations:
    """SCIM resources built from records, reused while the record's version holds.

    The version is the ETag: it changes whenever the representation would,
    member names included, but for the group names a user's `groups` shows
    (a renamed group does not bump each of its members): those are compared
    too, so a cached resource is never stale. Reads and scans then skip
    validating and dumping the same record again and again. Each process
    keeps its own; bounded, least recently used first out.
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
        with self._lock:
            entry = self._entries.get(_key(endpoint, record))
        if entry is not None and entry[:2] == (_stamp(record), base_url):
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
        key = _key(endpoint, record)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[:2] == (_stamp(record), base_url):
                self._entries.move_to_end(key)
                return entry[2], entry[3]
        resource = endpoint.to_scim(record, base_url)
        self._store(endpoint, record, base_url, resource, None)
        return resource, None

    def _store(self, endpoint, record, base_url, resource, dumped) -> None:  # noqa: ANN001
        key = _key(endpoint, record)
        with self._lock:
            self._entries[key] = (_stamp(record), base_url, resource, dumped)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


def _key(endpoint: ResourceEndpoint, record: dict[str, Any]) -> tuple:
    # A group read without its members (members=False) is a resource apart.
    return (endpoint.kind, record["id"], "members" in record)


def _stamp(record: dict[str, Any]) -> tuple:
    """What a cached resource must have been built from: version and group names."""
    labels = tuple(group["display"] for group in record.get("groups", ()))
    return (record["version"], labels)


REPRESENTATIONS = Representations()
# --8<-- [end:representations]


# --8<-- [start:resource-response]
def resource_response(
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
    if not projects(params):
        # A whole resource dumps alike in every response context (a test checks
        # it), so the JSON kept for reads also answers creations and updates.
        return ScimResponse(
            status, REPRESENTATIONS.dump(endpoint, record, base_url), headers
        )
    resource = REPRESENTATIONS.resource(endpoint, record, base_url)
    body = resource.model_dump(scim_ctx=ctx, response_parameters=params)
    return ScimResponse(status, body, headers)


def projects(params: ResponseParameters | None) -> bool:
    """Whether the client asked for some attributes only (RFC 7644 §3.9)."""
    return params is not None and bool(params.attributes or params.excluded_attributes)


def shows_members(params: ResponseParameters | None) -> bool:
    """Whether an answer shows a group's members, so storage must read them.

    `excludedAttributes=members`, or `attributes` that leave members out, and
    a group of 100,000 is read, built and sent as cheaply as one of 10.
    """
    if params is None:
        return True
    if params.attributes:
        return any(_attribute_of(path) == "members" for path in params.attributes)
    return not any(
        str(path).lower().removeprefix(SCHEMAS[GROUP].lower() + ":") == "members"
        for path in params.excluded_attributes or ()
    )


def _attribute_of(path: Any) -> str:
    """The top-level attribute a path names: `members` for `members.value`."""
    name = str(path).lower().removeprefix(SCHEMAS[GROUP].lower() + ":")
    return name.split(".", 1)[0]


# --8<-- [end:resource-response]


def get_existing(
    endpoint: ResourceEndpoint, resource_id: str, members: bool = True
) -> dict[str, Any]:
    record = storage.get_record(endpoint.kind, resource_id, members)
    if record is None:
        raise NotFoundException(detail=f"{endpoint.kind} {resource_id} not found")
    return record
