"""Translate between SCIM resources and the application's own records.

A record is what an application keeps: a flat dict with a column per field it
uses (`user_name`, `given_name`, `department`, ...), and an `extra` dict for the
rest of the SCIM schema it accepts but does not act on (addresses, photos, ...),
so that nothing a client sends is lost. The storage owns `id`, `version`,
`created` and `last_modified`, and derives `groups` (users) and each member's
`display` (groups).
"""

import base64
import copy
import hashlib
import hmac
import secrets
from typing import Any

from scim2_models import Group
from scim2_models import Meta

from shared.discovery import UserResource

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


# --8<-- [start:etag]
def make_etag(record: dict[str, Any]) -> str:
    """The weak entity tag of a record's current version (RFC 7644 §3.14)."""
    return f'W/"{record["version"]}"'


# --8<-- [end:etag]


def hash_password(password: str) -> str:
    """A salted scrypt hash: the clear password is never stored (RFC 7643 §4.1.1)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return "scrypt$" + base64.b64encode(salt + digest).decode()


def check_password(password: str, hashed: str) -> bool:
    """Whether `password` is the one `hashed` was made from."""
    raw = base64.b64decode(hashed.removeprefix("scrypt$"))
    salt, digest = raw[:16], raw[16:]
    candidate = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(candidate, digest)


# --8<-- [start:helpers]
def _meta(record: dict[str, Any], resource_type: str, location: str) -> Meta:
    return Meta(
        resource_type=resource_type,
        created=record["created"],
        last_modified=record["last_modified"],
        location=location,
        version=make_etag(record),
    )


def _payload(resource: Any) -> dict[str, Any]:
    """A resource as plain JSON data, without what the server owns."""
    payload = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    for owned in ("schemas", "id", "meta", "groups", "password"):
        payload.pop(owned, None)
    return payload


def _pop_sub(payload: dict[str, Any], attribute: str, sub: str) -> Any:
    """Take `attribute.sub` out of a payload, dropping `attribute` once empty."""
    complex_value = payload.get(attribute) or {}
    value = complex_value.pop(sub, None)
    if not complex_value:
        payload.pop(attribute, None)
    return value


# --8<-- [end:helpers]


# --8<-- [start:to-scim-user]
def to_scim_user(record: dict[str, Any], base_url: str) -> UserResource:
    """Build the SCIM User a client sees from an application record."""
    payload = copy.deepcopy(record["extra"])
    payload.update(
        id=record["id"],
        userName=record["user_name"],
        externalId=record["external_id"],
        displayName=record["display_name"],
        active=record["active"],
        title=record["title"],
        emails=record["emails"] or None,
        phoneNumbers=record["phone_numbers"] or None,
    )
    name = payload.setdefault("name", {})
    name.update(givenName=record["given_name"], familyName=record["family_name"])
    enterprise = payload.setdefault(ENTERPRISE, {})
    enterprise.update(
        department=record["department"], employeeNumber=record["employee_number"]
    )
    if record["manager_id"]:
        enterprise["manager"] = {
            "value": record["manager_id"],
            "$ref": f"{base_url}/Users/{record['manager_id']}",
        }
    payload["groups"] = [
        {
            "value": group["value"],
            "$ref": f"{base_url}/Groups/{group['value']}",
            "display": group["display"],
            "type": "direct",
        }
        for group in record.get("groups", [])
    ] or None
    user = UserResource.model_validate(payload)
    user.meta = _meta(record, "User", f"{base_url}/Users/{record['id']}")
    return user


# --8<-- [end:to-scim-user]


# --8<-- [start:from-scim-user]
def from_scim_user(user: UserResource) -> dict[str, Any]:
    """Extract the application record from a SCIM User a client sent."""
    payload = _payload(user)
    record = {
        "user_name": payload.pop("userName"),
        "external_id": payload.pop("externalId", None),
        "display_name": payload.pop("displayName", None),
        "given_name": _pop_sub(payload, "name", "givenName"),
        "family_name": _pop_sub(payload, "name", "familyName"),
        "active": payload.pop("active", None),
        "title": payload.pop("title", None),
        "emails": payload.pop("emails", []),
        "phone_numbers": payload.pop("phoneNumbers", []),
        "department": _pop_sub(payload, ENTERPRISE, "department"),
        "employee_number": _pop_sub(payload, ENTERPRISE, "employeeNumber"),
        "manager_id": (_pop_sub(payload, ENTERPRISE, "manager") or {}).get("value"),
        "extra": payload,
    }
    if user.password is not None:
        record["password_hash"] = hash_password(user.password)
    return record


# --8<-- [end:from-scim-user]


# --8<-- [start:to-scim-group]
def to_scim_group(record: dict[str, Any], base_url: str) -> Group:
    """Build the SCIM Group a client sees from an application record.

    A record read with `members=False` has no `members`: the group is built
    without them, for an answer that does not show them.
    """
    payload = copy.deepcopy(record["extra"])
    payload.update(
        id=record["id"],
        displayName=record["display_name"],
        externalId=record["external_id"],
        members=[
            {
                "value": member["value"],
                "$ref": f"{base_url}/{member['type']}s/{member['value']}",
                "type": member["type"],
                "display": member.get("display"),
            }
            for member in record.get("members", [])
        ]
        or None,
    )
    group = Group.model_validate(payload)
    group.meta = _meta(record, "Group", f"{base_url}/Groups/{record['id']}")
    return group


# --8<-- [end:to-scim-group]


# --8<-- [start:from-scim-group]
def from_scim_group(group: Group) -> dict[str, Any]:
    """Extract the application record from a SCIM Group a client sent."""
    payload = _payload(group)
    members = payload.pop("members", [])
    return {
        "display_name": payload.pop("displayName"),
        "external_id": payload.pop("externalId", None),
        # A member without a type is a user: that is what every identity
        # provider means, and RFC 7643 §4.2 leaves it optional.
        "members": [
            {
                "value": member.get("value"),
                "type": member.get("type") or "User",
                "display": member.get("display"),
            }
            for member in members
        ],
        "extra": payload,
    }


# --8<-- [end:from-scim-group]
