"""What every storage backend keeps and answers: the records, and the Storage Protocol.

A record is the application's own shape of a resource: a flat dict with a key
per attribute the application acts on, and `extra` for the rest of what the
client sent (shared/mapping.py translates). The storage owns `id`, `version`,
`created` and `last_modified`, and derives a user's `groups` and each
member's `display` from the memberships it keeps.

`MemoryStorage` (shared/storage.py), `SqlStorage` (shared/sql_storage.py) and
the Django ORM recipe's `DjangoOrmStorage` all implement `Storage`, and one
contract suite (tests/test_storage_contract.py) holds them to the same answers.
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any
from typing import Literal
from typing import NotRequired
from typing import Protocol
from typing import TypedDict
from unicodedata import normalize

from scim2_models import SearchRequest

# --8<-- [start:records]
USER = "User"
GROUP = "Group"
KINDS = (USER, GROUP)
Kind = Literal["User", "Group"]
SCHEMAS = {
    USER: "urn:ietf:params:scim:schemas:core:2.0:User",
    GROUP: "urn:ietf:params:scim:schemas:core:2.0:Group",
}


class MultiValue(TypedDict, total=False):
    """One entry of `emails` or `phone_numbers` (RFC 7643 §2.4)."""

    value: str
    type: str
    primary: bool
    display: str


class GroupRef(TypedDict):
    """One group a user belongs to: derived by the storage, never written."""

    value: str
    display: str


class Member(TypedDict):
    """One member of a group: a user or a group, by id."""

    value: str
    type: Literal["User", "Group"]
    display: NotRequired[str | None]  # the one a client gave, else derived


class Stored(TypedDict):
    """What the storage owns in every record it returns."""

    id: str
    version: int  # moves on at every change: the ETag (RFC 7644 §3.14)
    created: datetime
    last_modified: datetime
    # Its place in creation order, fixed for life: above the positions of the
    # other records of its kind when it is created. Where a cursor resumes.
    position: int


class UserRecord(Stored, total=False):
    user_name: str
    external_id: str | None
    display_name: str | None
    given_name: str | None
    family_name: str | None
    active: bool | None
    title: str | None
    department: str | None
    employee_number: str | None
    manager_id: str | None
    password_hash: str  # absent when the user has no password
    emails: list[MultiValue]
    phone_numbers: list[MultiValue]
    groups: list[GroupRef]  # derived
    extra: dict[str, Any]  # every other attribute, in SCIM's JSON spelling


class GroupRecord(Stored, total=False):
    display_name: str
    external_id: str | None
    members: list[Member]  # absent when read with members=False
    extra: dict[str, Any]


class GroupFields(TypedDict):
    """What a group has besides its members: what `update_group` changes."""

    display_name: str
    external_id: str | None
    extra: dict[str, Any]


Record = UserRecord | GroupRecord
# --8<-- [end:records]


# --8<-- [start:protocol]
class Storage(Protocol):
    """What the SCIM service asks of a storage backend: eight calls, all atomic.

    `members=False` leaves a group's member list out of the records a read
    returns, unread: what the answer does not show costs nothing, however
    large the group.

    `past=P` pages by keyset, for cursors (RFC 9865): only the records created
    after position P, oldest first. `backwards=True` turns the walk round: the
    records before P (or, without P, from the last one), newest first. Either
    way the order is creation order, whatever `search.sort_by` says, and the
    total still counts every record (or match). A record created or deleted
    between two pages moves no other record's position, so a walk from one
    position to the next never skips nor repeats one that was there all along.
    """

    def get_record(
        self, kind: Kind, record_id: str, members: bool = True
    ) -> Record | None:
        """The record, or None when there is none."""

    def find_user_by_user_name(self, user_name: str) -> UserRecord | None:
        """The user with this userName, in any letter case."""

    def list_records(
        self,
        kind: Kind,
        start: int = 0,
        stop: int | None = None,
        members: bool = True,
        *,
        past: int | None = None,
        backwards: bool = False,
    ) -> tuple[int, list[Record]]:
        """How many records of a kind exist, and those in [start:stop), oldest first.

        With `past` or `backwards`, [start:stop) of the records the keyset
        gives, in its order.
        """

    def search_records(
        self,
        kind: Kind,
        search: SearchRequest,
        start: int,
        stop: int | None,
        to_resource: Callable[[Record], Any],
        members: bool = True,
        *,
        past: int | None = None,
        backwards: bool = False,
    ) -> tuple[int, list[Record]]:
        """How many records match `search.filter`, and [start:stop) of them sorted.

        Answers must be those of `ScimFilter.match` and `SearchRequest.sort` on
        the resources `to_resource` builds; a filter or sort no backend can
        answer raises InvalidFilterException (shared/filter_plan.py decides).
        """

    def save_record(
        self, kind: Kind, record: Record, expected_version: int | None = None
    ) -> Record:
        """Create (no `id`) or update a record, and return it as stored.

        Raises UniquenessException on a taken userName, InvalidValueException
        on a member that does not exist, NotFoundException on an update of a
        missing record, and PreconditionFailedException when `expected_version`
        is given and is no longer the stored one (a compare-and-swap).
        """

    def update_group(
        self,
        group_id: str,
        fields: GroupFields | None,
        add: list[Member],
        remove: list[str],
        expected_version: int | None = None,
    ) -> GroupRecord:
        """Change a group's own fields and some of its members in one step.

        The member list is neither read nor written whole: each member added or
        removed is one index entry or one row, so this costs the same in a
        group of 10 as in one of 100,000. Adding a member who is there already
        (with no new display) or removing one who is not changes nothing; a
        call that changes nothing writes nothing. Returns the group without
        `members`; raises as `save_record` does.
        """

    def delete_record(
        self, kind: Kind, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a record and every membership that names it."""

    def reset(self) -> None:
        """Forget everything: for tests, notebooks and demos."""


# --8<-- [end:protocol]


def fold(user_name: str) -> str:
    """The form userName is compared in: it is caseExact false (RFC 7643 §4.1.1).

    NFC, then lower case, then NFC again: scim2-models' default comparison
    key, so the uniqueness index also answers `userName eq "..."`, and SQL
    backends register this very function to fold other strings alike.
    """
    return normalize("NFC", normalize("NFC", user_name).lower())


def display_of(record: Any) -> str | None:
    """The name a group shows for a member, and a user for a group."""
    return record["display_name"] or record.get("user_name")


# What the SQL backends share: the user columns a record maps one to one, and
# when a write transaction runs again (PostgreSQL chose it as a deadlock victim).
USER_RECORD_FIELDS = (
    "user_name",
    "external_id",
    "display_name",
    "given_name",
    "family_name",
    "active",
    "title",
    "department",
    "employee_number",
    "manager_id",
    "password_hash",
)
RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
DEADLOCK_ATTEMPTS = 5


def row_values(kind: str, record: Record) -> dict[str, Any]:
    """The values a SQL backend stores in a record's own row.

    Derived data (groups, member displays) and child rows (emails, phone
    numbers, members) are written apart; `user_name_key` is the folded
    userName the unique index holds.
    """
    if kind == GROUP:
        return {
            "display_name": record["display_name"],
            "external_id": record["external_id"],
            "extra": record["extra"],
        }
    values = {name: record.get(name) for name in USER_RECORD_FIELDS}
    values["user_name_key"] = fold(record["user_name"])
    values["extra"] = record["extra"]
    return values
