"""Where records live, behind one small API: in memory by default, or in SQL.

The module-level functions (`get_record`, `list_records`, `save_record`, ...)
are the API the rest of the cookbook uses. They act on one backend per
process, chosen by `SCIM_DATABASE_URL`: unset, the `MemoryStorage` below;
`sqlite:///path` or `postgresql+psycopg://...`, `shared.sql_storage.SqlStorage`.

Every backend keeps each tenant's records apart (shared/tenants.py): `backend()`
hands out the storage scoped to the tenant of the request being served.

`MemoryStorage` keeps records in dicts behind one lock, so every operation is
atomic across threads. Indexes answer the questions a request asks (by id, by
folded userName, who belongs to which group), so no call scans or copies the
whole store. Callers get copies of records, never the stored dicts.
"""

import itertools
import os
import threading
import uuid
from bisect import bisect_left
from bisect import bisect_right
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import Any

from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import ScimFilter
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison
from scim2_models.path import LogicalExpr
from scim2_models.path import LogicalOperator
from scim2_models.path import Not
from scim2_models.path import ValuePath

from shared.compiled_filter import compile_filter
from shared.filter_plan import plan_search
from shared.records import GROUP
from shared.records import KINDS
from shared.records import SCHEMAS
from shared.records import USER
from shared.records import Storage
from shared.records import display_of
from shared.records import fold
from shared.tenants import DEFAULT_TENANT
from shared.tenants import current_tenant

__all__ = ["GROUP", "KINDS", "USER", "MemoryStorage", "Storage", "fold"]


class MemoryStorage:
    """Users and groups in dicts, guarded by one re-entrant lock.

    Each tenant has a MemoryStorage of its own, with its own dicts and
    indexes: no lookup can find another tenant's record, because none is
    there to find. `for_tenant` gives it; they share the lock and `reset`.
    """

    def __init__(self, tenant: str = DEFAULT_TENANT, family: Any = None) -> None:
        self.tenant = tenant
        if family is None:  # the first of the family: the default tenant's
            family = {tenant: self}
            self._lock = threading.RLock()
        else:
            self._lock = next(iter(family.values()))._lock
        self._family: dict[str, MemoryStorage] = family
        self._clear()

    # --8<-- [start:memory-tenants]
    def for_tenant(self, tenant: str) -> "MemoryStorage":
        """The storage of one tenant's records, made at its first request."""
        scoped = self._family.get(tenant)
        if scoped is None:
            with self._lock:
                scoped = self._family.get(tenant)
                if scoped is None:
                    scoped = MemoryStorage(tenant, self._family)
                    self._family[tenant] = scoped
        return scoped

    # --8<-- [end:memory-tenants]

    def reset(self) -> None:
        """Forget everything, every tenant's: for tests, notebooks and demos."""
        with self._lock:
            for scoped in self._family.values():
                scoped._clear()

    def _clear(self) -> None:
        with self._lock:
            self._records: dict[str, dict[str, dict[str, Any]]] = {
                kind: {} for kind in KINDS
            }
            # Ids in creation order: the stable default order that makes
            # consecutive pages disjoint (RFC 7644 §3.4.2.4), sliced in O(page).
            self._order: dict[str, list[str]] = {kind: [] for kind in KINDS}
            self._seq: dict[str, int] = {}  # id -> rank in creation order
            # Ranks are never given again, even once their record is deleted:
            # a cursor's position must keep meaning the same place.
            self._ranks = itertools.count()
            self._user_names: dict[str, str] = {}  # folded userName -> user id
            # group id -> {member id: {"type": "User" or "Group", "display": ...}}
            self._members: dict[str, dict[str, dict[str, Any]]] = {}
            self._member_of: dict[str, set[str]] = {}  # member id -> group ids

    # --8<-- [start:storage-read]
    def get_record(
        self, kind: str, record_id: str, members: bool = True
    ) -> dict[str, Any] | None:
        """A copy of one record, or None; `members=False` leaves a group's out."""
        with self._lock:
            record = self._records[kind].get(record_id)
            return self._export(kind, record, members) if record else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """A copy of the user with this userName, in any letter case."""
        with self._lock:
            user_id = self._user_names.get(fold(user_name))
            return self.get_record(USER, user_id) if user_id else None

    def list_records(
        self,
        kind: str,
        start: int = 0,
        stop: int | None = None,
        members: bool = True,
        *,
        past: int | None = None,
        backwards: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many records of a kind exist, and copies of those in [start:stop)."""
        with self._lock:
            records, order = self._records[kind], self._order[kind]
            ids = in_creation_order(
                order, self._seq.__getitem__, start, stop, past, backwards
            )
            return len(order), [
                self._export(kind, records[record_id], members) for record_id in ids
            ]

    def search_records(
        self,
        kind: str,
        search: SearchRequest,
        start: int,
        stop: int | None,
        to_resource: Callable[[dict[str, Any]], Any],
        members: bool = True,
        *,
        past: int | None = None,
        backwards: bool = False,
    ) -> tuple[int, list[dict[str, Any]]]:
        """Filter and sort records as SCIM resources, then page them.

        The terms of a filter an index answers (`id eq`, `userName eq`, and
        `members[value eq]`, Entra ID's membership probe) pick the candidates;
        the other terms read each candidate as a resource (`to_resource` should
        reuse what it built before), which is what a real database is for. A
        group's member list is read only when a term or the answer needs it.
        Only the page is copied out.
        """
        # What no backend answers, memory refuses too (shared/filter_plan.py).
        plan_search(kind, search)
        candidates, rest = self._narrow(kind, search.filter)
        needs_members = members or (rest is not None and _names_members(rest.ast))
        predicate = None
        matches = []
        for view in self._views(kind, candidates, needs_members):
            resource = None
            if rest is not None:
                resource = to_resource(view)
                # Compiled once per scan, not resolved again for every record.
                predicate = predicate or compile_filter(rest, type(resource))
                if not predicate(resource):
                    continue
            matches.append((view, resource))
        if backwards:  # a cursor going back: newest first, before `past`
            views = [
                view
                for view, _ in reversed(matches)
                if past is None or view["position"] < past
            ]
        elif past is not None:  # a cursor: creation order, after `past`
            views = [view for view, _ in matches if view["position"] > past]
        elif search.sort_by is not None:
            resources = [resource or to_resource(view) for view, resource in matches]
            by_resource = {
                id(resource): view
                for (view, _), resource in zip(matches, resources, strict=True)
            }
            views = [by_resource[id(resource)] for resource in search.sort(resources)]
        else:
            views = [view for view, _ in matches]
        with self._lock:
            page = [
                self._export(kind, record, members)
                for view in views[start:stop]
                if (record := self._records[kind].get(view["id"])) is not None
            ]
        return len(matches), page

    def _narrow(
        self, kind: str, scim_filter: ScimFilter | None
    ) -> tuple[set[str] | None, ScimFilter | None]:
        """The ids an index gives for a filter's AND terms, and the terms left."""
        if scim_filter is None:
            return None, None
        node = scim_filter.ast
        is_and = isinstance(node, LogicalExpr) and node.op == LogicalOperator.and_
        candidates, rest = None, []
        for term in node.terms if is_and else (node,):
            found = self._indexed(kind, term)
            if found is None:
                rest.append(term)
            else:
                candidates = found if candidates is None else candidates & found
        if not rest:
            return candidates, None
        if len(rest) == 1:
            return candidates, ScimFilter(rest[0])
        return candidates, ScimFilter(LogicalExpr(LogicalOperator.and_, tuple(rest)))

    def _indexed(self, kind: str, term: Any) -> set[str] | None:
        """The ids of the records matching a term, when an index answers it."""
        if isinstance(term, ValuePath) and kind == GROUP:
            term = _flattened(term)  # members[value eq "x"] is members.value eq "x"
        if not (
            isinstance(term, Comparison)
            and term.op == CompareOperator.eq
            and isinstance(term.value, str)
            and term.attr_path.uri in (None, SCHEMAS[kind])
        ):
            return None
        attr = term.attr_path.attr.lower()
        sub_attr = (term.attr_path.sub_attr or "").lower()
        with self._lock:
            if (attr, sub_attr) == ("id", ""):  # ids are caseExact
                return {term.value} if term.value in self._records[kind] else set()
            if kind == USER and (attr, sub_attr) == ("username", ""):
                user_id = self._user_names.get(fold(term.value))
                return {user_id} if user_id else set()
            if kind == GROUP and (attr, sub_attr) == ("members", "value"):
                return set(self._member_of.get(term.value, ()))
        return None

    def _views(
        self, kind: str, ids: set[str] | None = None, members: bool = True
    ) -> Iterator[dict[str, Any]]:
        """Records (all, or those of `ids`) with derived attributes, data uncopied.

        For scans: the lock is held one record at a time, so writers go on.
        Each view is made just before it is used and dropped right after, so
        a scan leaves nothing behind for the garbage collector to walk: with
        a large store, views kept alive a batch at a time set off full
        collections, each as slow as the scan itself.
        """
        with self._lock:
            if ids is None:
                ids = list(self._order[kind])
            else:  # in creation order, as a scan would find them
                ids = sorted(ids & self._records[kind].keys(), key=self._seq.get)
        for record_id in ids:
            with self._lock:
                record = self._records[kind].get(record_id)
                if record is None:  # deleted since the scan began
                    continue
                view = self._derive(kind, record, dict(record), members)
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
                self._seq[record["id"]] = next(self._ranks)
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
                self._touch_related(record["id"])
            return self._export(kind, record)

    # --8<-- [end:storage-write]

    # --8<-- [start:update-group]
    def update_group(
        self,
        group_id: str,
        fields: dict[str, Any] | None,
        add: list[dict[str, Any]],
        remove: list[str],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Change a group's fields and some members, in O(members changed)."""
        with self._lock:
            record = self._records[GROUP].get(group_id)
            if record is None:
                raise NotFoundException(detail=f"{GROUP} {group_id} not found")
            if expected_version not in (None, record["version"]):
                raise PreconditionFailedException()
            members = self._members.get(group_id, {})
            # A member already there joins again only to change its display.
            joining = [
                member
                for member in add
                if (now := members.get(member["value"])) is None
                or member.get("display") not in (None, now["display"])
            ]
            self._check_members({"id": group_id, "members": joining})
            leaving = [member_id for member_id in remove if member_id in members]
            changed = fields is not None and any(
                record[name] != value for name, value in fields.items()
            )
            if not (joining or leaving or changed):
                return self._export(GROUP, record, members=False)
            previous_display = display_of(record)
            if changed:
                record.update(_copy(fields))
            members = self._members.setdefault(group_id, {})
            for member_id in leaving:
                gone = members.pop(member_id)
                self._member_of[member_id].discard(group_id)
                self._touch(gone["type"], member_id)  # its `groups` changed
            for member in joining:
                member_id = member["value"]
                if member_id not in members:
                    self._member_of.setdefault(member_id, set()).add(group_id)
                    self._touch(member["type"], member_id)
                members[member_id] = {
                    "type": member["type"],
                    "display": member.get("display"),
                }
            if not members:
                del self._members[group_id]
            self._touch(GROUP, group_id)
            if display_of(record) != previous_display:
                self._touch_related(group_id)
            return self._export(GROUP, record, members=False)

    # --8<-- [end:update-group]

    # --8<-- [start:storage-delete]
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
            del self._seq[record_id]
            if kind == USER:
                self._user_names.pop(fold(record["user_name"]), None)
            else:
                self._set_members(record_id, [])
            # Referential integrity: a deleted resource is nobody's member.
            # The groups it left change, so their versions move on too.
            for group_id in self._member_of.pop(record_id, set()):
                self._members[group_id].pop(record_id, None)
                self._touch(GROUP, group_id)

    # --8<-- [end:storage-delete]

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

    def _export(
        self, kind: str, record: dict[str, Any], members: bool = True
    ) -> dict[str, Any]:
        """A copy of a stored record, with what the storage derives filled in."""
        return self._derive(kind, record, _copy(record), members)

    def _derive(
        self,
        kind: str,
        record: dict[str, Any],
        exported: dict[str, Any],
        members: bool = True,
    ) -> dict[str, Any]:
        """Fill in `position`, and `groups` (users) or `members` (groups, if asked)."""
        exported["position"] = self._seq[record["id"]]
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
        elif members:
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

    def _touch_related(self, record_id: str) -> None:
        """New versions for the groups that show this one's display name.

        Not for a renamed group's own members: the `display` in a user's
        `groups` is a label, not the user's data, and bumping 100,000 users
        would make a rename cost as much as the group is large.
        """
        for group_id in self._member_of.get(record_id, ()):
            self._touch(GROUP, group_id)


# --8<-- [start:memory-keyset]
def in_creation_order(
    ids: list[str],
    rank: Callable[[str], int],
    start: int,
    stop: int | None,
    past: int | None,
    backwards: bool,
) -> list[str]:
    """[start:stop) of `ids` (in creation order) from position `past` on, or
    back from it, newest first.

    Positions grow along the list, so bisection finds where a keyset starts:
    a cursor's page costs O(log n + page), never a scan.
    """
    if backwards:  # from before `past`, or from the last one
        end = len(ids) if past is None else bisect_left(ids, past, key=rank)
        first = 0 if stop is None else max(0, end - stop)
        return ids[first : max(0, end - start)][::-1]
    begin = 0 if past is None else bisect_right(ids, past, key=rank)
    return ids[begin + start : None if stop is None else begin + stop]


# --8<-- [end:memory-keyset]


def _flattened(term: ValuePath) -> Any:
    """`members[value eq "x"]` as `members.value eq "x"`, other selections as is."""
    inner = term.val_filter
    if (
        term.sub_attr is None
        and isinstance(inner, Comparison)
        and inner.attr_path.uri is None
        and inner.attr_path.sub_attr is None
    ):
        path = replace(term.attr_path, sub_attr=inner.attr_path.attr)
        return replace(inner, attr_path=path)
    return term


def _names_members(node: Any) -> bool:
    """Whether a filter asks anything of a group's members."""
    if isinstance(node, LogicalExpr):
        return any(_names_members(term) for term in node.terms)
    if isinstance(node, Not):
        return _names_members(node.expr)
    return node.attr_path.attr.lower() == "members"


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
    """The backend the functions below act on, scoped to the current tenant.

    SCIM_DATABASE_URL's, opened at first use: opening late lets the Django ORM
    recipe install its backend first.
    """
    return scoped(unscoped(), current_tenant())


def unscoped() -> Storage:
    """The backend itself, every tenant's, as `use()` installed it."""
    global _backend
    if _backend is None:
        with _opening:
            if _backend is None:
                _backend = open_storage(os.environ.get("SCIM_DATABASE_URL"))
    return _backend


# --8<-- [end:backend]


# --8<-- [start:scoped]
class TenancyError(RuntimeError):
    """A storage that keeps one tenant's records was asked for another's."""


def scoped(chosen: Storage, tenant: str) -> Storage:
    """`chosen`, scoped to `tenant`'s records.

    A storage that keeps tenants apart says so by having `for_tenant(tenant)`,
    which returns a Storage that sees that tenant's records only. One that
    cannot (an application's existing users table, say) serves the default
    tenant alone: a request from any other is refused, never given its data.
    """
    for_tenant = getattr(chosen, "for_tenant", None)
    if for_tenant is not None:
        return for_tenant(tenant)
    if tenant != DEFAULT_TENANT:
        raise TenancyError(
            f"{type(chosen).__name__} keeps one tenant's records: it serves "
            f"the {DEFAULT_TENANT!r} tenant only, not {tenant!r}"
        )
    return chosen


def check_tenants(tenants: Iterable[str]) -> None:
    """Refuse, at startup, tenants the backend cannot keep apart."""
    others = sorted(set(tenants) - {DEFAULT_TENANT})
    chosen = unscoped() if others else None
    if chosen is not None and getattr(chosen, "for_tenant", None) is None:
        raise TenancyError(
            f"{type(chosen).__name__} keeps one tenant's records, so it cannot "
            f"serve {', '.join(others)}: configure the {DEFAULT_TENANT!r} tenant only"
        )


# --8<-- [end:scoped]


# --8<-- [start:facade]


def get_record(
    kind: str, record_id: str, members: bool = True
) -> dict[str, Any] | None:
    return backend().get_record(kind, record_id, members)


def find_user_by_user_name(user_name: str) -> dict[str, Any] | None:
    return backend().find_user_by_user_name(user_name)


def list_records(
    kind: str,
    start: int = 0,
    stop: int | None = None,
    members: bool = True,
    *,
    past: int | None = None,
    backwards: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    return backend().list_records(
        kind, start, stop, members, past=past, backwards=backwards
    )


def iter_records(kind: str, batch: int = 500) -> Iterator[dict[str, Any]]:
    """Every record of a kind, read a page at a time (exports, migrations).

    Each page resumes past the last one's position, so records created or
    deleted meanwhile never make it skip or repeat another.
    """
    past = None
    while True:
        _, page = list_records(kind, 0, batch, past=past)
        yield from page
        if len(page) < batch:
            return
        past = page[-1]["position"]


def search_records(
    kind: str,
    search: SearchRequest,
    start: int,
    stop: int | None,
    to_resource: Callable[[dict[str, Any]], Any],
    members: bool = True,
    *,
    past: int | None = None,
    backwards: bool = False,
) -> tuple[int, list[dict[str, Any]]]:
    return backend().search_records(
        kind,
        search,
        start,
        stop,
        to_resource,
        members,
        past=past,
        backwards=backwards,
    )


def save_record(
    kind: str, record: dict[str, Any], expected_version: int | None = None
) -> dict[str, Any]:
    return backend().save_record(kind, record, expected_version)


def update_group(
    group_id: str,
    fields: dict[str, Any] | None,
    add: list[dict[str, Any]],
    remove: list[str],
    expected_version: int | None = None,
) -> dict[str, Any]:
    return backend().update_group(group_id, fields, add, remove, expected_version)


def delete_record(
    kind: str, record_id: str, expected_version: int | None = None
) -> None:
    backend().delete_record(kind, record_id, expected_version)


def reset() -> None:
    backend().reset()


# --8<-- [end:facade]
