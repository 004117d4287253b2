"""Where records live, behind one small API: in memory by default, or in SQL.

The module-level functions (`get_record`, `list_records`, `save_record`, ...)
are the API the rest of the cookbook uses. They act on one backend per
process, chosen by `SCIM_DATABASE_URL`: unset, the `MemoryStorage` below;
`sqlite:///path` or `postgresql+psycopg://...`, `shared.sql_storage.SqlStorage`.

`MemoryStorage` keeps records in dicts behind one lock, so every operation is
atomic across threads. Indexes answer the questions a request asks (by id, by
folded userName, who belongs to which group), so no call scans or copies the
whole store. Callers get copies of records, never the stored dicts.
"""

import os
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any

from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison

from shared.compiled_filter import compile_filter
from shared.filter_plan import plan_search
from shared.records import GROUP
from shared.records import KINDS
from shared.records import USER
from shared.records import Storage
from shared.records import display_of
from shared.records import fold

__all__ = ["GROUP", "KINDS", "USER", "MemoryStorage", "Storage", "fold"]


class MemoryStorage:
    """Users and groups in dicts, guarded by one re-entrant lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.reset()

    def reset(self) -> None:
        """Forget everything: for tests, notebooks and demos."""
        with self._lock:
            self._records: dict[str, dict[str, dict[str, Any]]] = {
                kind: {} for kind in KINDS
            }
            # Ids in creation order: the stable default order that makes
            # consecutive pages disjoint (RFC 7644 §3.4.2.4), sliced in O(page).
            self._order: dict[str, list[str]] = {kind: [] for kind in KINDS}
            self._user_names: dict[str, str] = {}  # folded userName -> user id
            # group id -> {member id: {"type": "User" or "Group", "display": ...}}
            self._members: dict[str, dict[str, dict[str, Any]]] = {}
            self._member_of: dict[str, set[str]] = {}  # member id -> group ids

    # --8<-- [start:storage-read]
    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """A copy of one record, or None when there is no such record."""
        with self._lock:
            record = self._records[kind].get(record_id)
            return self._export(kind, record) if record else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """A copy of the user with this userName, in any letter case."""
        with self._lock:
            user_id = self._user_names.get(fold(user_name))
            return self.get_record(USER, user_id) if user_id else None

    def list_records(
        self, kind: str, start: int = 0, stop: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many records of a kind exist, and copies of those in [start:stop)."""
        with self._lock:
            records, order = self._records[kind], self._order[kind]
            page = [
                self._export(kind, records[record_id])
                for record_id in order[start:stop]
            ]
            return len(order), page

    def search_records(
        self,
        kind: str,
        search: SearchRequest,
        start: int,
        stop: int | None,
        to_resource: Callable[[dict[str, Any]], Any],
    ) -> tuple[int, list[dict[str, Any]]]:
        """Filter and sort records as SCIM resources, then page them.

        Only a filter on userName eq is answered from an index; anything else
        reads every record (`to_resource` should reuse what it built before),
        which is what a real database is for. Only the page is copied out.
        """
        # What no backend answers, memory refuses too (shared/filter_plan.py).
        plan_search(kind, search)
        predicate = None
        matches = []
        for view in self._candidates(kind, search):
            resource = to_resource(view)
            if search.filter is not None:
                # Compiled once per scan, not resolved again for every record.
                predicate = predicate or compile_filter(search.filter, type(resource))
                if not predicate(resource):
                    continue
            matches.append((view, resource))
        if search.sort_by is not None:
            by_resource = {id(resource): view for view, resource in matches}
            ordered = search.sort(resource for _, resource in matches)
            views = [by_resource[id(resource)] for resource in ordered]
        else:
            views = [view for view, _ in matches]
        with self._lock:
            page = [
                self._export(kind, record)
                for view in views[start:stop]
                if (record := self._records[kind].get(view["id"])) is not None
            ]
        return len(views), page

    def _candidates(self, kind: str, search: SearchRequest) -> Any:
        node = search.filter.ast if search.filter is not None else None
        if (
            kind == USER
            and isinstance(node, Comparison)
            and node.op == CompareOperator.eq
            and node.attr_path.attr.lower() == "username"
            and node.attr_path.sub_attr is None
            and isinstance(node.value, str)
        ):
            record = self.find_user_by_user_name(node.value)
            return [record] if record else []
        return self._views(kind)

    def _views(self, kind: str) -> Iterator[dict[str, Any]]:
        """Every record, with its derived attributes, without copying its data.

        For scans: the lock is held one record at a time, so writers go on.
        Each view is made just before it is used and dropped right after, so
        a scan leaves nothing behind for the garbage collector to walk: with
        a large store, views kept alive a batch at a time set off full
        collections, each as slow as the scan itself.
        """
        with self._lock:
            ids = list(self._order[kind])
        for record_id in ids:
            with self._lock:
                record = self._records[kind].get(record_id)
                if record is None:  # deleted since the scan began
                    continue
                view = self._derive(kind, record, dict(record))
            yield view

    # --8<-- [end:storage-read]

    # --8<-- [start:storage-write]
    def save_record(
        self, kind: str, record: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Create (no `id`) or update a record, and return the stored copy.

        With `expected_version`, the update only happens if the stored record is
        still at that version: a compare-and-swap, so an If-Match check and the
        write it guards are one atomic step.
        """
        with self._lock:
            now = datetime.now(UTC)
            record = _copy(record)
            for derived in ("groups", "version", "created", "last_modified"):
                record.pop(derived, None)
            previous = self._records[kind].get(record["id"]) if "id" in record else None
            if "id" in record and previous is None:
                raise NotFoundException(detail=f"{kind} {record['id']} not found")
            if previous is not None and expected_version not in (
                None,
                previous["version"],
            ):
                raise PreconditionFailedException()
            if kind == USER:
                self._check_user_name(record, previous)
            else:
                self._check_members(record)

            if previous is None:
                record.update(id=uuid.uuid4().hex, version=1, created=now)
                self._order[kind].append(record["id"])
            else:
                record.update(version=previous["version"] + 1)
                record["created"] = previous["created"]
            record["last_modified"] = now

            if kind == USER:
                if previous is not None:
                    self._user_names.pop(fold(previous["user_name"]), None)
                self._user_names[fold(record["user_name"])] = record["id"]
            else:
                self._set_members(record["id"], record.pop("members"))
            self._records[kind][record["id"]] = record
            if previous is not None and display_of(previous) != display_of(record):
                self._touch_related(kind, record["id"])
            return self._export(kind, record)

    def delete_record(
        self, kind: str, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a record and every membership that mentions it."""
        with self._lock:
            record = self._records[kind].get(record_id)
            if record is None:
                raise NotFoundException(detail=f"{kind} {record_id} not found")
            if expected_version is not None and record["version"] != expected_version:
                raise PreconditionFailedException()
            del self._records[kind][record_id]
            self._order[kind].remove(record_id)  # O(n), but deletes are rare
            if kind == USER:
                self._user_names.pop(fold(record["user_name"]), None)
            else:
                self._set_members(record_id, [])
            # Referential integrity: a deleted resource is nobody's member.
            # The groups it left change, so their versions move on too.
            for group_id in self._member_of.pop(record_id, set()):
                self._members[group_id].pop(record_id, None)
                self._touch(GROUP, group_id)

    # --8<-- [end:storage-write]

    # --8<-- [start:storage-helpers]
    def _touch(self, kind: str, record_id: str) -> None:
        """Move a record to a new version when what is derived for it changes."""
        record = self._records[kind].get(record_id)
        if record is not None:
            record["version"] += 1
            record["last_modified"] = datetime.now(UTC)

    def _check_user_name(
        self, record: dict[str, Any], previous: dict[str, Any] | None
    ) -> None:
        owner = self._user_names.get(fold(record["user_name"]))
        if owner is not None and (previous is None or owner != previous["id"]):
            raise UniquenessException(
                detail=f"userName {record['user_name']!r} is already taken"
            )

    def _check_members(self, record: dict[str, Any]) -> None:
        for member in record["members"]:
            kind = member["type"]
            if kind not in KINDS or member["value"] not in self._records[kind]:
                raise InvalidValueException(
                    detail=f"member {member['value']!r} is not an existing {kind}"
                )
            if kind == GROUP and member["value"] == record.get("id"):
                raise InvalidValueException(detail="a group cannot contain itself")

    def _set_members(self, group_id: str, members: list[dict[str, Any]]) -> None:
        old = self._members.get(group_id, {})
        new = {
            member["value"]: {"type": member["type"], "display": member.get("display")}
            for member in members
        }
        for member_id in old.keys() - new.keys():
            self._member_of[member_id].discard(group_id)
            self._touch(old[member_id]["type"], member_id)  # its `groups` changed
        for member_id in new.keys() - old.keys():
            self._member_of.setdefault(member_id, set()).add(group_id)
            self._touch(new[member_id]["type"], member_id)
        if new:
            self._members[group_id] = new
        else:
            self._members.pop(group_id, None)

    def _export(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        """A copy of a stored record, with what the storage derives filled in."""
        return self._derive(kind, record, _copy(record))

    def _derive(
        self, kind: str, record: dict[str, Any], exported: dict[str, Any]
    ) -> dict[str, Any]:
        """Fill in `groups` (users) or `members` (groups) from the indexes."""
        if kind == USER:
            # RFC 7643 §4.1.2: groups is read-only, derived from memberships.
            group_ids = self._member_of.get(record["id"])
            if not group_ids:  # most users, in a scan: nothing to look up
                exported["groups"] = []
                return exported
            groups = [self._records[GROUP][gid] for gid in group_ids]
            exported["groups"] = [
                {"value": group["id"], "display": group["display_name"]}
                for group in sorted(groups, key=lambda g: (g["display_name"], g["id"]))
            ]
        else:
            # A display the client gave is kept; otherwise it is the member's name.
            exported["members"] = [
                {
                    "value": mid,
                    "type": member["type"],
                    "display": member["display"]
                    or display_of(self._records[member["type"]][mid]),
                }
                for mid, member in self._members.get(record["id"], {}).items()
            ]
        return exported

    def _touch_related(self, kind: str, record_id: str) -> None:
        """New versions for the records that show this one's display name."""
        for group_id in self._member_of.get(record_id, ()):
            self._touch(GROUP, group_id)
        if kind == GROUP:
            for member_id, member in self._members.get(record_id, {}).items():
                self._touch(member["type"], member_id)


def _copy(value: Any) -> Any:
    """A copy of JSON-like data: dicts and lists copied, leaves are immutable."""
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


# --8<-- [end:storage-helpers]


# --8<-- [start:backend]
def open_storage(url: str | None) -> Storage:
    """The backend a database URL names; no URL means in memory."""
    if not url:
        return MemoryStorage()
    from shared.sql_storage import SqlStorage

    return SqlStorage(url)


_backend: Storage | None = None
_opening = threading.Lock()


def use(chosen: Storage) -> None:
    """Serve from another backend from now on (tests, notebooks, the ORM recipe)."""
    global _backend
    _backend = chosen


def backend() -> Storage:
    """The backend the functions below act on: SCIM_DATABASE_URL's, at first use.

    Opening late lets the Django ORM recipe install its backend first.
    """
    global _backend
    if _backend is None:
        with _opening:
            if _backend is None:
                _backend = open_storage(os.environ.get("SCIM_DATABASE_URL"))
    return _backend


def get_record(kind: str, record_id: str) -> dict[str, Any] | None:
    return backend().get_record(kind, record_id)


def find_user_by_user_name(user_name: str) -> dict[str, Any] | None:
    return backend().find_user_by_user_name(user_name)


def list_records(
    kind: str, start: int = 0, stop: int | None = None
) -> tuple[int, list[dict[str, Any]]]:
    return backend().list_records(kind, start, stop)


def iter_records(kind: str, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every record of a kind, read a page at a time (exports, migrations)."""
    start = 0
    while True:
        _, page = list_records(kind, start, start + batch)
        yield from page
        if len(page) < batch:
            return
        start += batch


def search_records(
    kind: str,
    search: SearchRequest,
    start: int,
    stop: int | None,
    to_resource: Callable[[dict[str, Any]], Any],
) -> tuple[int, list[dict[str, Any]]]:
    return backend().search_records(kind, search, start, stop, to_resource)


def save_record(
    kind: str, record: dict[str, Any], expected_version: int | None = None
) -> dict[str, Any]:
    return backend().save_record(kind, record, expected_version)


def delete_record(
    kind: str, record_id: str, expected_version: int | None = None
) -> None:
    backend().delete_record(kind, record_id, expected_version)


def reset() -> None:
    backend().reset()


# --8<-- [end:backend]
