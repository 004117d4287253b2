"""The storage API on the Django ORM: SCIM records in a Django project's database.

Same functions, same records and same guarantees as `MemoryStorage` and
`shared.sql_storage.SqlStorage`, written the Django way:

- filters become `Q` objects (`OrmFilter`, a scim2-models `FilterVisitor`),
  multi-valued attributes `Exists` subqueries; sorting is `order_by`, paging a
  slice and totalResults `count()`;
- userName uniqueness is a unique constraint on the folded value, so two
  workers creating the same user race into an IntegrityError, answered 409;
- an If-Match write is `filter(version=read).update(version=F("version") + 1)`
  in `transaction.atomic()`, a compare-and-swap;
- group memberships are rows of their own, written as a diff.

The models are in models.py; SCIM_DJANGO_ORM=1 switches to this backend (apps.py).
"""

import functools
import operator
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from inspect import isclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS
from django.db import IntegrityError
from django.db import OperationalError
from django.db import connections
from django.db import transaction
from django.db.models import BooleanField
from django.db.models import Case
from django.db.models import CharField
from django.db.models import Exists
from django.db.models import Expression
from django.db.models import F
from django.db.models import Model
from django.db.models import OuterRef
from django.db.models import Q
from django.db.models import QuerySet
from django.db.models import Subquery
from django.db.models import TextField
from django.db.models import Value
from django.db.models import When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast
from django.db.models.functions import Coalesce
from django.db.models.functions import Collate
from django.db.models.functions import Left
from django.db.models.functions import Lower
from django.db.models.functions import Right
from django.db.models.functions import StrIndex
from django.db.models.lookups import Exact
from django.db.models.lookups import GreaterThan
from django.db.models.lookups import GreaterThanOrEqual
from django.db.models.lookups import IsNull
from django.db.models.lookups import LessThan
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone
from scim2_models import BaseModel
from scim2_models import Group
from scim2_models import InvalidFilterException
from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from scim2_models.path import AttributeBinding
from scim2_models.path import AttrPath
from scim2_models.path import CompareOperator
from scim2_models.path import Comparison
from scim2_models.path import FilterVisitor
from scim2_models.path import LogicalExpr
from scim2_models.path import LogicalOperator
from scim2_models.path import Not
from scim2_models.path import Present
from scim2_models.path import ValuePath
from scim2_models.path import coerce_value

from integrations.django_app.models import Membership
from integrations.django_app.models import ScimGroup
from integrations.django_app.models import ScimUser
from integrations.django_app.models import UserEmail
from integrations.django_app.models import UserPhoneNumber
from shared.discovery import UserResource
from shared.records import GROUP
from shared.records import KINDS
from shared.records import USER
from shared.records import fold
from shared.sql_storage import DEADLOCK_ATTEMPTS
from shared.sql_storage import GROUP_COLUMNS
from shared.sql_storage import RETRYABLE_SQLSTATES
from shared.sql_storage import SUB_COLUMNS
from shared.sql_storage import USER_COLUMNS
from shared.sql_storage import USER_RECORD_FIELDS
from shared.sql_storage import json_path
from shared.sql_storage import resolve_filter_path
from shared.sql_storage import sub_attribute_name

MODELS: dict[str, type[Model]] = {USER: ScimUser, GROUP: ScimGroup}
MULTI_VALUED: dict[str, type[Model]] = {
    "emails": UserEmail,
    "phone_numbers": UserPhoneNumber,
}
# SqlStorage's column names are the model fields, but for `id`: Django keeps
# that name for primary keys, so the SCIM id is `scim_id`.
USER_FIELDS = {**USER_COLUMNS, ("id", None): "scim_id"}
GROUP_FIELDS = {**GROUP_COLUMNS, ("id", None): "scim_id"}
FOLDED_USER_NAME = F("user_name_key")  # userName as scim2-models compares it
NOTHING = Q(pk__in=[])  # a condition no row meets, which Django compiles away
NULL = Value(None, output_field=TextField())


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

    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        self.using = using  # the DATABASES alias

    def _objects(self, model: type[Model]) -> QuerySet:
        return model.objects.using(self.using)

    def reset(self) -> None:
        """Forget everything: for tests, notebooks and demos."""
        with transaction.atomic(using=self.using):
            for model in (Membership, UserEmail, UserPhoneNumber, ScimUser, ScimGroup):
                self._objects(model).delete()

    # --8<-- [start:orm-read]
    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """A record, or None when there is no such record."""
        rows = self._objects(MODELS[kind]).filter(scim_id=record_id)
        records = self._records(kind, rows)
        return records[0] if records else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName, in any letter case (one index lookup)."""
        rows = self._objects(ScimUser).filter(user_name_key=fold(user_name))
        records = self._records(USER, rows)
        return records[0] if records else None

    def list_records(
        self, kind: str, start: int = 0, stop: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many records of a kind exist, and those in [start:stop)."""
        rows = self._objects(MODELS[kind]).order_by("seq")
        return rows.count(), self._records(kind, _page(rows, start, stop))

    def search_records(
        self,
        kind: str,
        search: SearchRequest,
        start: int,
        stop: int | None,
        to_resource: Callable[[dict[str, Any]], Any],
    ) -> tuple[int, list[dict[str, Any]]]:
        """Filter, sort and page in the database: WHERE, ORDER BY, LIMIT/OFFSET."""
        resource_model = UserResource if kind == USER else Group
        vendor = connections[self.using].vendor
        rows = self._objects(MODELS[kind])
        if search.filter is not None:
            where = OrmFilter(kind, resource_model, vendor).visit(search.filter.ast)
            rows = rows.filter(where)
        order = []
        # An attribute this type does not have gives no binding: its records
        # have no value and keep their stable order (RFC 7644 §3.4.2.3).
        binding = search.sort_binding(resource_model) if search.sort_by else None
        if binding is not None:
            key = _sort_key(kind, binding, vendor)
            if search.sort_order == SearchRequest.SortOrder.descending:
                order.append(key.desc(nulls_first=True))
            else:
                order.append(key.asc(nulls_last=True))
        rows = rows.order_by(*order, "seq")
        return rows.count(), self._records(kind, _page(rows, start, stop))

    # --8<-- [end:orm-read]

    # --8<-- [start:orm-write]
    @_retry_on_deadlock
    def save_record(
        self, kind: str, record: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Create (no `id`) or update a record; with `expected_version`, a CAS."""
        model = MODELS[kind]
        fields = _fields(kind, record)
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
                    self._touch_related(kind, record_id, now)
            else:
                record_id = uuid.uuid4().hex
                now = timezone.now()
                _unique(
                    record,
                    lambda: self._objects(model).create(
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

    def _write_multi_valued(self, user_id: str, record: dict[str, Any]) -> None:
        for field_name, model in MULTI_VALUED.items():
            self._objects(model).filter(user_id=user_id).delete()
            self._objects(model).bulk_create(
                model(
                    user_id=user_id,
                    position=position,
                    **{key: entry.get(key) for key in SUB_COLUMNS},
                )
                for position, entry in enumerate(record.get(field_name) or [])
            )

    # --8<-- [start:orm-members]
    def _write_members(
        self, group_id: str, members: list[dict[str, Any]], now: datetime
    ) -> None:
        """Make the membership rows those of `members`, writing only the diff."""
        memberships = self._objects(Membership).filter(group_id=group_id)
        current = {row.member_id: row for row in memberships}
        wanted = {member["value"]: member for member in members}
        new = [member_id for member_id in wanted if member_id not in current]
        gone = [member_id for member_id in current if member_id not in wanted]
        for member_id in new:
            kind = wanted[member_id]["type"]
            if kind == GROUP and member_id == group_id:
                raise InvalidValueException(detail="a group cannot contain itself")
            # Bumping the version of a joining member (its `groups` changes) is
            # also the check that it exists: the UPDATE locks its row, so a
            # concurrent delete of it either already happened (no row) or waits.
            if kind not in KINDS or not self._touch(kind, [member_id], now):
                raise InvalidValueException(
                    detail=f"member {member_id!r} is not an existing {kind}"
                )
        if gone:
            memberships.filter(member_id__in=gone).delete()
        for member_id in current.keys() & wanted.keys():
            display = wanted[member_id].get("display")
            if current[member_id].display != display:
                memberships.filter(member_id=member_id).update(display=display)
        self._objects(Membership).bulk_create(
            Membership(
                group_id=group_id,
                member_id=member_id,
                member_type=wanted[member_id]["type"],
                display=wanted[member_id].get("display"),
            )
            for member_id in new
        )
        # The members that left show a different `groups` now.
        for kind in KINDS:
            self._touch(kind, [m for m in gone if current[m].member_type == kind], now)

    # --8<-- [end:orm-members]

    def _touch(self, kind: str, record_ids: list[str], now: datetime) -> int:
        """New versions for records whose derived attributes changed; how many."""
        if not record_ids:
            return 0
        return (
            self._objects(MODELS[kind])
            .filter(scim_id__in=record_ids)
            .update(version=F("version") + 1, last_modified=now)
        )

    def _touch_related(self, kind: str, record_id: str, now: datetime) -> None:
        """New versions for the records that show this one's display name."""
        memberships = self._objects(Membership)
        group_ids = memberships.filter(member_id=record_id).values_list(
            "group_id", flat=True
        )
        self._touch(GROUP, list(group_ids), now)
        if kind == GROUP:
            members = memberships.filter(group_id=record_id)
            for member_kind in KINDS:
                member_ids = members.filter(member_type=member_kind).values_list(
                    "member_id", flat=True
                )
                self._touch(member_kind, list(member_ids), now)

    def _records(self, kind: str, rows: QuerySet) -> list[dict[str, Any]]:
        """Records for rows, with child and derived data loaded in a few queries."""
        if kind == USER:
            return self._user_records(rows)
        return self._group_records(rows)

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
                last_modified=user.last_modified,
                extra=user.extra,
                emails=[_entry(email) for email in user.emails.all()],
                phone_numbers=[_entry(phone) for phone in user.phone_numbers.all()],
                groups=groups.get(user.scim_id, []),
            )
            records.append(record)
        return records

    def _group_records(self, rows: QuerySet) -> list[dict[str, Any]]:
        groups = list(rows.prefetch_related("memberships"))
        memberships = [m for group in groups for m in group.memberships.all()]
        names = self._display_names(memberships)
        return [
            {
                "id": group.scim_id,
                "version": group.version,
                "created": group.created,
                "last_modified": group.last_modified,
                "display_name": group.display_name,
                "external_id": group.external_id,
                "extra": group.extra,
                # A display the client gave is kept; otherwise it is the member's name.
                "members": [
                    {
                        "value": m.member_id,
                        "type": m.member_type,
                        "display": m.display or names.get(m.member_id),
                    }
                    for m in group.memberships.all()
                ],
            }
            for group in groups
        ]

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
        names.update(groups.values_list("scim_id", "display_name"))
        return names


def _fields(kind: str, record: dict[str, Any]) -> dict[str, Any]:
    """The model field values of a record, without the derived and child data."""
    if kind == GROUP:
        return {
            "display_name": record["display_name"],
            "external_id": record["external_id"],
            "extra": record["extra"],
        }
    fields = {name: record.get(name) for name in USER_RECORD_FIELDS}
    fields["user_name_key"] = fold(record["user_name"])
    fields["extra"] = record["extra"]
    return fields


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
    entry = {key: getattr(row, key) for key in sorted(SUB_COLUMNS)}
    return {key: value for key, value in entry.items() if value is not None}


def _page(rows: QuerySet, start: int, stop: int | None) -> QuerySet:
    """rows[start:stop], never a negative LIMIT."""
    return rows[start:] if stop is None else rows[start : max(start, stop)]


# --8<-- [start:orm-filter]
class OrmFilter(FilterVisitor[Q]):
    """Translate a SCIM filter into a `Q` object on one resource model.

    It gives what `ScimFilter.match` gives in memory: attributes of another
    resource type are false (RFC 7644 §3.4.2.1), caseExact false strings compare
    lower-cased, `ne` holds on a missing value, and a comparison on a
    multi-valued attribute holds when one of its values does (`ne`: when none
    equals the operand).
    """

    def __init__(self, kind: str, resource_model: Any, vendor: str) -> None:
        self.kind = kind
        self.resource_model = resource_model  # UserResource or Group
        self.vendor = vendor
        self.fields = USER_FIELDS if kind == USER else GROUP_FIELDS

    def visit_logical_expr(self, node: LogicalExpr) -> Q:
        terms = [self.visit(term) for term in node.terms]
        combine = operator.and_ if node.op == LogicalOperator.and_ else operator.or_
        return functools.reduce(combine, terms)

    def visit_not(self, node: Not) -> Q:
        return ~self.visit(node.expr)

    def visit_present(self, node: Present) -> Q:
        binding = self._resolve(node.attr_path)
        if binding is None:
            return NOTHING
        if self._is_child(binding):
            model, link = self._child(binding)
            column = self._child_column(model, binding.sub_field_name or "value")
            present = _present(column, _is_text(binding))
            return Q(Exists(model.objects.filter(link, present)))
        if _is_complex(binding) and not binding.is_multivalued:
            # `name pr`: any of its sub-attributes, in fields or in `extra`.
            model = MODELS[self.kind]
            present = [
                _present(F(field), _is_text_field(model, field))
                for (head, sub), field in self.fields.items()
                if head == binding.field_name and sub is not None
            ]
            return functools.reduce(operator.or_, present, _present(_extra(binding)))
        return _present(self._column(binding), _is_text(binding))

    def visit_comparison(self, node: Comparison) -> Q:
        binding = self._resolve(node.attr_path, for_comparison=True)
        if binding is None:
            return NOTHING
        expected = coerce_value(binding, node.value, node.op)
        if self._is_child(binding):
            model, link = self._child(binding)
            column = self._child_column(model, binding.sub_field_name or "value")
            if node.op == CompareOperator.ne:
                equal = self._compare(column, CompareOperator.eq, expected, binding)
                return ~Q(Exists(model.objects.filter(link, equal)))
            matching = self._compare(column, node.op, expected, binding)
            return Q(Exists(model.objects.filter(link, matching)))
        return self._compare(self._column(binding), node.op, expected, binding)

    def visit_value_path(self, node: ValuePath) -> Q:
        binding = self._resolve(node.attr_path)
        if binding is None:
            return NOTHING
        if not self._is_child(binding):
            raise InvalidFilterException(
                detail=f"Filtering inside {node.attr_path} is not supported"
            )
        model, link = self._child(binding)
        inner = _ChildFilter(self, node.attr_path, model).visit(node.val_filter)
        return Q(Exists(model.objects.filter(link, inner)))

    def _compare(
        self,
        column: Expression,
        op: CompareOperator,
        expected: Any,
        binding: AttributeBinding,
    ) -> Q:
        return _compare(column, op, expected, binding, self.vendor)

    def _resolve(
        self, attr_path: AttrPath, for_comparison: bool = False
    ) -> AttributeBinding | None:
        return resolve_filter_path(self.resource_model, attr_path, for_comparison)

    def _is_child(self, binding: AttributeBinding) -> bool:
        """Whether the attribute's values are rows of another model."""
        return binding.field_name in (*MULTI_VALUED, "members", "groups")

    def _child(self, binding: AttributeBinding) -> tuple[type[Model], Q]:
        """The model holding a multi-valued attribute's values, and its link."""
        if binding.field_name == "members" and self.kind == GROUP:
            return Membership, Q(group_id=OuterRef("scim_id"))
        if binding.field_name == "groups" and self.kind == USER:
            return Membership, Q(member_id=OuterRef("scim_id"), member_type=USER)
        return MULTI_VALUED[binding.field_name], Q(user_id=OuterRef("scim_id"))

    def _child_column(self, model: type[Model], sub_field: str) -> Expression:
        if model is Membership:
            if self.kind == USER:  # a user's `groups`: value and display
                names = {
                    "value": F("group_id"),
                    "display": F("group__display_name"),
                    "type": Value("direct"),
                }
            else:
                names = {
                    "value": F("member_id"),
                    "type": F("member_type"),
                    "display": _member_display(),
                }
            return names.get(sub_field, NULL)
        return F(sub_field) if sub_field in SUB_COLUMNS else NULL

    def _column(self, binding: AttributeBinding) -> Expression:
        """The field (or JSON value in `extra`) a single-valued attribute lives in."""
        key = (binding.field_name, binding.sub_field_name)
        if key == ("user_name", None) and self.kind == USER:
            # Already folded, and indexed: `userName eq` is one index lookup.
            return FOLDED_USER_NAME
        if key in self.fields:
            return F(self.fields[key])
        if key == ("meta", "resource_type"):
            return Value(self.kind)
        if binding.is_multivalued or binding.field_name in ("meta", "schemas"):
            raise InvalidFilterException(
                detail=f"Filtering on {binding.urn} is not supported"
            )
        value = _extra(binding)
        if binding.target_type is bool:
            return Cast(value, BooleanField())
        return value


class _ChildFilter(OrmFilter):
    """The filter inside `emails[...]`: sub-attributes of one child row."""

    def __init__(self, parent: OrmFilter, head: AttrPath, model: type[Model]) -> None:
        super().__init__(parent.kind, parent.resource_model, parent.vendor)
        self.head = head
        self.child_model = model

    def _qualified(self, attr_path: AttrPath) -> AttrPath:
        return AttrPath(self.head.attr, attr_path.attr, self.head.uri)

    def visit_present(self, node: Present) -> Q:
        binding = self._resolve(self._qualified(node.attr_path))
        if binding is None:
            return NOTHING
        column = self._child_column(
            self.child_model, sub_attribute_name(node.attr_path)
        )
        return _present(column, _is_text(binding))

    def visit_comparison(self, node: Comparison) -> Q:
        binding = self._resolve(self._qualified(node.attr_path), for_comparison=True)
        if binding is None:
            return NOTHING
        expected = coerce_value(binding, node.value, node.op)
        column = self._child_column(
            self.child_model, sub_attribute_name(node.attr_path)
        )
        return self._compare(column, node.op, expected, binding)

    def visit_value_path(self, node: ValuePath) -> Q:
        return NOTHING  # nested value paths are not SCIM (RFC 7644 errata 7122)


def _is_complex(binding: AttributeBinding) -> bool:
    """Whether the attribute is complex, like `name`, with sub-attributes of its own."""
    target = binding.target_type
    return isclass(target) and issubclass(target, BaseModel)


def _is_text(binding: AttributeBinding) -> bool:
    """Whether the attribute is stored as text: strings, and what `extra` holds."""
    return binding.target_type not in (bool, int, float, datetime, bytes)


def _is_text_field(model: type[Model], name: str) -> bool:
    return isinstance(model._meta.get_field(name), CharField | TextField)


def _extra(binding: AttributeBinding) -> Expression:
    """The text of an attribute kept in the `extra` JSON, NULL when it is not there."""
    *heads, last = json_path(binding)
    return KeyTextTransform(
        last,
        functools.reduce(lambda inner, key: KeyTransform(key, inner), heads, "extra"),
    )


def _member_display() -> Expression:
    """The display a group shows for a member: the client's, else the member's name."""
    member = OuterRef("member_id")
    return Coalesce(
        "display",
        Subquery(ScimUser.objects.filter(scim_id=member).values("display_name")),
        Subquery(ScimUser.objects.filter(scim_id=member).values("user_name")),
        Subquery(ScimGroup.objects.filter(scim_id=member).values("display_name")),
    )


def _present(column: Expression, text: bool = True) -> Q:
    """RFC 7644 §3.4.2.2 `pr`: a value, and for strings a non-empty one."""
    present = Q(IsNull(column, False))
    return present & ~Q(Exact(column, "")) if text else present


def _compare(
    column: Expression,
    op: CompareOperator,
    expected: Any,
    binding: AttributeBinding,
    vendor: str,
) -> Q:
    """`column op expected`, with the semantics of ScimFilter.match."""
    if isinstance(expected, str):
        expected = binding.comparable(expected)
        if not binding.case_exact and column != FOLDED_USER_NAME:
            column = Lower(column)
    if expected is None:
        if op == CompareOperator.eq:
            return Q(IsNull(column, True))
        return Q(IsNull(column, False)) if op == CompareOperator.ne else NOTHING
    if op == CompareOperator.ne:
        return Q(IsNull(column, True)) | ~Q(Exact(column, expected))
    # A missing value makes a comparison false, not SQL's unknown (NULL), so
    # that `not (...)` around it holds, as it does in memory.
    known = Q(IsNull(column, False))
    if op == CompareOperator.eq:
        return known & Q(Exact(column, expected))
    if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
        if not isinstance(expected, str):
            return NOTHING
        return known & _substring(column, op, expected)
    if isinstance(expected, str):
        column = _codepoint_order(column, vendor)
    lookup = {
        CompareOperator.gt: GreaterThan,
        CompareOperator.ge: GreaterThanOrEqual,
        CompareOperator.lt: LessThan,
        CompareOperator.le: LessThanOrEqual,
    }[op]
    return known & Q(lookup(column, expected))


def _substring(column: Expression, op: CompareOperator, expected: str) -> Q:
    """co, sw and ew, by string functions rather than LIKE.

    Django's `contains` is a LIKE, which SQLite runs case-insensitively: a
    caseExact attribute such as externalId would then match in any case.
    """
    if not expected:
        return Q()  # every string contains ""
    if op == CompareOperator.co:
        return Q(GreaterThan(StrIndex(column, Value(expected)), 0))
    edge = Left if op == CompareOperator.sw else Right
    return Q(Exact(edge(column, len(expected)), expected))


# --8<-- [end:orm-filter]


def _codepoint_order(column: Expression, vendor: str) -> Expression:
    """Order strings by code point, as Python does; SQLite already does."""
    return Collate(column, "C") if vendor == "postgresql" else column


def _sort_key(kind: str, binding: AttributeBinding, vendor: str) -> Expression:
    """The value a record sorts by: its field, or the primary (else first) entry."""
    orm_filter = OrmFilter(kind, UserResource if kind == USER else Group, vendor)
    if binding.field_name in MULTI_VALUED:
        entries = MULTI_VALUED[binding.field_name].objects.filter(
            user_id=OuterRef("scim_id")
        )
        primary_first = Case(When(primary=True, then=0), default=1)
        key = Subquery(
            entries.order_by(primary_first, "position").values(
                binding.sub_field_name or "value"
            )[:1]
        )
    elif orm_filter._is_child(binding):
        raise InvalidFilterException(detail="Sorting on members is not supported")
    else:
        key = orm_filter._column(binding)
    if not _is_text(binding):
        return key
    if not binding.case_exact and key != FOLDED_USER_NAME:
        key = Lower(key)
    return _codepoint_order(key, vendor)
