"""The storage API on the Django ORM: SCIM records in a Django project's database.

Same functions, same records and same guarantees as `MemoryStorage` and
`shared.sql_storage.SqlStorage`, written the Django way, with nothing of
SQLAlchemy:

- a filter is planned once for every backend (shared/filter_plan.py), and
  the plan written as a `Q` object (`where`, in the `orm-filter` section):
  multi-valued attributes are `Exists` subqueries, JSON arrays in `extra` an
  EXISTS over `json_each` / `jsonb_array_elements`; sorting is `order_by`,
  paging a slice (or, for cursors, a keyset on `seq`) and totalResults
  `count()`;
- userName uniqueness is a unique constraint on the folded value, so two
  workers creating the same user race into an IntegrityError, answered 409;
- an If-Match write is `filter(version=read).update(version=F("version") + 1)`
  in `transaction.atomic()`, a compare-and-swap;
- group memberships are rows of their own, written as a diff;
- users and groups carry their tenant, and every query of a storage scoped by
  `for_tenant` asks for that tenant's rows only (`_objects`).

The models are in models.py; SCIM_DJANGO_ORM=1 switches to this backend (apps.py).
"""

import functools
import operator
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from django.core.exceptions import FullResultSet
from django.db import DEFAULT_DB_ALIAS
from django.db import IntegrityError
from django.db import NotSupportedError
from django.db import OperationalError
from django.db import connections
from django.db import transaction
from django.db.models import BooleanField
from django.db.models import Case
from django.db.models import DateTimeField
from django.db.models import Exists
from django.db.models import Expression
from django.db.models import F
from django.db.models import FloatField
from django.db.models import Func
from django.db.models import IntegerField
from django.db.models import Model
from django.db.models import OuterRef
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import Subquery
from django.db.models import TextField
from django.db.models import Value
from django.db.models import When
from django.db.models import lookups
from django.db.models.functions import Coalesce
from django.db.models.functions import Left
from django.db.models.functions import NullIf
from django.db.models.functions import Right
from django.db.models.functions import StrIndex
from django.utils import timezone
from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from scim2_models.path import CompareOperator

from integrations.django_app.models import Membership
from integrations.django_app.models import ScimGroup
from integrations.django_app.models import ScimUser
from integrations.django_app.models import UserEmail
from integrations.django_app.models import UserPhoneNumber
from shared.filter_plan import ROW_COLUMNS
from shared.filter_plan import AllOf
from shared.filter_plan import AnyOf
from shared.filter_plan import Column
from shared.filter_plan import Compare
from shared.filter_plan import IsNull
from shared.filter_plan import IsPresent
from shared.filter_plan import JsonArray
from shared.filter_plan import JsonKey
from shared.filter_plan import Negation
from shared.filter_plan import Plan
from shared.filter_plan import Rows
from shared.filter_plan import Some
from shared.filter_plan import SortKey
from shared.filter_plan import Truth
from shared.filter_plan import plan_filter
from shared.filter_plan import plan_sort
from shared.records import DEADLOCK_ATTEMPTS
from shared.records import GROUP
from shared.records import KINDS
from shared.records import RETRYABLE_SQLSTATES
from shared.records import USER
from shared.records import USER_RECORD_FIELDS
from shared.records import fold
from shared.records import row_values
from shared.tenants import DEFAULT_TENANT

MODELS: dict[str, type[Model]] = {USER: ScimUser, GROUP: ScimGroup}
TENANT_MODELS = (ScimUser, ScimGroup)
MULTI_VALUED: dict[str, type[Model]] = {
    "emails": UserEmail,
    "phone_numbers": UserPhoneNumber,
}


def _retry_on_deadlock(write: Callable[..., Any]) -> Callable[..., Any]:
    """Run a write transaction again when PostgreSQL picked it as a deadlock victim.

    Only a transaction of our own can be run again: inside a caller's atomic
    block (ATOMIC_REQUESTS), the error is the caller's to handle.
    """

    @functools.wraps(write)
    def retrying(self: "DjangoOrmStorage", *args: Any, **kwargs: Any) -> Any:
        for attempt in range(DEADLOCK_ATTEMPTS):
            try:
                return write(self, *args, **kwargs)
            except OperationalError as exc:
                state = getattr(exc.__cause__, "sqlstate", None)
                if (
                    state not in RETRYABLE_SQLSTATES
                    or attempt == DEADLOCK_ATTEMPTS - 1
                    or connections[self.using].in_atomic_block
                ):
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    return retrying


class DjangoOrmStorage:
    """The storage API on the models of integrations/django_app/models.py."""

    # --8<-- [start:orm-tenants]
    def __init__(
        self, using: str = DEFAULT_DB_ALIAS, tenant: str = DEFAULT_TENANT
    ) -> None:
        self.using = using  # the DATABASES alias
        self.tenant = tenant
        self._scoped: dict[str, DjangoOrmStorage] = {tenant: self}

    def for_tenant(self, tenant: str) -> "DjangoOrmStorage":
        """This storage, scoped to `tenant`'s rows."""
        scoped = self._scoped.get(tenant)
        if scoped is None:
            scoped = DjangoOrmStorage(self.using, tenant)
            scoped._scoped = self._scoped
            scoped = self._scoped.setdefault(tenant, scoped)
        return scoped

    # --8<-- [end:orm-tenants]

    def reset(self) -> None:
        """Forget everything, every tenant's: for tests, notebooks and demos."""
        with transaction.atomic(using=self.using):
            for model in (Membership, UserEmail, UserPhoneNumber, ScimUser, ScimGroup):
                model.objects.using(self.using).delete()

    # --8<-- [start:orm-read]
    def get_record(
        self, kind: str, record_id: str, members: bool = True
    ) -> dict[str, Any] | None:
        """A record, or None; `members=False` leaves a group's out, unread."""
        rows = self._objects(MODELS[kind]).filter(scim_id=record_id)
        records = self._records(kind, rows, members)
        return records[0] if records else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName, in any letter case (one index lookup)."""
        rows = self._objects(ScimUser).filter(user_name_key=fold(user_name))
        records = self._records(USER, rows)
        return records[0] if records else None

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
        """How many records of a kind exist, and those in [start:stop)."""
        rows = self._objects(MODELS[kind])
        page = _page(in_creation_order(rows, past, backwards), start, stop)
        return rows.count(), self._records(kind, page, members)

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
        """Filter, sort and page in the database: WHERE, ORDER BY, LIMIT/OFFSET.

        shared/filter_plan.py plans the filter and the sort (and refuses, with
        InvalidFilterException, what no backend answers); `where` and
        `sort_value` write the plan for the ORM.
        """
        rows = self._objects(MODELS[kind])
        if search.filter is not None:
            rows = rows.filter(where(plan_filter(kind, search.filter)))
        order = []
        # None: no sortBy, or an attribute this type does not have, whose
        # records have no value and keep their stable order (RFC 7644 §3.4.2.3).
        key = plan_sort(kind, search)
        if key is not None:
            value = sort_value(key)
            if search.sort_order == SearchRequest.SortOrder.descending:
                order.append(value.desc(nulls_first=True))
            else:
                order.append(value.asc(nulls_last=True))
        if past is None and not backwards:
            page = rows.order_by(*order, "seq")
        else:  # a cursor's page: creation order only
            page = in_creation_order(rows, past, backwards)
        return rows.count(), self._records(kind, _page(page, start, stop), members)

    # --8<-- [end:orm-read]

    # --8<-- [start:orm-write]
    @_retry_on_deadlock
    def save_record(
        self, kind: str, record: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Create (no `id`) or update a record; with `expected_version`, a CAS."""
        model = MODELS[kind]
        fields = row_values(kind, record)
        with transaction.atomic(using=self.using):
            if "id" in record:
                record_id = record["id"]
                # Locked, so the display name compared below is the one replaced.
                previous = (
                    self._objects(model)
                    .select_for_update()
                    .filter(scim_id=record_id)
                    .first()
                )
                if previous is None:
                    raise NotFoundException(detail=f"{kind} {record_id} not found")
                # Read once the row is ours: a later write never looks older.
                now = timezone.now()
                guard = Q(scim_id=record_id)
                if expected_version is not None:
                    guard &= Q(version=expected_version)
                changed = _unique(
                    record,
                    lambda: (
                        self._objects(model)
                        .filter(guard)
                        .update(version=F("version") + 1, last_modified=now, **fields)
                    ),
                )
                if not changed:
                    raise PreconditionFailedException()
                before = _display(
                    previous.display_name, getattr(previous, "user_name", None)
                )
                if before != _display(fields["display_name"], fields.get("user_name")):
                    self._touch_related(record_id, now)
            else:
                record_id = uuid.uuid4().hex
                now = timezone.now()
                _unique(
                    record,
                    lambda: self._objects(model).create(
                        tenant=self.tenant,
                        scim_id=record_id,
                        version=1,
                        created=now,
                        last_modified=now,
                        **fields,
                    ),
                )
            if kind == USER:
                self._write_multi_valued(record_id, record)
            else:
                self._write_members(record_id, record["members"], now)
            return self.get_record(kind, record_id)

    @_retry_on_deadlock
    def update_group(
        self,
        group_id: str,
        fields: dict[str, Any] | None,
        add: list[dict[str, Any]],
        remove: list[str],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Change a group's fields and some members: one row per member named."""
        groups = self._objects(ScimGroup)
        with transaction.atomic(using=self.using):
            # Locks the group first, as every writer does (no deadlock cycle).
            previous = groups.select_for_update().filter(scim_id=group_id).first()
            if previous is None:
                raise NotFoundException(detail=f"{GROUP} {group_id} not found")
            if expected_version not in (None, previous.version):
                raise PreconditionFailedException()
            now = timezone.now()
            current = dict(
                self._objects(Membership)
                .filter(group_id=group_id, member_id__in=[m["value"] for m in add])
                .values_list("member_id", "display")
            )
            joining = [m for m in add if m["value"] not in current]
            # A member already there is written again only for a new display.
            redisplayed = [
                m
                for m in add
                if m["value"] in current
                and m.get("display") not in (None, current[m["value"]])
            ]
            self._join(group_id, joining, redisplayed, now)
            left = self._leave(group_id, remove, now)
            changed = fields is not None and any(
                getattr(previous, name) != value for name, value in fields.items()
            )
            if joining or redisplayed or left or changed:
                groups.filter(scim_id=group_id).update(
                    version=F("version") + 1, last_modified=now, **(fields or {})
                )
                if changed and _display(previous.display_name) != _display(
                    fields["display_name"]
                ):
                    self._touch_related(group_id, now)
            return self.get_record(GROUP, group_id, members=False)

    @_retry_on_deadlock
    def delete_record(
        self, kind: str, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a record and every membership that mentions it."""
        model = MODELS[kind]
        memberships = self._objects(Membership).filter(member_id=record_id)
        with transaction.atomic(using=self.using):
            # Lock the groups it belongs to before the record itself: writers
            # always lock groups, then their members, so they cannot deadlock.
            groups = self._objects(ScimGroup).filter(
                scim_id__in=memberships.values("group_id")
            )
            list(groups.select_for_update().order_by("scim_id").values_list("pk"))
            # Django deletes in two steps (it collects the rows that cascade),
            # so the version is checked on a locked row, not in the DELETE.
            row = self._objects(model).select_for_update().filter(scim_id=record_id)
            version = row.values_list("version", flat=True).first()
            if version is None:
                raise NotFoundException(detail=f"{kind} {record_id} not found")
            if expected_version is not None and version != expected_version:
                raise PreconditionFailedException()
            now = timezone.now()
            # Read now that the row is ours: a member add that committed while
            # we waited for it (the add locks this row too) is seen as well.
            group_ids = list(memberships.values_list("group_id", flat=True))
            if kind == GROUP:
                self._write_members(record_id, [], now)
            row.delete()
            # Referential integrity: a deleted resource is nobody's member, and
            # the groups it left show it no more: their versions move on.
            memberships.delete()
            self._touch(GROUP, group_ids, now)

    # --8<-- [end:orm-write]

    # --8<-- [start:orm-helpers]
    # --8<-- [start:orm-objects]
    def _objects(self, model: type[Model]) -> QuerySet:
        """A model's rows; of users and groups, this tenant's only.

        The rows of memberships, emails and phone numbers name their user or
        group by id, and are only ever reached through one of this tenant's.
        """
        rows = model.objects.using(self.using)
        if model in TENANT_MODELS:
            rows = rows.filter(tenant=self.tenant)
        return rows

    # --8<-- [end:orm-objects]

    def _write_multi_valued(self, user_id: str, record: dict[str, Any]) -> None:
        for field_name, model in MULTI_VALUED.items():
            self._objects(model).filter(user_id=user_id).delete()
            self._objects(model).bulk_create(
                model(
                    user_id=user_id,
                    position=position,
                    **{key: entry.get(key) for key in ROW_COLUMNS},
                )
                for position, entry in enumerate(record.get(field_name) or [])
            )

    def _write_members(
        self, group_id: str, members: list[dict[str, Any]], now: datetime
    ) -> None:
        """Make the membership rows those of `members`, writing only the diff."""
        memberships = self._objects(Membership).filter(group_id=group_id)
        current = {row.member_id: row for row in memberships}
        wanted = {member["value"]: member for member in members}
        self._join(
            group_id,
            [member for key, member in wanted.items() if key not in current],
            [
                member
                for key, member in wanted.items()
                if key in current and current[key].display != member.get("display")
            ],
            now,
        )
        self._leave(group_id, [key for key in current if key not in wanted], now)

    def _join(
        self,
        group_id: str,
        joining: list[dict[str, Any]],
        redisplayed: list[dict[str, Any]],
        now: datetime,
    ) -> None:
        """Insert a row per member joining, and give members a new display."""
        for member in joining:
            kind, member_id = member["type"], member["value"]
            if kind == GROUP and member_id == group_id:
                raise InvalidValueException(detail="a group cannot contain itself")
            # Bumping the version of a joining member (its `groups` changes) is
            # also the check that it exists: the UPDATE locks its row, so a
            # concurrent delete of it either already happened (no row) or waits.
            if kind not in KINDS or not self._touch(kind, [member_id], now):
                raise InvalidValueException(
                    detail=f"member {member_id!r} is not an existing {kind}"
                )
        memberships = self._objects(Membership).filter(group_id=group_id)
        for member in redisplayed:
            memberships.filter(member_id=member["value"]).update(
                display=member.get("display")
            )
        self._objects(Membership).bulk_create(
            Membership(
                group_id=group_id,
                member_id=member["value"],
                member_type=member["type"],
                display=member.get("display"),
            )
            for member in joining
        )

    def _leave(self, group_id: str, member_ids: list[str], now: datetime) -> int:
        """Delete the rows of members leaving; how many there were."""
        if not member_ids:
            return 0
        leaving = self._objects(Membership).filter(
            group_id=group_id, member_id__in=member_ids
        )
        left = list(leaving.values_list("member_id", "member_type"))
        leaving.delete()
        for kind in KINDS:  # the members that left show other `groups` now
            self._touch(kind, [m for m, of_kind in left if of_kind == kind], now)
        return len(left)

    def _touch(self, kind: str, record_ids: list[str], now: datetime) -> int:
        """New versions for records whose derived attributes changed; how many."""
        if not record_ids:
            return 0
        return (
            self._objects(MODELS[kind])
            .filter(scim_id__in=record_ids)
            .update(version=F("version") + 1, last_modified=now)
        )

    def _touch_related(self, record_id: str, now: datetime) -> None:
        """New versions for the groups that show this one's display name.

        Not for a renamed group's own members: the `display` in a user's
        `groups` is a label, not the user's data, and bumping 100,000 users
        would make a rename cost as much as the group is large.
        """
        group_ids = (
            self._objects(Membership)
            .filter(member_id=record_id)
            .values_list("group_id", flat=True)
        )
        self._touch(GROUP, list(group_ids), now)

    def _records(
        self, kind: str, rows: QuerySet, members: bool = True
    ) -> list[dict[str, Any]]:
        """Records for rows, with child and derived data loaded in a few queries."""
        if kind == USER:
            return self._user_records(rows)
        return self._group_records(rows, members)

    def _user_records(self, rows: QuerySet) -> list[dict[str, Any]]:
        users = list(rows.prefetch_related("emails", "phone_numbers"))
        # RFC 7643 §4.1.2: groups is read-only, derived from memberships.
        groups: dict[str, list[dict[str, Any]]] = {}
        memberships = (
            self._objects(Membership)
            .filter(member_id__in=[user.scim_id for user in users], member_type=USER)
            .order_by("group__display_name", "group_id")
            .values_list("member_id", "group_id", "group__display_name")
        )
        for member_id, group_id, display in memberships:
            groups.setdefault(member_id, []).append(
                {"value": group_id, "display": display}
            )
        records = []
        for user in users:
            record = {name: getattr(user, name) for name in USER_RECORD_FIELDS}
            if not record["password_hash"]:
                del record["password_hash"]  # as MemoryStorage: only when set
            record.update(
                id=user.scim_id,
                version=user.version,
                created=user.created,
                position=user.seq,
                last_modified=user.last_modified,
                extra=user.extra,
                emails=[_entry(email) for email in user.emails.all()],
                phone_numbers=[_entry(phone) for phone in user.phone_numbers.all()],
                groups=groups.get(user.scim_id, []),
            )
            records.append(record)
        return records

    def _group_records(
        self, rows: QuerySet, members: bool = True
    ) -> list[dict[str, Any]]:
        groups = list(rows.prefetch_related("memberships") if members else rows)
        records = [
            {
                "id": group.scim_id,
                "version": group.version,
                "created": group.created,
                "position": group.seq,
                "last_modified": group.last_modified,
                "display_name": group.display_name,
                "external_id": group.external_id,
                "extra": group.extra,
            }
            for group in groups
        ]
        if not members:
            return records
        memberships = [m for group in groups for m in group.memberships.all()]
        names = self._display_names(memberships)
        for record, group in zip(records, groups, strict=True):
            # A display the client gave is kept; otherwise it is the member's name.
            record["members"] = [
                {
                    "value": m.member_id,
                    "type": m.member_type,
                    "display": m.display or names.get(m.member_id),
                }
                for m in group.memberships.all()
            ]
        return records

    def _display_names(self, memberships: list[Membership]) -> dict[str, str | None]:
        """The name each member shows: displayName, else userName for a user."""
        ids = {kind: [] for kind in KINDS}
        for membership in memberships:
            if not membership.display and membership.member_type in ids:
                ids[membership.member_type].append(membership.member_id)
        users = self._objects(ScimUser).filter(scim_id__in=ids[USER])
        names = {
            user_id: display_name or user_name
            for user_id, display_name, user_name in users.values_list(
                "scim_id", "display_name", "user_name"
            )
        }
        groups = self._objects(ScimGroup).filter(scim_id__in=ids[GROUP])
        # As shared.records.display_of: an empty name is no name.
        names.update(
            (group_id, name or None)
            for group_id, name in groups.values_list("scim_id", "display_name")
        )
        return names


def _unique(record: dict[str, Any], write: Callable[[], Any]) -> Any:
    """Run the INSERT or UPDATE of a record; a taken userName is a 409, never a 500.

    The unique constraint decides, so two workers racing for one userName
    cannot both win, whatever they read before.
    """
    try:
        return write()
    except IntegrityError:
        raise UniquenessException(
            detail=f"userName {record.get('user_name')!r} is already taken"
        ) from None


def _display(display_name: str | None, user_name: str | None = None) -> str | None:
    """The name a group shows for a member, and a user for a group."""
    return display_name or user_name


def _entry(row: Any) -> dict[str, Any]:
    """One value of a multi-valued attribute, without its unset sub-attributes."""
    entry = {key: getattr(row, key) for key in sorted(ROW_COLUMNS)}
    return {key: value for key, value in entry.items() if value is not None}


def _page(rows: QuerySet, start: int, stop: int | None) -> QuerySet:
    """rows[start:stop], never a negative LIMIT."""
    return rows[start:] if stop is None else rows[start : max(start, stop)]


# --8<-- [start:orm-keyset]
def in_creation_order(rows: QuerySet, past: int | None, backwards: bool) -> QuerySet:
    """`rows` in creation order from position `past` on (or back, newest first).

    A keyset on the `seq` primary key: one index range scan, however deep the
    walk, where an OFFSET would read and drop every row before the page.
    """
    if past is not None:
        rows = rows.filter(seq__lt=past) if backwards else rows.filter(seq__gt=past)
    return rows.order_by("-seq" if backwards else "seq")


# --8<-- [end:orm-keyset]


# --8<-- [end:orm-helpers]


# --8<-- [start:orm-filter]
# A filter plan (shared/filter_plan.py) written as a Q object. SQL's NULL is
# three-valued and the plan two-valued, so each comparison also says that its
# target is not NULL: NOT then holds exactly where the comparison does not.
EVERYTHING = ~Q(pk__in=[])  # conditions Django compiles away
NOTHING = Q(pk__in=[])
ORDER = {
    CompareOperator.gt: lookups.GreaterThan,
    CompareOperator.ge: lookups.GreaterThanOrEqual,
    CompareOperator.lt: lookups.LessThan,
    CompareOperator.le: lookups.LessThanOrEqual,
}
FIELDS = {
    bool: BooleanField,
    int: IntegerField,
    float: FloatField,
    datetime: DateTimeField,
}
Scope = Callable[[Column | JsonKey], Expression]  # where a target's value lives


def where(
    plan: Plan, value: Scope | None = None, some: "Collection | None" = None
) -> Q:
    """The Q object of a plan; `value` finds its targets (default: the record's),
    `some` writes its collections (default: these models')."""
    value = value or record_value
    some = some or record_collection
    match plan:
        case Truth(holds):
            return EVERYTHING if holds else NOTHING
        case AllOf(terms):
            return functools.reduce(
                operator.and_, (where(term, value, some) for term in terms), EVERYTHING
            )
        case AnyOf(terms):
            return functools.reduce(
                operator.or_, (where(term, value, some) for term in terms), NOTHING
            )
        case Negation(term):
            return ~where(term, value, some)
        case IsNull(target):  # in JSON: absent or null, whatever its type
            return Q(lookups.IsNull(value(untyped(target)), True))
        case IsPresent(target):  # RFC 7644 §3.4.2.2: a value, a non-empty string
            present = Q(lookups.IsNull(value(target), False))
            if target.type is str:
                present &= ~Q(lookups.Exact(value(target), ""))
            return present
        case Compare(target):
            return compare(plan, value(target))
        case Some(collection, inner):
            return some(collection, lambda scope: where(inner, scope, some))
    raise TypeError(f"not a plan: {plan!r}")


# A collection of the plan, and how its entries meet a condition: the
# condition is a Q object built for the scope the collection gives its entries.
Collection = Callable[[Rows | JsonArray, Callable[[Scope], Q]], Q]


def record_collection(collection: Rows | JsonArray, holds: Callable[[Scope], Q]) -> Q:
    """Some entry of a multi-valued attribute of these models meets `holds`."""
    if isinstance(collection, Rows):
        rows, columns = collection_rows(collection.name)
        return Q(Exists(rows.filter(holds(columns_of(columns)))))
    array = JsonValue(collection.path, list, F("extra"))
    return Q(JsonSome(array, holds(entry_value)))


def compare(plan: Compare, target: Expression) -> Q:
    """`target op value`, false (never unknown) where the target is NULL."""
    known = Q(lookups.IsNull(target, False))
    operand, op = plan.value, plan.op
    text = Fold(target) if plan.fold else target
    if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
        # Code points, not LIKE: SQLite's LIKE ignores the case of ASCII letters.
        if operand == "":
            return known  # every string contains, starts and ends with ""
        if op == CompareOperator.co:
            return known & Q(lookups.GreaterThan(StrIndex(text, Value(operand)), 0))
        edge = Left if op == CompareOperator.sw else Right
        return known & Q(lookups.Exact(edge(text, len(operand)), operand))
    if op == CompareOperator.eq:
        return known & Q(lookups.Exact(text, operand))
    if isinstance(operand, str):
        text = CodePoints(text)
    return known & Q(ORDER[op](text, operand))


def untyped(target: Column | JsonKey) -> Column | JsonKey:
    """A JSON value of any type: `addresses eq null` asks for no entry, not
    for an entry that is not a string."""
    return replace(target, type=object) if isinstance(target, JsonKey) else target


def record_value(target: Column | JsonKey) -> Expression:
    """A target of the record itself: a model field, or a value in `extra`."""
    if isinstance(target, JsonKey):
        return JsonValue(target.path, target.type, F("extra"))
    # Django keeps the name `id` for primary keys: the SCIM id is `scim_id`.
    return F("scim_id" if target.name == "id" else target.name)


def entry_value(target: Column | JsonKey) -> Expression:
    """A target in one element of a JSON array: () is the element itself."""
    return JsonValue(target.path, target.type)


def columns_of(columns: dict[str, Expression]) -> Scope:
    """The scope of a collection entry: its columns; NULL for what it has not."""
    return lambda target: columns.get(
        target.name, Value(None, output_field=FIELDS.get(target.type, TextField)())
    )


def collection_rows(name: str) -> tuple[QuerySet, dict[str, Expression]]:
    """The rows of a multi-valued attribute of the outer record, and their columns."""
    if name == "members":  # a group's
        rows = Membership.objects.filter(group_id=OuterRef("scim_id"))
        return rows, {
            "value": F("member_id"),
            "type": F("member_type"),
            "display": member_display(),
        }
    if name == "groups":  # a user's: direct memberships
        rows = Membership.objects.filter(
            member_id=OuterRef("scim_id"), member_type=USER
        )
        return rows, {"value": F("group_id"), "display": F("group__display_name")}
    rows = MULTI_VALUED[name].objects.filter(user_id=OuterRef("scim_id"))
    return rows, {column: F(column) for column in ROW_COLUMNS}


def member_display() -> Expression:
    """What a group shows for a member (shared.records.display_of): the
    client's display, else the user's displayName, else userName, else the
    group's displayName; an empty string counts as none."""
    member = OuterRef("member_id")
    users = ScimUser.objects.filter(scim_id=member)
    groups = ScimGroup.objects.filter(scim_id=member)
    empty = Value("", output_field=TextField())
    return Coalesce(
        NullIf("display", empty),
        NullIf(Subquery(users.values("display_name")), empty),
        Subquery(users.values("user_name")),
        NullIf(Subquery(groups.values("display_name")), empty),
        output_field=TextField(),
    )


def sort_value(key: SortKey) -> Expression:
    """What records sort by, compared as `SearchRequest.sort` compares them."""
    if key.rows is None:
        value = record_value(key.target)
    else:  # the primary entry's, else the first one's
        rows, columns = collection_rows(key.rows.name)
        primary = lookups.Exact(columns["primary"], True)
        entries = rows.order_by(Case(When(primary, then=0), default=1), "position")
        chosen = entries.annotate(sort_value=columns_of(columns)(key.target))
        value = Subquery(chosen.values("sort_value")[:1])
    if key.fold:
        value = Fold(value)
    return CodePoints(value) if key.target.type is str else value


# --8<-- [end:orm-filter]


# --8<-- [start:orm-sql]
# What the ORM has no word for: the fold of strings, code-point order, and
# values in JSON arrays. Each writes SQL for SQLite and for PostgreSQL; JSON
# keys (a URN holds ':' and '.') are parameters, never SQL text.
ENTRY = "scim_entry"  # the alias of one JSON array element, in JsonSome


class Fold(Func):
    """`shared.records.fold` (NFC, lower case, NFC), what caseExact false compares.

    SQLite's LOWER() only knows ASCII: there, `scim_fold` is the Python
    function itself, registered on each connection (`register_functions`).
    """

    output_field = TextField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="scim_fold", **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = "NORMALIZE(LOWER(NORMALIZE(%(expressions)s, NFC)), NFC)"
        return self.as_sql(compiler, connection, template=template, **extra)


class CodePoints(Func):
    """A string compared in code-point order, as Python does (SQLite always does)."""

    template = "%(expressions)s"
    output_field = TextField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = '%(expressions)s COLLATE "C"'
        return self.as_sql(compiler, connection, template=template, **extra)


def register_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """Django's `connection_created` receiver (apps.py): scim_fold() on SQLite."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "scim_fold", 1, sql_fold, deterministic=True
        )


def sql_fold(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value  # NULL stays NULL


# JSON types as SQLite's json_type() names them (text: 'text'), and as
# PostgreSQL's jsonb_typeof() names them, with the SQL that reads one.
SQLITE_TYPES = {int: "'integer', 'real'", float: "'integer', 'real'", list: "'array'"}
POSTGRES_TYPES = {
    str: ("string", "({}) #>> '{{}}'"),
    bool: ("boolean", "({})::boolean"),
    int: ("number", "({})::numeric"),
    float: ("number", "({})::numeric"),
    list: ("array", "{}"),
}


class JsonValue(Func):
    """The value at `path` in `base` (without one: in the element of JsonSome)
    if it is of `kind` in JSON, else NULL; of `kind` object, the name of its
    JSON type, NULL when it is absent or null."""

    def __init__(
        self, path: tuple[str, ...], kind: type, base: Expression | None = None
    ) -> None:
        field = FIELDS.get(kind, TextField)()
        super().__init__(*([] if base is None else [base]), output_field=field)
        self.path, self.kind = path, kind

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotSupportedError("JSON values are written for SQLite and PostgreSQL")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        if not self.source_expressions and not self.path:  # the element itself
            json_type, value, params = f"{ENTRY}.type", f"{ENTRY}.value", []
        else:
            if self.source_expressions:
                base, params = compiler.compile(self.source_expressions[0])
            else:  # a key of an element, when the element is an object
                base = f"CASE WHEN {ENTRY}.type = 'object' THEN {ENTRY}.value END"
                params = []
            params = [*params, "$" + "".join(f'."{key}"' for key in self.path)]
            json_type = f"json_type({base}, %s)"
            value = f"json_extract({base}, %s)"
        if self.kind is object:
            return f"NULLIF({json_type}, 'null')", params
        if self.kind is bool:
            sql = f"CASE {json_type} WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
            return sql, params
        types = SQLITE_TYPES.get(self.kind, "'text'")
        return f"CASE WHEN {json_type} IN ({types}) THEN {value} END", params * 2

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        if self.source_expressions:
            base, params = compiler.compile(self.source_expressions[0])
        else:
            base, params = f"{ENTRY}.value", []
        if self.path:
            keys = ", ".join(["%s"] * len(self.path))
            base, params = f"jsonb_extract_path({base}, {keys})", [*params, *self.path]
        if self.kind is object:
            return f"NULLIF(jsonb_typeof({base}), 'null')", params
        json_type, read = POSTGRES_TYPES.get(self.kind, POSTGRES_TYPES[str])
        value = read.format(base)
        sql = f"CASE WHEN jsonb_typeof({base}) = '{json_type}' THEN {value} END"
        return sql, params * 2


class JsonSome(Expression):
    """EXISTS an element of `array` (a JsonValue of kind list) meeting `where`."""

    def __init__(self, array: JsonValue, where: Q) -> None:
        super().__init__(output_field=BooleanField())
        self.array, self.where = array, where

    def get_source_expressions(self) -> list:
        return [self.array, self.where]

    def set_source_expressions(self, expressions: list) -> None:
        self.array, self.where = expressions

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotSupportedError("JSON arrays are written for SQLite and PostgreSQL")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.exists(compiler, "json_each({}) AS " + ENTRY)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.exists(compiler, f"jsonb_array_elements({{}}) AS {ENTRY}(value)")

    def exists(self, compiler: Any, elements: str) -> Any:
        array, params = compiler.compile(self.array)
        try:
            condition, inner = compiler.compile(self.where)
        except FullResultSet:  # (EmptyResultSet is for the caller's WHERE)
            condition, inner = "1 = 1", []
        # Only compiled SQL goes into the text: values and keys are parameters.
        source = elements.format(array)
        sql = f"EXISTS (SELECT 1 FROM {source} WHERE {condition})"  # noqa: S608
        return sql, [*params, *inner]


# --8<-- [end:orm-sql]
