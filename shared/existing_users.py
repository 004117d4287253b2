"""The storage API on an application's existing `users` table, through SQLAlchemy.

Where SqlStorage keeps SCIM-shaped tables of its own, this recipe provisions
into the table the application already has, a typical one: an integer
primary key, an email the users sign in with, a display name, `is_active`
and `created_at`, and no SCIM column at all. The mapping:

    id              <- users.id, as a string (ids are never given again)
    userName        -> users.email
    displayName     -> users.display_name
    active          -> users.is_active: a deactivated user can no longer sign in
    meta.created    <- users.created_at

What the table has no column for (externalId, the version, names, emails as
sent, the enterprise extension, a password's hash...) is kept in a side
table of the recipe's own, `scim_user_data`, one row per user SCIM manages:
SCIM sees the users that have one, those it created and those `adopt_users`
hands over. The application has no groups: the recipe keeps them in two
tables of its own, whose members are rows of `users`.
"""

import functools
from collections.abc import Callable
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC
from datetime import datetime
from typing import Any

from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import UniqueConstraint
from sqlalchemy import cast
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy import type_coerce
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql.elements import ColumnElement

from shared.filter_plan import AllOf
from shared.filter_plan import AnyOf
from shared.filter_plan import Column as PlanColumn
from shared.filter_plan import Compare
from shared.filter_plan import IsNull
from shared.filter_plan import IsPresent
from shared.filter_plan import JsonKey
from shared.filter_plan import Negation
from shared.filter_plan import Plan
from shared.filter_plan import Rows
from shared.filter_plan import Some
from shared.filter_plan import SortKey
from shared.filter_plan import plan_filter
from shared.filter_plan import plan_sort
from shared.filter_plan import refuse
from shared.records import GROUP
from shared.records import USER
from shared.records import fold
from shared.sql_storage import Scope
from shared.sql_storage import SqlPlan
from shared.sql_storage import _make_engine
from shared.sql_storage import _WriteTransaction

Json = JSON().with_variant(JSONB(), "postgresql")
metadata = MetaData()

# --8<-- [start:existing-table]
# The application's table, as it was before SCIM (created here only for the
# tests and the notebook). SQLite's AUTOINCREMENT, as PostgreSQL's sequences,
# never gives an id again: SCIM ids must never name another user.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("display_name", String(200)),
    Column("is_active", Boolean, nullable=False),
    Column("created_at", DateTime, nullable=False),  # UTC
    sqlite_autoincrement=True,
)
# --8<-- [end:existing-table]

# --8<-- [start:side-tables]
# The recipe's own tables: one row per user SCIM manages, and the groups.
user_data = Table(
    "scim_user_data",
    metadata,
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # userName is caseExact false: its folded form is unique.
    Column("user_name_key", String, nullable=False, unique=True),
    Column("external_id", String),
    Column("version", Integer, nullable=False),
    Column("last_modified", DateTime, nullable=False),
    Column("attributes", Json, nullable=False),  # names, title, emails, ...
    Column("extra", Json, nullable=False),  # every other attribute, as sent
)
groups = Table(
    "scim_app_groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("display_name", String, nullable=False),
    Column("external_id", String),
    Column("version", Integer, nullable=False),
    Column("created", DateTime, nullable=False),
    Column("last_modified", DateTime, nullable=False),
    Column("extra", Json, nullable=False),
    sqlite_autoincrement=True,
)
memberships = Table(
    "scim_app_group_members",
    metadata,
    Column("seq", Integer, primary_key=True),  # the order members joined in
    Column(
        "group_id",
        Integer,
        ForeignKey("scim_app_groups.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "user_id",
        Integer,
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    UniqueConstraint("group_id", "user_id"),
)
# --8<-- [end:side-tables]

# --8<-- [start:existing-mapping]
# Record fields the users table has a column for: record key -> column.
USER_COLUMNS = {"user_name": "email", "display_name": "display_name"}
# The rest of a user record, kept in scim_user_data.attributes.
USER_ATTRIBUTES = (
    "given_name",
    "family_name",
    "title",
    "department",
    "employee_number",
    "manager_id",
    "emails",
    "phone_numbers",
    "password_hash",
)
MANAGED = users.join(user_data, user_data.c.user_id == users.c.id)


def app_values(record: dict[str, Any]) -> dict[str, Any]:
    """The columns of `users` a user record writes."""
    return {
        "email": record["user_name"],
        "display_name": record.get("display_name"),
        # NOT NULL: a user provisioned without `active` is active.
        "is_active": record.get("active") is not False,
    }


def side_values(record: dict[str, Any]) -> dict[str, Any]:
    """The columns of `scim_user_data` a user record writes."""
    attributes = {
        name: record[name]
        for name in USER_ATTRIBUTES
        if record.get(name) not in (None, [])
    }
    return {
        "user_name_key": fold(record["user_name"]),
        "external_id": record.get("external_id"),
        "attributes": attributes,
        "extra": record.get("extra") or {},
    }


# --8<-- [end:existing-mapping]


# --8<-- [start:existing-small-helpers]
def _pk(record_id: str) -> int | None:
    """The primary key a SCIM id names: "12" is 12; "012" or "x" name no one."""
    if record_id.isascii() and record_id.isdigit() and str(int(record_id)) == record_id:
        return int(record_id)
    return None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # DateTime columns hold UTC


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _unique(what: str) -> Callable[..., Any]:
    """A write a unique index refuses is a 409, never a 500."""

    def decorator(write: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(write)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return write(*args, **kwargs)
            except IntegrityError:
                raise UniquenessException(detail=f"{what} is already taken") from None

        return guarded

    return decorator


# --8<-- [end:existing-small-helpers]


class ExistingUsersStorage:
    """The storage API on an existing `users` table and the recipe's side tables."""

    def __init__(self, url: str) -> None:
        self.engine = _make_engine(url)  # SQLite: WAL, foreign keys, scim_fold()
        self.dialect = self.engine.dialect.name
        metadata.create_all(self.engine)  # only the tables that are missing

    def reset(self) -> None:
        """Forget what SCIM manages (tests, demos); the other users stay."""
        with _WriteTransaction(self.engine) as conn:
            conn.execute(delete(groups))
            conn.execute(
                delete(users).where(users.c.id.in_(select(user_data.c.user_id)))
            )

    # --8<-- [start:existing-adopt]
    def adopt_users(self, user_ids: Iterable[int]) -> None:
        """Give existing users a side row, so that SCIM sees and manages them."""
        with _WriteTransaction(self.engine) as conn:
            for row in conn.execute(
                select(users).where(users.c.id.in_(list(user_ids)))
            ):
                conn.execute(
                    insert(user_data).values(
                        user_id=row.id,
                        version=1,
                        last_modified=_now(),
                        **side_values({"user_name": row.email}),
                    )
                )

    def touch_users(self, user_ids: Iterable[int]) -> None:
        """After the application changed these users itself: new versions.

        The version is the ETag clients compare, and what cached answers
        are checked against: call this where your code updates `users`.
        """
        with _WriteTransaction(self.engine) as conn:
            self._touch(conn, USER, list(user_ids), _now())

    # --8<-- [end:existing-adopt]

    # --8<-- [start:existing-read]
    def get_record(
        self, kind: str, record_id: str, members: bool = True
    ) -> dict[str, Any] | None:
        """A record, or None; `members=False` leaves a group's out, unread."""
        pk = _pk(record_id)
        if pk is None:
            return None
        with self.engine.connect() as conn:
            records = self._read(
                conn, kind, self._select(kind).where(self._key(kind) == pk), members
            )
            return records[0] if records else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName (email), in any letter case: one index lookup."""
        query = self._select(USER).where(user_data.c.user_name_key == fold(user_name))
        with self.engine.connect() as conn:
            records = self._read(conn, USER, query)
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
        """How many records of a kind SCIM manages, and those in [start:stop)."""
        return self._page(kind, true(), None, start, stop, members, past, backwards)

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
        """Filter, sort and page in SQL: the plans of shared/filter_plan.py,
        written by SqlPlan with this layout (`ExistingPlan`)."""
        sql = ExistingPlan(kind, self.dialect)
        where = true()
        if search.filter is not None:
            where = sql.where(plan_filter(kind, search.filter))
        order = None
        key = plan_sort(kind, search)
        if key is not None:
            descending = search.sort_order == SearchRequest.SortOrder.descending
            order = sql.order_by(key, descending)
        return self._page(kind, where, order, start, stop, members, past, backwards)

    def _page(
        self,
        kind: str,
        where: ColumnElement,
        order: ColumnElement | None,
        start: int,
        stop: int | None,
        members: bool,
        past: int | None,
        backwards: bool,
    ) -> tuple[int, list[dict[str, Any]]]:
        key = self._key(kind)
        query = self._select(kind).where(where)
        if past is not None:
            query = query.where(key < past if backwards else key > past)
        if order is not None and past is None and not backwards:
            query = query.order_by(order)
        query = query.order_by(key.desc() if backwards else key).offset(start)
        if stop is not None:
            query = query.limit(max(0, stop - start))
        source = MANAGED if kind == USER else groups
        count = select(func.count()).select_from(source).where(where)
        with self.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            return total, self._read(conn, kind, query, members)

    # --8<-- [end:existing-read]

    # --8<-- [start:existing-write]
    def save_record(
        self, kind: str, record: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Create (no `id`) or update a user or group; `expected_version`: a CAS."""
        now = _now()
        with _WriteTransaction(self.engine) as conn:
            pk = None
            if "id" in record:
                pk = self._lock(conn, kind, record["id"], expected_version)
            if kind == USER:
                pk = self._save_user(conn, pk, record, now)
            else:
                pk = self._save_group(conn, pk, record, now)
            return self._read(
                conn, kind, self._select(kind).where(self._key(kind) == pk)
            )[0]

    @_unique("userName")
    def _save_user(
        self, conn: Connection, pk: int | None, record: dict[str, Any], now: datetime
    ) -> int:
        # The application's own accounts count too, in any letter case.
        taken = select(users.c.id).where(
            func.lower(users.c.email) == record["user_name"].lower()
        )
        if pk is not None:
            taken = taken.where(users.c.id != pk)
        if conn.execute(taken).first() is not None:
            raise UniquenessException(
                detail=f"userName {record['user_name']!r} is already taken"
            )
        values = app_values(record)
        if pk is None:
            pk = conn.execute(
                insert(users).values(created_at=now, **values).returning(users.c.id)
            ).scalar_one()
            conn.execute(
                insert(user_data).values(
                    user_id=pk, version=1, last_modified=now, **side_values(record)
                )
            )
            return pk
        before = conn.execute(
            select(users.c.display_name, users.c.email).where(users.c.id == pk)
        ).one()
        conn.execute(update(users).where(users.c.id == pk).values(**values))
        conn.execute(
            update(user_data)
            .where(user_data.c.user_id == pk)
            .values(
                version=user_data.c.version + 1,
                last_modified=now,
                **side_values(record),
            )
        )
        if (before.display_name or before.email) != (
            values["display_name"] or values["email"]
        ):
            self._touch(conn, GROUP, self._groups_of(conn, [pk]), now)  # they show it
        return pk

    def _save_group(
        self, conn: Connection, pk: int | None, record: dict[str, Any], now: datetime
    ) -> int:
        values = {
            "display_name": record["display_name"],
            "external_id": record.get("external_id"),
            "extra": record.get("extra") or {},
            "last_modified": now,
        }
        if pk is None:
            pk = conn.execute(
                insert(groups)
                .values(version=1, created=now, **values)
                .returning(groups.c.id)
            ).scalar_one()
        else:
            conn.execute(
                update(groups)
                .where(groups.c.id == pk)
                .values(version=groups.c.version + 1, **values)
            )
        wanted = self._user_pks(conn, record.get("members") or [])
        current = set(
            conn.execute(
                select(memberships.c.user_id).where(memberships.c.group_id == pk)
            ).scalars()
        )
        self._join(conn, pk, [u for u in wanted if u not in current], now)
        self._leave(conn, pk, current - set(wanted), now)
        return pk

    def update_group(
        self,
        group_id: str,
        fields: dict[str, Any] | None,
        add: list[dict[str, Any]],
        remove: list[str],
        expected_version: int | None = None,
    ) -> dict[str, Any]:
        """Change a group's fields and some members: one row per member named."""
        now = _now()
        with _WriteTransaction(self.engine) as conn:
            pk = self._lock(conn, GROUP, group_id, expected_version)
            previous = conn.execute(select(groups).where(groups.c.id == pk)).one()
            adding = self._user_pks(conn, add)
            current = set(
                conn.execute(
                    select(memberships.c.user_id).where(
                        memberships.c.group_id == pk, memberships.c.user_id.in_(adding)
                    )
                ).scalars()
            )
            joining = [user for user in adding if user not in current]
            leaving = {p for p in map(_pk, remove) if p is not None}
            left = self._leave(conn, pk, leaving, now)
            self._join(conn, pk, joining, now)
            changed = fields is not None and any(
                getattr(previous, name) != value for name, value in fields.items()
            )
            if joining or left or changed:
                values = dict(fields) if changed else {}
                conn.execute(
                    update(groups)
                    .where(groups.c.id == pk)
                    .values(version=groups.c.version + 1, last_modified=now, **values)
                )
            query = self._select(GROUP).where(groups.c.id == pk)
            return self._read(conn, GROUP, query, members=False)[0]

    def delete_record(
        self, kind: str, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a user (its row in `users`) or a group, and their memberships."""
        now = _now()
        with _WriteTransaction(self.engine) as conn:
            pk = self._lock(conn, kind, record_id, expected_version)
            if kind == USER:
                # Its groups lose a member: their versions move on.
                self._touch(conn, GROUP, self._groups_of(conn, [pk]), now)
                conn.execute(delete(users).where(users.c.id == pk))
            else:
                self._leave(conn, pk, self._members_of(conn, pk), now)
                conn.execute(delete(groups).where(groups.c.id == pk))

    # --8<-- [end:existing-write]

    # --8<-- [start:existing-helpers]
    def _key(self, kind: str) -> Any:
        return users.c.id if kind == USER else groups.c.id

    def _select(self, kind: str) -> Any:
        if kind == USER:
            return select(users, *user_data.c).select_from(MANAGED)
        return select(groups)

    def _lock(
        self, conn: Connection, kind: str, record_id: str, expected: int | None
    ) -> int:
        """Lock a record's version row; its primary key. Raises 404 or 412."""
        table, key = (
            (user_data, user_data.c.user_id) if kind == USER else (groups, groups.c.id)
        )
        pk = _pk(record_id)
        version = None
        if pk is not None:
            version = conn.execute(
                select(table.c.version).where(key == pk).with_for_update()
            ).scalar()
        if version is None:
            raise NotFoundException(detail=f"{kind} {record_id} not found")
        if expected is not None and version != expected:
            raise PreconditionFailedException()
        return pk

    def _user_pks(self, conn: Connection, named: list[dict[str, Any]]) -> list[int]:
        """The users a member list names, in its order; refuses the rest."""
        pks = []
        for member in named:
            if member.get("type", USER) != USER:
                raise InvalidValueException(detail="groups hold users only, not groups")
            pk = _pk(member["value"])
            if (
                pk is None
                or not conn.execute(
                    select(user_data.c.user_id).where(user_data.c.user_id == pk)
                ).first()
            ):
                raise InvalidValueException(
                    detail=f"member {member['value']!r} is not an existing User"
                )
            if pk not in pks:
                pks.append(pk)
        return pks

    def _members_of(self, conn: Connection, group_pk: int) -> set[int]:
        rows = memberships.c
        query = select(rows.user_id).where(rows.group_id == group_pk)
        return set(conn.execute(query).scalars())

    def _groups_of(self, conn: Connection, user_pks: list[int]) -> list[int]:
        rows = memberships.c
        query = select(rows.group_id).where(rows.user_id.in_(user_pks))
        return sorted(set(conn.execute(query).scalars()))

    def _join(
        self, conn: Connection, group_pk: int, user_pks: list[int], now: datetime
    ) -> None:
        if user_pks:
            conn.execute(
                insert(memberships),
                [{"group_id": group_pk, "user_id": pk} for pk in user_pks],
            )
            self._touch(conn, USER, user_pks, now)  # their `groups` changed

    def _leave(
        self, conn: Connection, group_pk: int, user_pks: set[int], now: datetime
    ) -> int:
        if not user_pks:
            return 0
        gone = list(
            conn.execute(
                delete(memberships)
                .where(
                    memberships.c.group_id == group_pk,
                    memberships.c.user_id.in_(user_pks),
                )
                .returning(memberships.c.user_id)
            ).scalars()
        )
        self._touch(conn, USER, gone, now)  # only those that were members
        return len(gone)

    def _touch(
        self, conn: Connection, kind: str, pks: list[int], now: datetime
    ) -> None:
        """New versions for records whose derived attributes changed."""
        if not pks:
            return
        table, key = (
            (user_data, user_data.c.user_id) if kind == USER else (groups, groups.c.id)
        )
        conn.execute(
            update(table)
            .where(key.in_(pks))
            .values(version=table.c.version + 1, last_modified=now)
        )

    def _read(
        self, conn: Connection, kind: str, query: Any, members: bool = True
    ) -> list[dict[str, Any]]:
        rows = conn.execute(query).all()
        if kind == USER:
            return self._user_records(conn, rows)
        return self._group_records(conn, rows, members)

    def _user_records(self, conn: Connection, rows: list[Any]) -> list[dict[str, Any]]:
        by_user: dict[int, list[dict[str, Any]]] = {}
        listed = conn.execute(
            select(memberships.c.user_id, groups.c.id, groups.c.display_name)
            .join(groups, groups.c.id == memberships.c.group_id)
            .where(memberships.c.user_id.in_([row.id for row in rows]))
            .order_by(groups.c.display_name, groups.c.id)
        )
        for user_pk, group_pk, name in listed:
            by_user.setdefault(user_pk, []).append(
                {"value": str(group_pk), "display": name}
            )
        records = []
        for row in rows:
            record = {name: None for name in USER_ATTRIBUTES}
            record.pop("password_hash")  # only when the user has one
            record.update(row.attributes)
            record.update(
                id=str(row.id),
                version=row.version,
                created=_aware(row.created_at),
                last_modified=_aware(row.last_modified),
                position=row.id,
                user_name=row.email,
                display_name=row.display_name,
                active=row.is_active,
                external_id=row.external_id,
                emails=record["emails"] or [],
                phone_numbers=record["phone_numbers"] or [],
                extra=row.extra,
                groups=by_user.get(row.id, []),
            )
            records.append(record)
        return records

    def _group_records(
        self, conn: Connection, rows: list[Any], members_too: bool
    ) -> list[dict[str, Any]]:
        by_group: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
        if members_too:
            listed = conn.execute(
                select(memberships.c.group_id, users.c.id, MEMBER_DISPLAY)
                .join(users, users.c.id == memberships.c.user_id)
                .where(memberships.c.group_id.in_(list(by_group)))
                .order_by(memberships.c.seq)
            )
            for group_pk, user_pk, display in listed:
                by_group[group_pk].append(
                    {"value": str(user_pk), "type": USER, "display": display}
                )
        records = []
        for row in rows:
            record = {
                "id": str(row.id),
                "version": row.version,
                "created": _aware(row.created),
                "last_modified": _aware(row.last_modified),
                "position": row.id,
                "display_name": row.display_name,
                "external_id": row.external_id,
                "extra": row.extra,
            }
            if members_too:
                record["members"] = by_group[row.id]
            records.append(record)
        return records

    # --8<-- [end:existing-helpers]


# --8<-- [start:existing-filter]
# What a group shows for a member: its display name, else its userName.
MEMBER_DISPLAY = func.coalesce(func.nullif(users.c.display_name, ""), users.c.email)
# Where the values a filter plan names live: the plan's Columns are named as
# SqlStorage's; the ones not listed here are keys of scim_user_data.attributes.
USER_LAYOUT = {
    "id": cast(users.c.id, String),
    "user_name_key": user_data.c.user_name_key,  # folded: one index lookup
    "external_id": user_data.c.external_id,
    "display_name": users.c.display_name,
    "active": users.c.is_active,
    "created": users.c.created_at,
    "last_modified": user_data.c.last_modified,
}
GROUP_LAYOUT = {
    "id": cast(groups.c.id, String),
    "display_name": groups.c.display_name,
    "external_id": groups.c.external_id,
    "created": groups.c.created,
    "last_modified": groups.c.last_modified,
}


class ExistingPlan(SqlPlan):
    """SqlPlan with this recipe's layout: `users`, its side row, the groups."""

    def __init__(self, kind: str, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        self.kind = kind
        table = user_data if kind == USER else groups
        self.extra = self._document(table.c.extra)
        self.attributes = self._document(user_data.c.attributes)
        self.resource = Scope(USER_LAYOUT if kind == USER else GROUP_LAYOUT, self.extra)

    def _document(self, column: Any) -> Any:
        return type_coerce(column, JSONB) if self.postgres else column

    def where(self, plan: Plan, scope: Scope | None = None) -> ColumnElement:
        if isinstance(plan, Some) and plan.collection in (
            Rows("emails"),
            Rows("phone_numbers"),
        ):  # kept as sent, a JSON array of the side row
            path = (plan.collection.name,)
            elements, is_array = self.elements(path, self.attributes)
            holds = super().where(in_entry(plan.where), Scope({}, elements.c.value))
            return exists(select(1).select_from(elements).where(is_array, holds))
        return super().where(plan, scope)

    def read(self, target: PlanColumn | JsonKey, scope: Scope) -> ColumnElement:
        if (
            isinstance(target, PlanColumn)
            and scope is self.resource
            and target.name not in scope.columns
        ):  # given_name, title...: in scim_user_data.attributes
            key = JsonKey((target.name,), target.type)
            return super().read(key, Scope({}, self.attributes))
        return super().read(target, scope)

    def rows(self, name: str) -> tuple[Any, ColumnElement, dict[str, Any]]:
        if name == "groups":  # a user's
            columns = {
                "value": cast(groups.c.id, String),
                "display": groups.c.display_name,
            }
            source = memberships.join(groups, groups.c.id == memberships.c.group_id)
            return source, memberships.c.user_id == users.c.id, columns
        member = users.alias("member")  # a group's members
        columns = {
            "value": cast(member.c.id, String),
            "type": literal(USER),
            "display": func.coalesce(
                func.nullif(member.c.display_name, ""), member.c.email
            ),
        }
        source = memberships.join(member, member.c.id == memberships.c.user_id)
        return source, memberships.c.group_id == groups.c.id, columns

    def order_by(self, key: SortKey, descending: bool) -> ColumnElement:
        if key.rows is not None:
            raise refuse(f"sorting by {key.rows.name}, kept as sent in JSON")
        return super().order_by(key, descending)


def in_entry(plan: Plan) -> Plan:
    """A plan on the rows of a collection, for the collection's JSON entries."""
    match plan:
        case AllOf(terms) | AnyOf(terms):
            return replace(plan, terms=tuple(in_entry(term) for term in terms))
        case Negation(term):
            return Negation(in_entry(term))
        case Compare(target) | IsNull(target) | IsPresent(target) if isinstance(
            target, PlanColumn
        ):
            return replace(plan, target=JsonKey((target.name,), target.type))
    return plan


# --8<-- [end:existing-filter]
