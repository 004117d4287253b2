"""The resource endpoints the server serves (RFC 7644 §3.2), one descriptor each.

Code that handles Users and Groups alike reads what differs from the
descriptor (model, storage kind, mapping) instead of testing which one it has.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from scim2_models import Group
from scim2_models import NotFoundException

from shared import mapping
from shared import storage
from shared.discovery import UserResource

ROOT_ENDPOINT = ""  # the server root, whose /.search covers every resource type


@dataclass(frozen=True)
class ResourceEndpoint:
    """One resource endpoint (RFC 7644 §3.2): its model, storage kind and mapping."""

    name: str
    kind: str
    model: Any
    to_scim: Callable[[dict[str, Any], str], Any]
    from_scim: Callable[[Any], dict[str, Any]]
    # The JSON data `to_scim` validates into the resource.
    json: Callable[[dict[str, Any], str], dict[str, Any]]
    # The JSON of the resource `to_scim` builds, without building it.
    dump: Callable[[dict[str, Any], str], dict[str, Any]]


ENDPOINTS = {
    "Users": ResourceEndpoint(
        "Users",
        storage.USER,
        UserResource,
        mapping.to_scim_user,
        mapping.from_scim_user,
        mapping.user_json,
        mapping.dump_user,
    ),
    "Groups": ResourceEndpoint(
        "Groups",
        storage.GROUP,
        Group,
        mapping.to_scim_group,
        mapping.from_scim_group,
        mapping.group_json,
        mapping.dump_group,
    ),
}


def find_endpoint(name: str) -> ResourceEndpoint:
    try:
        return ENDPOINTS[name]
    except KeyError:
        raise NotFoundException(detail=f"No resource endpoint /{name}") from None
