"""A group PATCH read as what it is: members to add, members to remove.

Entra ID sends one PATCH per membership change, Okta one per push, and
directories have "all employees" groups of 100,000 members. Applied the
general way (scim2-models' `PatchOp.patch` on the whole resource), each such
PATCH reads, validates and writes every member. Read as a list of members to
add and ids to remove, it costs one index entry or one row per member named
(`Storage.update_group`), whatever the size of the group.

`membership_changes` reads a PATCH that way when each operation is one of:

- an add to `members` of members by value:
  `{"op": "add", "path": "members", "value": [{"value": "<id>"}]}`;
- a remove of `members[value eq "<id>"]`;
- a remove from `members` of members by value, as Entra ID sends it:
  `{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "<id>"}]}`;
- an operation on another attribute (displayName, externalId, ...), which
  scim2-models applies to the group built without its members.

Anything else (replace all members, remove all members, a filter on another
sub-attribute) gets None, and the caller patches the whole group.
"""

from dataclasses import dataclass
from dataclasses import field
from typing import Any

from scim2_models import Group
from scim2_models import PatchOp
from scim2_models import PatchOperation
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison

from shared.records import Member


# --8<-- [start:membership-changes]
@dataclass
class MembershipChanges:
    add: dict[str, Member] = field(default_factory=dict)  # by member id
    remove: set[str] = field(default_factory=set)
    others: list[PatchOperation] = field(default_factory=list)


def membership_changes(patch: PatchOp) -> MembershipChanges | None:
    """The members a group PATCH adds and removes, or None if it does more.

    Operations apply in order, so the last one to name a member decides.
    """
    changes = MembershipChanges()
    for operation in patch.operations:
        if not _on_members(operation):
            changes.others.append(operation)
        elif operation.path is None or operation.path.resolve() is None:
            return None  # the general way says what is wrong with it
        elif (added := _added(operation)) is not None:
            for member in added:
                changes.add[member["value"]] = member
                changes.remove.discard(member["value"])
        elif (removed := _removed(operation)) is not None:
            for member_id in removed:
                changes.remove.add(member_id)
                changes.add.pop(member_id, None)
        else:
            return None
    return changes


def _on_members(operation: PatchOperation) -> bool:
    """Whether an operation touches `members` (path-less ones included)."""
    if operation.path is None:
        value = operation.value if isinstance(operation.value, dict) else {}
        return any(str(key).lower().endswith("members") for key in value)
    binding = operation.path.resolve()
    return binding is None or (
        binding.model is Group and binding.field_name == "members"
    )


def _added(operation: PatchOperation) -> list[Member] | None:
    """The members an `add` to `members` names by value, or None."""
    if operation.op != PatchOperation.Op.add or not _whole_members(operation):
        return None
    value = operation.value
    entries = [value] if isinstance(value, dict) else value
    if not isinstance(entries, list) or not all(_by_value(e) for e in entries):
        return None
    return [
        {
            "value": entry["value"],
            # As in shared/mapping.py: a member without a type is a user.
            "type": entry.get("type") or "User",
            "display": entry.get("display"),
        }
        for entry in entries
    ]


def _removed(operation: PatchOperation) -> list[str] | None:
    """The member ids a `remove` names, by filter or by value, or None."""
    if operation.op != PatchOperation.Op.remove:
        return None
    path = operation.path
    selection = path.value_filter
    if selection is not None:  # members[value eq "<id>"]
        binding = path.resolve()
        if (
            operation.value is None
            and binding.sub_field_name is None
            and isinstance(selection, Comparison)
            and selection.op == CompareOperator.eq
            and selection.attr_path.attr.lower() == "value"
            and selection.attr_path.sub_attr is None
            and isinstance(selection.value, str)
        ):
            return [selection.value]
        return None
    if not _whole_members(operation) or not isinstance(operation.value, list):
        return None  # no value: remove every member, the general way
    # Entra ID's {"$ref": null, "value": "<id>"}: the null says nothing.
    entries = [
        {key: item for key, item in entry.items() if item is not None}
        if isinstance(entry, dict)
        else entry
        for entry in operation.value
    ]
    if not all(_by_value(entry) and entry.keys() == {"value"} for entry in entries):
        return None
    return [entry["value"] for entry in entries]


def _whole_members(operation: PatchOperation) -> bool:
    """Whether the path is `members` itself: no filter, no sub-attribute."""
    binding = operation.path.resolve()
    return operation.path.value_filter is None and binding.sub_field_name is None


def _by_value(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("value"), str)


# --8<-- [end:membership-changes]
