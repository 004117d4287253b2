"""Translate between SCIM resources and the application's own records.

A record is what an application keeps: a flat dict with a column per field it
uses (`user_name`, `given_name`, `department`, ...), and an `extra` dict for the
rest of the SCIM schema it accepts but does not act on (addresses, photos, ...),
so that nothing a client sends is lost. The storage owns `id`, `version`,
`created` and `last_modified`, and derives `groups` (users) and each member's
`display` (groups).
"""

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from inspect import isclass
from typing import Any

from pydantic_core import to_jsonable_python
from scim2_models import BaseModel
from scim2_models import Group
from scim2_models import Resource
from scim2_models import Returned

from shared import storage
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
# Read-only attributes the server sets (RFC 7643 §3.1, §4.1.2): no client
# writes them, and a record does not keep them as sent.
SERVER_SET = ("meta", "groups")


def _meta(record: dict[str, Any], resource_type: str, location: str) -> dict[str, Any]:
    return {
        "resourceType": resource_type,
        "created": record["created"],
        "lastModified": record["last_modified"],
        "location": location,
        "version": make_etag(record),
    }


def _payload(resource: Any) -> dict[str, Any]:
    """A resource as plain JSON data, without what the server owns."""
    payload = resource.model_dump(mode="json", by_alias=True, exclude_none=True)
    for owned in ("schemas", "id", *SERVER_SET, "password"):
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
def user_json(record: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The SCIM User a client sees of an application record, as JSON data."""
    extra = record["extra"]
    enterprise = {
        **extra.get(ENTERPRISE, {}),
        "department": record["department"],
        "employeeNumber": record["employee_number"],
    }
    if record["manager_id"]:
        enterprise["manager"] = {
            "value": record["manager_id"],
            "$ref": f"{base_url}/Users/{record['manager_id']}",
        }
    if all(value is None for value in enterprise.values()):
        enterprise = None  # no enterprise data: no extension, a lighter resource
    groups = [
        {
            "value": group["value"],
            "$ref": f"{base_url}/Groups/{group['value']}",
            "display": group["display"],
            "type": "direct",
        }
        for group in record.get("groups", ())
    ]
    return {
        **extra,
        "id": record["id"],
        "meta": _meta(record, "User", f"{base_url}/Users/{record['id']}"),
        "userName": record["user_name"],
        "externalId": record["external_id"],
        "displayName": record["display_name"],
        "name": {
            **extra.get("name", {}),
            "givenName": record["given_name"],
            "familyName": record["family_name"],
        },
        "active": record["active"],
        "title": record["title"],
        "emails": record["emails"] or None,
        "phoneNumbers": record["phone_numbers"] or None,
        "groups": groups or None,
        ENTERPRISE: enterprise,
    }


def to_scim_user(record: dict[str, Any], base_url: str) -> UserResource:
    """Build the SCIM User a client sees from an application record."""
    return UserResource.model_validate(user_json(record, base_url))


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
        record["password_hash"] = password_hash(user.password)
    return record


def password_hash(password: str) -> str:
    """The hash a record keeps: the backend's own, when it hashes passwords
    its own way (Django's auth.User: `set_password`), else `hash_password`'s."""
    own_hasher = getattr(storage.backend(), "hash_password", None)
    return own_hasher(password) if own_hasher else hash_password(password)


# --8<-- [end:from-scim-user]


# --8<-- [start:to-scim-group]
def group_json(record: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The SCIM Group a client sees of an application record, as JSON data.

    A record read with `members=False` has no `members`: the group is built
    without them, for an answer that does not show them.
    """
    members = [
        {
            "value": member["value"],
            "$ref": f"{base_url}/{member['type']}s/{member['value']}",
            "type": member["type"],
            "display": member.get("display"),
        }
        for member in record.get("members", ())
    ]
    return {
        **record["extra"],
        "id": record["id"],
        "meta": _meta(record, "Group", f"{base_url}/Groups/{record['id']}"),
        "displayName": record["display_name"],
        "externalId": record["external_id"],
        "members": members or None,
    }


def to_scim_group(record: dict[str, Any], base_url: str) -> Group:
    """Build the SCIM Group a client sees from an application record."""
    return Group.model_validate(group_json(record, base_url))


# --8<-- [end:to-scim-group]


# --8<-- [start:serializer]
class ResponseSerializer:
    """The JSON scim2-models dumps for a resource of `model`, straight from its data.

    `serializer.dump(user_json(record, base_url))` is what
    `to_scim_user(record, base_url).model_dump(scim_ctx=...)` answers with no
    `attributes` asked, in any response context, key order included
    (tests/test_serialization.py checks it). The values of a record were
    validated on their way in, so validating them again on the way out, and
    walking the resource to dump it, would only cost time: what the dump adds
    is its shape, which this reads off the model once.
    """

    def __init__(self, model: type[BaseModel]) -> None:
        is_resource = issubclass(model, Resource)
        self.schema = str(model.__schema__) if is_resource else None
        # Listed in `schemas` when the resource carries them (RFC 7643 §3).
        self.extensions = (
            [str(urn) for urn in model.get_extension_models()] if is_resource else []
        )
        self.fields = []  # (key, serializer of a complex value or None, multi-valued)
        for name, field in model.model_fields.items():
            returned = model.get_field_annotation(name, Returned)
            # `schemas` is built below; an extension's own is not dumped.
            # `never` (password) and `request` are left out when no
            # `attributes` are asked (RFC 7643 §7).
            if name == "schemas" or returned in (Returned.never, Returned.request):
                continue
            root = model.get_field_root_type(name)
            complex_value = isclass(root) and issubclass(root, BaseModel)
            self.fields.append(
                (
                    str(field.serialization_alias or name),
                    ResponseSerializer(root) if complex_value else None,
                    model.get_field_multiplicity(name),
                )
            )

    def dump(self, data: dict[str, Any]) -> dict[str, Any]:
        """`data` (JSON keyed as SCIM spells it) as scim2-models would dump it."""
        # `schemas` comes first, as the model declares it; its value, last.
        dumped: dict[str, Any] = {"schemas": None} if self.schema else {}
        for key, nested, multiple in self.fields:  # in the model's order
            value = data.get(key)
            if value is None:
                continue
            if nested is not None and multiple:
                value = [item for item in map(nested.dump, value) if item]
            elif nested is not None:
                value = nested.dump(value)
            elif isinstance(value, datetime):
                value = to_jsonable_python(value)  # pydantic's form, "...Z"
            if value != [] and value != {}:  # unassigned (RFC 7643 §2.5)
                dumped[key] = value
        if self.schema:
            present = [urn for urn in self.extensions if urn in dumped]
            dumped["schemas"] = [self.schema, *present]
        return dumped


USER_SERIALIZER = ResponseSerializer(UserResource)
GROUP_SERIALIZER = ResponseSerializer(Group)


def dump_user(record: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The JSON of the User `to_scim_user` builds, without building it."""
    return USER_SERIALIZER.dump(user_json(record, base_url))


def dump_group(record: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The JSON of the Group `to_scim_group` builds, without building it."""
    return GROUP_SERIALIZER.dump(group_json(record, base_url))


# --8<-- [end:serializer]


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
