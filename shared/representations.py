"""What a record looks like on the wire, and as a SCIM resource, kept while it holds."""

import json
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
from shared.tenants import current_tenant


# --8<-- [start:representations]
class Representations:
    """Records as JSON and as SCIM resources, reused while their version holds.

    A read, a write and a page answer every attribute of a record: its JSON
    comes from the endpoint's serializer (`dump`), without building a
    resource, and is kept encoded, about 600 bytes a user. A resource, 5 KB
    and the slowest thing to build, is built only for what needs one: a PATCH
    changes a copy of its own; `attributes`, a filter scanned in memory and a
    sort read one, kept for the next time.

    The version is the ETag: it changes whenever the representation would,
    member names included, but for the group names a user's `groups` shows
    (a renamed group does not bump each of its members): those are compared
    too, so nothing kept is ever stale. Entries are keyed by tenant, kind and
    id. Each process keeps its own; each kind
    of entry is bounded, least recently used first out.
    """

    def __init__(self, size: int = 200_000) -> None:
        self._size = size
        self._contents: OrderedDict[tuple, tuple] = OrderedDict()
        self._resources: OrderedDict[tuple, tuple] = OrderedDict()
        self._lock = threading.Lock()

    def content(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> bytes:
        """The JSON bytes a read answers for a record (no attributes asked)."""
        content = self._get(self._contents, endpoint, record, base_url)
        if content is None:
            content = json.dumps(endpoint.dump(record, base_url)).encode()
            self._put(self._contents, endpoint, record, base_url, content)
        return content

    def dump(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> dict[str, Any]:
        """The full JSON a read answers for a record (no attributes asked)."""
        return json.loads(self.content(endpoint, record, base_url))

    def resource(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> Any:
        """The resource for a record: treat it as read-only, it is shared."""
        resource = self._get(self._resources, endpoint, record, base_url)
        if resource is None:
            resource = endpoint.to_scim(record, base_url)
            self._put(self._resources, endpoint, record, base_url, resource)
        return resource

    def editable(
        self, endpoint: ResourceEndpoint, record: dict[str, Any], base_url: str
    ) -> Any:
        """A resource of the caller's own, for a PATCH to change.

        It is built afresh, which costs less than copying a kept one, and
        without what only the server sets: `meta`, and a user's `groups`, are
        read-only (RFC 7643 §3.1, §4.1.2), so no PATCH writes them and
        `from_scim` drops them; every copy scim2-models takes of the resource
        while it patches it is smaller without them.
        """
        data = endpoint.json(record, base_url)
        for server_set in mapping.SERVER_SET:
            data.pop(server_set, None)
        return endpoint.model.model_validate(data)

    def clear(self) -> None:
        with self._lock:
            self._contents.clear()
            self._resources.clear()

    def _get(self, entries, endpoint, record, base_url) -> Any:  # noqa: ANN001
        key, stamp = _key(endpoint, record), _stamp(record)
        with self._lock:
            entry = entries.get(key)
            if entry is None or entry[0] != stamp or entry[1] != base_url:
                return None
            entries.move_to_end(key)
            return entry[2]

    def _put(self, entries, endpoint, record, base_url, value) -> None:  # noqa: ANN001
        key = _key(endpoint, record)
        with self._lock:
            entries[key] = (_stamp(record), base_url, value)
            entries.move_to_end(key)
            while len(entries) > self._size:
                entries.popitem(last=False)


def _key(endpoint: ResourceEndpoint, record: dict[str, Any]) -> tuple:
    # Each tenant's entries are its own: a record of one is never answered
    # from what was kept for another's. A group read without its members
    # (members=False) is a resource apart.
    return (current_tenant(), endpoint.kind, record["id"], "members" in record)


def _stamp(record: dict[str, Any]) -> tuple:
    """What a kept entry must have been built from: version and group names.

    And the creation time: a backend whose ids are its table's integers
    (shared/existing_users.py) gives id "1" again in a new database, and a
    new record there must not be answered with the old one's JSON.
    """
    groups = record.get("groups")
    names = tuple([group["display"] for group in groups or ()])
    return (record["version"], record["created"], names)


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
        content = REPRESENTATIONS.content(endpoint, record, base_url)
        return ScimResponse(status, headers=headers, content=content)
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
