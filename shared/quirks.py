"""What identity providers really send, brought to the shape scim2-models reads.

Most client quirks need no code: scim2-models reads `"Replace"` as `replace`
and `"False"` as false, and the `ScimPolicy` in `shared/discovery.py` covers a
`remove` that lists its targets in `value` and a `replace` on a filter that
matches nothing. What is left is here, each with the client that sends it:
a body is adjusted as parsed JSON, before validation; a PATCH operation once
validated, just before it is applied to the resource it changes.
"""

from typing import Any

from scim2_models import EnterpriseUser
from scim2_models import PatchOp
from scim2_models import PatchOperation

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


# --8<-- [start:body]
def adapt_body(payload: Any, base_url: str) -> Any:
    """A POST or PUT body, in the shape scim2-models validates."""
    drop_marker_schemas(payload)
    fill_manager(payload, base_url)
    return payload


# --8<-- [end:body]


# --8<-- [start:schemas]
# Schema URNs a client lists with no attribute of theirs in the body: markers
# that say nothing the server must store.
MARKER_SCHEMAS = {
    # Entra ID lists it when it creates a group.
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
}


def drop_marker_schemas(payload: Any) -> None:
    """Take the attribute-less marker schemas out of a body's `schemas`."""
    schemas = payload.get("schemas") if isinstance(payload, dict) else None
    if isinstance(schemas, list):
        payload["schemas"] = [
            urn
            for urn in schemas
            if not (
                isinstance(urn, str)
                and urn.lower() in _MARKERS
                and _key(payload, urn) is None
            )
        ]


_MARKERS = {urn.lower() for urn in MARKER_SCHEMAS}
# --8<-- [end:schemas]


# --8<-- [start:manager]
def manager_value(value: Any, base_url: str) -> Any:
    """A manager as RFC 7643 §4.3 shapes it, from the shapes clients send.

    Microsoft Entra ID sends the manager's id as a bare string, or as a list
    holding one `{"$ref": null, "value": "<id>"}`. Other clients leave `$ref`
    out, which RFC 7643 §4.3 allows ("RECOMMENDED"); scim2-models requires it,
    and the server knows the URL, so it fills it in.
    """
    if isinstance(value, str):
        value = {"value": value}
    elif isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, dict):
        return value  # anything else is for validation to refuse
    value = {key: item for key, item in value.items() if item is not None}
    if isinstance(value.get("value"), str) and "$ref" not in value:
        value["$ref"] = f"{base_url}/Users/{value['value']}"
    return value


def fill_manager(payload: Any, base_url: str) -> None:
    """Shape the manager of a User body (POST, PUT) before it is validated."""
    extension = _get(payload, ENTERPRISE)
    if isinstance(extension, dict) and (key := _key(extension, "manager")):
        extension[key] = manager_value(extension[key], base_url)


# --8<-- [end:manager]


# --8<-- [start:patch]
def split_filtered_keys(payload: Any) -> Any:
    """A PatchOp body whose path-less operations hold no filtered key.

    Entra ID puts paths as keys of a path-less value, filtered ones included:
    {"op": "Replace", "value": {"emails[type eq \"work\"].value": "..."}}.
    scim2-models follows dotted keys; a key with a filter becomes an operation
    of its own, with that key as its path.
    """
    operations = payload.get("Operations") if isinstance(payload, dict) else None
    if not isinstance(operations, list):
        return payload
    split = []
    for operation in operations:
        value = operation.get("value") if isinstance(operation, dict) else None
        if not isinstance(value, dict) or operation_path(operation) is not None:
            split.append(operation)
            continue
        filtered = [key for key in value if "[" in key]
        rest = {key: item for key, item in value.items() if key not in filtered}
        if rest or not filtered:
            split.append({**operation, "value": rest})
        split += [{**operation, "path": key, "value": value[key]} for key in filtered]
    payload["Operations"] = split
    return payload


def operation_path(operation: dict[str, Any]) -> Any:
    return operation.get(_key(operation, "path") or "path")


def adapt_patch(patch: PatchOp, resource: Any, base_url: str) -> PatchOp:
    """The operations of a PATCH, each in the shape scim2-models applies."""
    operations = [
        adapted
        for operation in patch.operations
        if (adapted := _adapt(operation, resource, base_url)) is not None
    ]
    return patch.model_copy(update={"operations": operations})


def _adapt(operation: PatchOperation, resource: Any, base_url: str) -> Any:
    value = operation.value
    if operation.path is None:
        # Okta and Entra ID: a path-less add or replace whose value object
        # holds the extension, or the manager's full path as a key.
        if isinstance(value, dict):
            value = dict(value)
            fill_manager(value, base_url)
            if key := _key(value, f"{ENTERPRISE}:manager"):
                value[key] = manager_value(value[key], base_url)
        return operation.model_copy(update={"value": value})
    if _is_manager(operation.path):
        if operation.op != PatchOperation.Op.remove:
            return operation.model_copy(
                update={"value": manager_value(value, base_url)}
            )
        if value is None:
            return operation
        # Entra ID removes the manager by naming it: {"op": "Remove", "path":
        # "...:manager", "value": [{"$ref": null, "value": "<id>"}]}. Only the
        # manager it names is removed.
        named = manager_value(value, base_url)
        current = resource[EnterpriseUser].manager if resource[EnterpriseUser] else None
        if current is None or named.get("value") != current.value:
            return None
        return operation.model_copy(update={"value": None})
    if operation.op == PatchOperation.Op.remove and isinstance(value, list):
        # Entra ID removes group members with [{"$ref": null, "value": "<id>"}]:
        # the null says nothing about the member, it is not a value to match.
        value = [
            {key: item for key, item in entry.items() if item is not None}
            if isinstance(entry, dict)
            else entry
            for entry in value
        ]
        return operation.model_copy(update={"value": value})
    return operation


def _is_manager(path: Any) -> bool:
    # Resolving a path costs about 40 us: most paths are told apart by name.
    if not path or "manager" not in str(path).lower():
        return False
    binding = path.resolve()
    return (
        binding is not None
        and binding.model is EnterpriseUser
        and binding.field_name == "manager"
        and binding.sub_field_name is None
        and path.value_filter is None
    )


def _key(mapping: dict[str, Any], name: str) -> str | None:
    """The key of `mapping` that is `name` in any letter case (RFC 7643 §2.1)."""
    for key in mapping:
        if isinstance(key, str) and key.lower() == name.lower():
            return key
    return None


def _get(payload: Any, name: str) -> Any:
    if not isinstance(payload, dict):
        return None
    key = _key(payload, name)
    return payload[key] if key else None


# --8<-- [end:patch]
