"""A few users and a group, so that a freshly started server has something to show."""

import os

from scim2_models import Group
from scim2_models import Name

from shared import mapping
from shared import storage
from shared.discovery import DirectoryEmail
from shared.discovery import UserResource

DEMO_USERS = [
    ("bjensen", "Barbara", "Jensen"),
    ("jsmith", "John", "Smith"),
    ("achen", "Alice", "Chen"),
]


def load_demo_data() -> None:
    """Create the demo users and an "Engineering" group, unless they exist."""
    member_ids = []
    for user_name, given_name, family_name in DEMO_USERS:
        record = storage.find_user_by_user_name(user_name)
        if record is None:
            user = UserResource(
                user_name=user_name,
                display_name=f"{given_name} {family_name}",
                name=Name(given_name=given_name, family_name=family_name),
                emails=[DirectoryEmail(value=f"{user_name}@example.com", primary=True)],
                active=True,
            )
            record = storage.save_record(storage.USER, mapping.from_scim_user(user))
        member_ids.append(record["id"])
    _, groups = storage.list_records(storage.GROUP, 0, 1)
    if not groups:
        group = Group(display_name="Engineering")
        record = mapping.from_scim_group(group)
        record["members"] = [{"value": uid, "type": storage.USER} for uid in member_ids]
        storage.save_record(storage.GROUP, record)


def load_if_enabled() -> None:
    """Load the demo data unless SCIM_DEMO_DATA=0 (what `make serve` starts with)."""
    if os.environ.get("SCIM_DEMO_DATA", "1") != "0":
        load_demo_data()
