"""One resource at a time: create, read, replace, patch, delete (RFC 7644 §3.3-§3.6)."""

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from scim2_models import ConflictException
from scim2_models import Context
from scim2_models import NotImplementedException
from scim2_models import PatchOp
from scim2_models import PreconditionFailedException

from shared import discovery
from shared import limits
from shared import mapping
from shared import quirks
from shared import storage
from shared.endpoints import ResourceEndpoint
from shared.endpoints import find_endpoint
from shared.membership import MembershipChanges
from shared.membership import membership_changes
from shared.parsing import query_parameters
from shared.parsing import validate
from shared.representations import REPRESENTATIONS
from shared.representations import get_existing
from shared.representations import projects
from shared.representations import resource_response
from shared.representations import shows_members
from shared.responses import ScimResponse

CAS_ATTEMPTS = 50
GROUP_FIELDS = ("display_name", "external_id", "extra")  # all but members


# --8<-- [start:etag-preconditions]
def etag_matches(header: str, etag: str) -> bool:
    """Whether an If-Match / If-None-Match header names `etag` (weak comparison)."""
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def check_if_match(if_match: str | None, record: dict[str, Any]) -> None:
    if if_match is not None and not etag_matches(if_match, mapping.make_etag(record)):
        raise PreconditionFailedException(
            detail="The resource changed since the version the client read"
        )


# --8<-- [end:etag-preconditions]


# --8<-- [start:create-resource]
def create_resource(
    endpoint_name: str, body: bytes, query: Mapping[str, str], base_url: str
) -> ScimResponse:
    """POST /Users or /Groups (RFC 7644 §3.3): 201 with Location and ETag."""
    endpoint = find_endpoint(endpoint_name)
    params = query_parameters(endpoint.model, query)
    payload = quirks.adapt_body(limits.read_json(body), base_url)
    resource = validate(endpoint.model, payload, Context.RESOURCE_CREATION_REQUEST)
    record = storage.save_record(endpoint.kind, endpoint.from_scim(resource))
    return resource_response(
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
    endpoint = find_endpoint(endpoint_name)
    params = query_parameters(endpoint.model, query)
    record = get_existing(endpoint, resource_id, shows_members(params))
    etag = mapping.make_etag(record)
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return ScimResponse(304, None, {"ETag": etag})
    return resource_response(
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
    endpoint = find_endpoint(endpoint_name)
    params = query_parameters(endpoint.model, query)
    payload = quirks.adapt_body(limits.read_json(body), base_url)
    replacement = validate(
        endpoint.model, payload, Context.RESOURCE_REPLACEMENT_REQUEST
    )

    def replace(record: dict[str, Any]) -> dict[str, Any]:
        wanted = replacement.model_copy(deep=True)
        # Copies id, meta and groups from the stored resource (the PUT bodies
        # Okta sends carry them) and refuses a change to an immutable.
        wanted.replace(endpoint.to_scim(record, base_url))
        return endpoint.from_scim(wanted)

    record = update_record(endpoint, resource_id, if_match, replace)
    return resource_response(
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
    """PATCH /Users/{id} (RFC 7644 §3.5.2).

    A user is answered with the patched resource. A group is answered 204 No
    Content unless the client names `attributes` or `excludedAttributes`:
    §3.5.2 allows either, and a one-member change in a group of 100,000
    should not send 100,000 members back.
    """
    endpoint = find_endpoint(endpoint_name)
    params = query_parameters(endpoint.model, query)
    payload = quirks.split_filtered_keys(limits.read_json(body))
    limits.check_patch_path_lengths(payload)
    patch = validate(PatchOp[endpoint.model], payload, Context.RESOURCE_PATCH_REQUEST)
    for operation in patch.operations:
        limits.check_patch_path_terms(operation.path)

    def apply_patch(record: dict[str, Any]) -> dict[str, Any] | None:
        resource = REPRESENTATIONS.editable(endpoint, record, base_url)
        adapted = quirks.adapt_patch(patch, resource, base_url)
        if not adapted.patch(resource, scim_policy=discovery.POLICY):
            return None
        return endpoint.from_scim(resource)

    changes = membership_changes(patch) if endpoint.kind == storage.GROUP else None
    if changes is not None:
        record = patch_group(endpoint, resource_id, changes, base_url, if_match)
    else:
        record = update_record(endpoint, resource_id, if_match, apply_patch)
    if endpoint.kind == storage.GROUP:
        if not projects(params):
            return ScimResponse(204, None, {"ETag": mapping.make_etag(record)})
        if "members" not in record and shows_members(params):
            record = get_existing(endpoint, resource_id)  # written without them
    return resource_response(
        endpoint, record, base_url, Context.RESOURCE_PATCH_RESPONSE, params
    )


# --8<-- [end:patch-resource]


# --8<-- [start:patch-group]
def patch_group(
    endpoint: ResourceEndpoint,
    group_id: str,
    changes: MembershipChanges,
    base_url: str,
    if_match: str | None,
) -> dict[str, Any]:
    """A group PATCH of member adds and removes, without reading the members.

    The other operations (displayName, externalId) are applied by scim2-models
    to the group built without its members; the storage then writes them and
    the member changes in one step. Adds and removes commute with any other
    write, so only If-Match, or a change of other attributes, makes the write
    a compare-and-swap on the version read.
    """
    for _ in range(CAS_ATTEMPTS):
        record = get_existing(endpoint, group_id, members=False)
        check_if_match(if_match, record)
        fields = None
        if changes.others:
            group = REPRESENTATIONS.editable(endpoint, record, base_url)
            others = PatchOp[endpoint.model](operations=changes.others)
            others = quirks.adapt_patch(others, group, base_url)
            if others.patch(group, scim_policy=discovery.POLICY):
                changed = endpoint.from_scim(group)
                fields = {key: changed[key] for key in GROUP_FIELDS}
        guarded = if_match is not None or fields is not None
        try:
            return storage.update_group(
                group_id,
                fields,
                list(changes.add.values()),
                sorted(changes.remove),
                record["version"] if guarded else None,
            )
        except PreconditionFailedException:
            if if_match is not None:
                raise
    raise ConflictException(detail="Too many concurrent writes, try again")


# --8<-- [end:patch-group]


# --8<-- [start:update]
def update_record(
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
    for _ in range(CAS_ATTEMPTS):
        record = get_existing(endpoint, resource_id)
        check_if_match(if_match, record)
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
    endpoint = find_endpoint(endpoint_name)
    if if_match is None:
        storage.delete_record(endpoint.kind, resource_id)
        return ScimResponse(204)
    record = get_existing(endpoint, resource_id)
    check_if_match(if_match, record)
    # The version checked is the version deleted, or 412: one atomic step.
    storage.delete_record(endpoint.kind, resource_id, record["version"])
    return ScimResponse(204)


# --8<-- [end:delete-resource]


def get_me() -> ScimResponse:
    """/Me needs a user behind the token; this server's clients are provisioners."""
    raise NotImplementedException(
        detail="/Me is not implemented: the token identifies a client, not a user"
    )
