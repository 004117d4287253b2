"""The storage API on a SQL database, through SQLAlchemy 2: SQLite or PostgreSQL.

Same functions, same records and same guarantees as `MemoryStorage`, but the
work happens in the database so several worker processes can share it:

- filters become WHERE clauses and sorts ORDER BY (`SqlPlan` writes the
  plans of shared/filter_plan.py), paging LIMIT / OFFSET (or, for cursors, a
  keyset on `seq`), totalResults a COUNT;
- userName uniqueness is a unique index on the folded value, so two workers
  creating the same user race into an IntegrityError, answered 409;
- an If-Match write is `UPDATE ... WHERE version = :read`, a compare-and-swap;
- group memberships are rows of their own, so adding a member inserts one row;
- every user and group row names its tenant, and every query of a storage
  scoped by `for_tenant` asks for that tenant's rows only.
"""

import copy
import functools
import operator
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from math import inf
from typing import Any

from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from scim2_models.path import CompareOperator
from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import Numeric
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import UniqueConstraint
from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import cast
from sqlalchemy import column as sql_column
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import not_
from sqlalchemy import null
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy import type_coerce
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from shared.filter_plan import ROW_COLUMNS
from shared.filter_plan import AllOf
from shared.filter_plan import AnyOf
from shared.filter_plan import Column as PlanColumn
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
from shared.records import display_of
from shared.records import fold
from shared.records import row_values
from shared.tenants import DEFAULT_TENANT

Json = JSON().with_variant(JSONB(), "postgresql")

# --8<-- [start:sql-tables]
metadata = MetaData()


def _resource_columns(table: str) -> list[Any]:
    """What every resource row has: its tenant, order, id, version and timestamps."""
    return [
        # `seq` orders records by creation: the stable default order of pages.
        Column("seq", Integer, primary_key=True, autoincrement=True),
        # Whose record it is: every query asks for one tenant's rows, and the
        # index serves its pages in creation order.
        Column("tenant", String, nullable=False, server_default=DEFAULT_TENANT),
        Index(f"{table}_tenant_seq", "tenant", "seq"),
        # Ids are random (uuid4), so unique across tenants: a membership row
        # names its group and member by id alone.
        Column("id", String(32), nullable=False, unique=True),
        Column("version", Integer, nullable=False),
        Column("created", DateTime, nullable=False),
        Column("last_modified", DateTime, nullable=False),
    ]


users = Table(
    "scim_users",
    metadata,
    *_resource_columns("scim_users"),
    Column("user_name", String, nullable=False),
    # userName is caseExact false: uniqueness is enforced on the folded form,
    # within a tenant: two customers may each have a bjensen.
    Column("user_name_key", String, nullable=False),
    UniqueConstraint("tenant", "user_name_key", name="scim_users_tenant_user_name"),
    Column("external_id", String),
    Column("display_name", String),
    Column("given_name", String),
    Column("family_name", String),
    Column("active", Boolean),
    Column("title", String),
    Column("department", String),
    Column("employee_number", String),
    Column("manager_id", String),
    Column("password_hash", String),
    Column("extra", Json, nullable=False),
)


def _multi_valued_table(name: str) -> Table:
    """A child table for a multi-valued attribute of users (emails, phoneNumbers)."""
    return Table(
        name,
        metadata,
        Column(
            "user_id",
            String(32),
            ForeignKey("scim_users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        Column("position", Integer, primary_key=True),
        Column("value", String, index=True),
        Column("type", String),
        Column("primary", Boolean),
        Column("display", String),
    )


emails = _multi_valued_table("scim_user_emails")
phone_numbers = _multi_valued_table("scim_user_phone_numbers")

groups = Table(
    "scim_groups",
    metadata,
    *_resource_columns("scim_groups"),
    Column("display_name", String, nullable=False),
    Column("external_id", String),
    Column("extra", Json, nullable=False),
)

memberships = Table(
    "scim_memberships",
    metadata,
    Column(
        "group_id",
        String(32),
        ForeignKey("scim_groups.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # A member is a user or a group, so there is no foreign key to one table.
    Column("member_id", String(32), primary_key=True, index=True),
    Column("member_type", String, nullable=False),
    Column("display", String),
)
# --8<-- [end:sql-tables]

TABLES = {USER: users, GROUP: groups}
MULTI_VALUED = {"emails": emails, "phone_numbers": phone_numbers}
# The users and groups membership rows name, beside the table a query is on.
member_users = users.alias("member_users")
member_groups = groups.alias("member_groups")
MEMBERS = memberships.outerjoin(
    member_users, member_users.c.id == memberships.c.member_id
).outerjoin(member_groups, member_groups.c.id == memberships.c.member_id)
# What a group shows for a member: the display a client gave, else the
# member's name (records.display_of), an empty string being no name.
MEMBER_DISPLAY = func.coalesce(
    func.nullif(memberships.c.display, ""),
    func.nullif(member_users.c.display_name, ""),
    member_users.c.user_name,
    func.nullif(member_groups.c.display_name, ""),
)


def _retry_on_deadlock(write: Callable[..., Any]) -> Callable[..., Any]:
    """Run a write transaction again when PostgreSQL picked it as a deadlock victim.

    Writers lock groups before users, which avoids most cycles; a rename that
    touches the groups a user belongs to goes the other way, and loses rarely.
    """

    @functools.wraps(write)
    def retrying(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(DEADLOCK_ATTEMPTS):
            try:
                return write(*args, **kwargs)
            except OperationalError as exc:
                state = getattr(exc.orig, "sqlstate", None)
                if state not in RETRYABLE_SQLSTATES or attempt == DEADLOCK_ATTEMPTS - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    return retrying


# --8<-- [start:sql-keyset]
def in_creation_order(
    query: Any, table: Table, past: int | None, backwards: bool
) -> Any:
    """`query` in creation order from position `past` on (or back, newest first).

    A keyset on the `seq` primary key: one index range scan, however deep the
    walk, where an OFFSET would read and drop every row before the page.
    """
    seq = table.c.seq
    if past is not None:
        query = query.where(seq < past if backwards else seq > past)
    return query.order_by(seq.desc() if backwards else seq)


# --8<-- [end:sql-keyset]


class SqlStorage:
    """The storage API on a SQLAlchemy engine, for one tenant's rows."""

    def __init__(self, url: str) -> None:
        self.engine = _make_engine(url)
        self.dialect = self.engine.dialect.name
        metadata.create_all(self.engine)
        self.tenant = DEFAULT_TENANT
        self._scoped: dict[str, SqlStorage] = {DEFAULT_TENANT: self}

    # --8<-- [start:sql-tenants]
    def for_tenant(self, tenant: str) -> "SqlStorage":
        """This storage, scoped to `tenant`'s rows: same engine, same pool."""
        scoped = self._scoped.get(tenant)
        if scoped is None:
            scoped = copy.copy(self)
            scoped.tenant = tenant
            scoped = self._scoped.setdefault(tenant, scoped)
        return scoped

    def of_tenant(self, table: Table) -> ColumnElement:
        """The condition every query puts on a users or groups table."""
        return table.c.tenant == self.tenant

    # --8<-- [end:sql-tenants]

    def reset(self) -> None:
        """Forget everything, every tenant's: for tests, notebooks and demos."""
        with self._write() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))

    # --8<-- [start:sql-read]
    def get_record(
        self, kind: str, record_id: str, members: bool = True
    ) -> dict[str, Any] | None:
        """A record, or None; `members=False` leaves a group's out, unread."""
        with self.engine.connect() as conn:
            table = TABLES[kind]
            row = conn.execute(
                select(table).where(self.of_tenant(table), table.c.id == record_id)
            ).first()
            return self._records(conn, kind, [row], members)[0] if row else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName, in any letter case (one index lookup)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users).where(
                    self.of_tenant(users), users.c.user_name_key == fold(user_name)
                )
            ).first()
            return self._records(conn, USER, [row])[0] if row else None

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
        table = TABLES[kind]
        mine = self.of_tenant(table)
        query = in_creation_order(select(table).where(mine), table, past, backwards)
        query = query.offset(start)
        if stop is not None:
            query = query.limit(max(0, stop - start))
        with self.engine.connect() as conn:
            count = select(func.count()).select_from(table).where(mine)
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query).all()
            return total, self._records(conn, kind, rows, members)

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

        shared/filter_plan.py plans the filter and the sort (and refuses what
        no backend answers); `SqlPlan` writes the plans in SQL.
        """
        table = TABLES[kind]
        sql = SqlPlan(kind, self.dialect)
        where = self.of_tenant(table)
        if search.filter is not None:
            where = and_(where, sql.where(plan_filter(kind, search.filter)))
        query = select(table).where(where)
        # No key (no sortBy, or another type's attribute): the stable order.
        sort_key = plan_sort(kind, search)
        if sort_key is not None and past is None and not backwards:
            descending = search.sort_order == SearchRequest.SortOrder.descending
            query = query.order_by(sql.order_by(sort_key, descending))
        query = in_creation_order(query, table, past, backwards).offset(start)
        if stop is not None:
            query = query.limit(max(0, stop - start))
        count = select(func.count()).select_from(table).where(where)
        with self.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            rows = conn.execute(query).all()
            return total, self._records(conn, kind, rows, members)

    # --8<-- [end:sql-read]

    # --8<-- [start:sql-write]
    @_retry_on_deadlock
    def save_record(
        self, kind: str, record: dict[str, Any], expected_version: int | None = None
    ) -> dict[str, Any]:
        """Create (no `id`) or update a record; with `expected_version`, a CAS."""
        now = _naive_utc(datetime.now(UTC))
        table = TABLES[kind]
        with self._write() as conn:
            if "id" in record:
                record_id = record["id"]
                guard = self.of_tenant(table) & (table.c.id == record_id)
                if expected_version is not None:
                    guard &= table.c.version == expected_version
                values = {**row_values(kind, record), "last_modified": now}
                previous = conn.execute(
                    select(table).where(self.of_tenant(table), table.c.id == record_id)
                ).first()
                if previous is None:
                    raise NotFoundException(detail=f"{kind} {record_id} not found")
                changed = _execute_write(
                    conn,
                    update(table)
                    .where(guard)
                    .values(version=table.c.version + 1, **values),
                    record,
                ).rowcount
                if not changed:
                    raise PreconditionFailedException()
                if display_of(previous._mapping) != display_of(values):
                    self._touch_related(conn, record_id)
            else:
                record_id = uuid.uuid4().hex
                values = {**row_values(kind, record), "created": now}
                _execute_write(
                    conn,
                    insert(table).values(
                        tenant=self.tenant,
                        id=record_id,
                        version=1,
                        last_modified=now,
                        **values,
                    ),
                    record,
                )
            if kind == USER:
                self._write_multi_valued(conn, record_id, record)
            else:
                self._write_members(conn, record_id, record["members"])
            row = conn.execute(select(table).where(table.c.id == record_id)).one()
            return self._records(conn, kind, [row])[0]

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
        with self._write() as conn:
            # Locks the group first, as every writer does (no deadlock cycle).
            previous = conn.execute(
                select(groups)
                .where(self.of_tenant(groups), groups.c.id == group_id)
                .with_for_update()
            ).first()
            if previous is None:
                raise NotFoundException(detail=f"{GROUP} {group_id} not found")
            if expected_version not in (None, previous.version):
                raise PreconditionFailedException()
            named = [member["value"] for member in add]
            current = {
                row.member_id: row.display
                for row in conn.execute(
                    select(memberships.c.member_id, memberships.c.display).where(
                        memberships.c.group_id == group_id,
                        memberships.c.member_id.in_(named),
                    )
                )
            }
            joining = [m for m in add if m["value"] not in current]
            # A member already there is written again only for a new display.
            redisplayed = [
                m
                for m in add
                if m["value"] in current
                and m.get("display") not in (None, current[m["value"]])
            ]
            self._join(conn, group_id, joining, redisplayed)
            left = self._leave(conn, group_id, remove)
            changed = fields is not None and any(
                getattr(previous, name) != value for name, value in fields.items()
            )
            if joining or redisplayed or left or changed:
                values = {"last_modified": _naive_utc(datetime.now(UTC))}
                if changed:
                    values.update(fields)
                conn.execute(
                    update(groups)
                    .where(groups.c.id == group_id)
                    .values(version=groups.c.version + 1, **values)
                )
                if changed and display_of(previous._mapping) != display_of(fields):
                    self._touch_related(conn, group_id)
            row = conn.execute(select(groups).where(groups.c.id == group_id)).one()
            return self._records(conn, GROUP, [row], members=False)[0]

    @_retry_on_deadlock
    def delete_record(
        self, kind: str, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a record and every membership that mentions it."""
        table = TABLES[kind]
        with self._write() as conn:
            mine = self.of_tenant(table) & (table.c.id == record_id)
            guard = mine
            if expected_version is not None:
                guard &= table.c.version == expected_version
            if kind == GROUP:  # undone with the rest if the group is not ours
                self._write_members(conn, record_id, [])
            if not conn.execute(delete(table).where(guard)).rowcount:
                found = conn.execute(select(table.c.id).where(mine))
                if found.first() is None:
                    raise NotFoundException(detail=f"{kind} {record_id} not found")
                raise PreconditionFailedException()
            # Referential integrity: a deleted resource is nobody's member. The
            # memberships are read once the record's row is locked by the DELETE,
            # so one added meanwhile is removed too, and its group moves on.
            group_ids = conn.execute(
                delete(memberships)
                .where(memberships.c.member_id == record_id)
                .returning(memberships.c.group_id)
            ).scalars()
            self._touch(conn, GROUP, sorted(group_ids))

    # --8<-- [end:sql-write]

    # --8<-- [start:sql-helpers]
    def _write(self) -> Any:
        """A write transaction; on SQLite it takes the write lock up front."""
        return _WriteTransaction(self.engine)

    def _write_multi_valued(
        self, conn: Connection, user_id: str, record: dict[str, Any]
    ) -> None:
        for field_name, table in MULTI_VALUED.items():
            conn.execute(delete(table).where(table.c.user_id == user_id))
            entries = [
                {"user_id": user_id, "position": position}
                | {key: entry.get(key) for key in ROW_COLUMNS}
                for position, entry in enumerate(record.get(field_name) or [])
            ]
            if entries:
                conn.execute(insert(table), entries)

    def _write_members(
        self, conn: Connection, group_id: str, members: list[dict[str, Any]]
    ) -> None:
        """Make the membership rows those of `members`, writing only the diff."""
        current = {
            row.member_id: row
            for row in conn.execute(
                select(memberships).where(memberships.c.group_id == group_id)
            )
        }
        wanted = {member["value"]: member for member in members}
        self._join(
            conn,
            group_id,
            [member for key, member in wanted.items() if key not in current],
            [
                member
                for member_id, member in wanted.items()
                if member_id in current
                and current[member_id].display != member.get("display")
            ],
        )
        self._leave(conn, group_id, [m for m in current if m not in wanted])

    def _join(
        self,
        conn: Connection,
        group_id: str,
        joining: list[dict[str, Any]],
        redisplayed: list[dict[str, Any]],
    ) -> None:
        """Insert a row per member joining, and give members a new display."""
        for member in joining:
            kind, member_id = member["type"], member["value"]
            if kind == GROUP and member_id == group_id:
                raise InvalidValueException(detail="a group cannot contain itself")
            # Bumping the version of a joining member (its `groups` changes) is
            # also the check that it exists: the UPDATE locks its row, so a
            # concurrent delete of it either already happened (no row) or waits.
            if kind not in TABLES or not self._touch(conn, kind, [member_id]):
                raise InvalidValueException(
                    detail=f"member {member_id!r} is not an existing {kind}"
                )
        for member in redisplayed:
            conn.execute(
                update(memberships)
                .where(
                    memberships.c.group_id == group_id,
                    memberships.c.member_id == member["value"],
                )
                .values(display=member.get("display"))
            )
        if joining:
            conn.execute(
                insert(memberships),
                [
                    {
                        "group_id": group_id,
                        "member_id": member["value"],
                        "member_type": member["type"],
                        "display": member.get("display"),
                    }
                    for member in joining
                ],
            )

    def _leave(self, conn: Connection, group_id: str, member_ids: list[str]) -> int:
        """Delete the rows of members leaving; how many there were."""
        if not member_ids:
            return 0
        left = conn.execute(
            delete(memberships)
            .where(
                memberships.c.group_id == group_id,
                memberships.c.member_id.in_(member_ids),
            )
            .returning(memberships.c.member_id, memberships.c.member_type)
        ).all()
        for kind in KINDS:  # the members that left show other `groups` now
            self._touch(
                conn, kind, [row.member_id for row in left if row.member_type == kind]
            )
        return len(left)

    def _touch(self, conn: Connection, kind: str, record_ids: list[str]) -> int:
        """New versions for records whose derived attributes changed; how many."""
        if not record_ids:
            return 0
        table = TABLES[kind]
        return conn.execute(
            update(table)
            .where(self.of_tenant(table), table.c.id.in_(record_ids))
            .values(
                version=table.c.version + 1,
                last_modified=_naive_utc(datetime.now(UTC)),
            )
        ).rowcount

    def _touch_related(self, conn: Connection, record_id: str) -> None:
        """New versions for the groups that show this one's display name.

        Not for a renamed group's own members: the `display` in a user's
        `groups` is a label, not the user's data, and bumping 100,000 users
        would make a rename cost as much as the group is large.
        """
        group_ids = conn.execute(
            select(memberships.c.group_id).where(memberships.c.member_id == record_id)
        ).scalars()
        self._touch(conn, GROUP, list(group_ids))

    def _records(
        self, conn: Connection, kind: str, rows: list[Any], members: bool = True
    ) -> list[dict]:
        """Records for rows, with child and derived data loaded in a few queries."""
        if not rows:
            return []
        ids = [row.id for row in rows]
        records = []
        if kind == USER:
            children = {
                name: _children(conn, table, ids)
                for name, table in MULTI_VALUED.items()
            }
            group_rows = conn.execute(
                select(memberships.c.member_id, groups.c.id, groups.c.display_name)
                .join(groups, groups.c.id == memberships.c.group_id)
                .where(memberships.c.member_id.in_(ids))
                .order_by(groups.c.display_name, groups.c.id)
            ).all()
            for row in rows:
                record = {name: getattr(row, name) for name in USER_RECORD_FIELDS}
                record.update(
                    id=row.id,
                    version=row.version,
                    created=_aware(row.created),
                    position=row.seq,
                    last_modified=_aware(row.last_modified),
                    extra=row.extra,
                    emails=children["emails"].get(row.id, []),
                    phone_numbers=children["phone_numbers"].get(row.id, []),
                    groups=[
                        {"value": g.id, "display": g.display_name}
                        for g in group_rows
                        if g.member_id == row.id
                    ],
                )
                if not row.password_hash:
                    del record["password_hash"]
                records.append(record)
            return records
        member_rows = []
        if members:
            member_rows = conn.execute(
                select(
                    memberships.c.group_id,
                    memberships.c.member_id,
                    memberships.c.member_type,
                    MEMBER_DISPLAY.label("display"),
                )
                .select_from(MEMBERS)
                .where(memberships.c.group_id.in_(ids))
            ).all()
        by_group: dict[str, list[dict[str, Any]]] = {row.id: [] for row in rows}
        for m in member_rows:
            by_group[m.group_id].append(
                {"value": m.member_id, "type": m.member_type, "display": m.display}
            )
        for row in rows:
            record = {
                "id": row.id,
                "version": row.version,
                "created": _aware(row.created),
                "position": row.seq,
                "last_modified": _aware(row.last_modified),
                "display_name": row.display_name,
                "external_id": row.external_id,
                "extra": row.extra,
            }
            if members:
                record["members"] = by_group[row.id]
            records.append(record)
        return records


def _naive_utc(moment: datetime) -> datetime:
    """What DateTime columns hold: UTC, without tzinfo (SQLite keeps no zone)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _children(conn: Connection, table: Table, ids: list[str]) -> dict[str, list]:
    result: dict[str, list] = {}
    rows = conn.execute(
        select(table).where(table.c.user_id.in_(ids)).order_by(table.c.position)
    )
    for row in rows:
        entry = {key: getattr(row, key) for key in ROW_COLUMNS}
        result.setdefault(row.user_id, []).append(
            {key: value for key, value in entry.items() if value is not None}
        )
    return result


def _execute_write(conn: Connection, statement: Any, record: dict[str, Any]) -> Any:
    """Run an INSERT or UPDATE of a record; a taken userName is a 409, never a 500.

    The unique index decides, so two workers racing for one userName cannot
    both win, whatever they read before.
    """
    try:
        return conn.execute(statement)
    except IntegrityError:
        raise UniquenessException(
            detail=f"userName {record.get('user_name')!r} is already taken"
        ) from None


class _WriteTransaction:
    """`with engine.begin()`, but on SQLite with BEGIN IMMEDIATE.

    SQLite's default BEGIN takes the write lock only at the first write, and two
    workers that both read first then deadlock; IMMEDIATE takes it at once and
    the other worker waits (up to the busy timeout).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def __enter__(self) -> Connection:
        self.conn = self.engine.connect()
        if self.engine.dialect.name == "sqlite":
            self.conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.conn.begin()
        return self.conn

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
            else:
                self.conn.rollback()
        finally:
            self.conn.close()


def _fold_or_none(value: Any) -> Any:
    """records.fold as SQLite's scim_fold(): NULL stays NULL, a number stays."""
    return fold(value) if isinstance(value, str) else value


def _make_engine(url: str) -> Engine:
    if not url.startswith("sqlite"):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def configure_sqlite(dbapi_connection: Any, _: Any) -> None:
        # The driver must not open transactions on its own: _WriteTransaction
        # does, with BEGIN IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers go on while a writer holds the lock.
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL never corrupts the database; a power cut may only
        # lose the last transactions, and a commit no longer waits for a fsync.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # LIKE must respect case: caseExact attributes compare exactly, the
        # others are folded on both sides by SqlPlan, with records.fold itself.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()
        dbapi_connection.create_function(
            "scim_fold", 1, _fold_or_none, deterministic=True
        )

    return engine


# --8<-- [end:sql-helpers]


# --8<-- [start:sql-filter]
class SqlPlan:
    """Write the plans of shared/filter_plan.py for one table: WHERE and ORDER BY.

    The plan already says where each value lives and what SCIM means; what is
    left is SQL's own. NULL is "unknown" in SQL and false in the plan, so every
    comparison asks `IS NOT NULL` first and a Negation is a plain NOT. SQLite
    and PostgreSQL spell JSON, case folding and code-point order differently.
    """

    def __init__(self, kind: str, dialect: str) -> None:
        self.table = TABLES[kind]
        self.postgres = dialect == "postgresql"
        extra = self.table.c.extra
        self.extra = type_coerce(extra, JSONB) if self.postgres else extra
        self.resource = Scope(self.table.c, self.extra)

    def where(self, plan: Plan, scope: "Scope | None" = None) -> ColumnElement:
        """The condition a row (of the table, or of a collection) satisfies."""
        scope = scope or self.resource
        match plan:
            case Truth(value):
                return true() if value else false()
            case AllOf(terms):
                return and_(true(), *(self.where(term, scope) for term in terms))
            case AnyOf(terms):
                return or_(false(), *(self.where(term, scope) for term in terms))
            case Negation(term):
                return not_(self.where(term, scope))
            case IsNull(target):
                return self.read(target, scope).is_(None)
            case IsPresent(target):
                value = self.read(target, scope)
                if target.type is str:  # RFC 7644 §3.4.2.2: "" is not a value
                    return and_(value.is_not(None), value != "")
                return value.is_not(None)
            case Compare(target):  # the plan has matched the operand's type
                value = self.read(target, scope)
                return and_(value.is_not(None), self.compare(value, plan))
            case Some(Rows(name), entry):
                rows, link, columns = self.rows(name)
                holds = self.where(entry, Scope(columns, None))
                return exists(select(1).select_from(rows).where(link, holds))
            case Some(JsonArray(path), entry):
                elements, is_array = self.elements(path)
                holds = self.where(entry, Scope({}, elements.c.value))
                return exists(select(1).select_from(elements).where(is_array, holds))
        raise TypeError(f"not a plan: {plan!r}")

    def order_by(self, key: SortKey, descending: bool) -> ColumnElement:
        """Records without a value come last ascending, first descending."""
        if key.rows is None:
            value = self.read(key.target, self.resource)
        else:  # the primary entry's value, else the first entry's
            rows = MULTI_VALUED[key.rows.name]
            value = (
                select(rows.c[key.target.name])
                .where(rows.c.user_id == self.table.c.id)
                .order_by(rows.c.primary.is_(True).desc(), rows.c.position)
                .limit(1)
                .scalar_subquery()
            )
        if key.fold:
            value = self.fold(value)
        if key.target.type is str:
            value = self.codepoint_order(value)
        return value.desc().nulls_first() if descending else value.asc().nulls_last()

    def compare(self, value: ColumnElement, compare: Compare) -> ColumnElement:
        """`value op operand`, the operand in the form of the stored values."""
        op, operand = compare.op, compare.value
        if compare.fold:
            value = self.fold(value)
        if isinstance(operand, datetime):
            operand = operand.astimezone(UTC).replace(tzinfo=None)  # as stored
        elif isinstance(operand, int) and compare.target.type is not bool:
            operand = self.number(operand)
        elif isinstance(operand, str) and "\x00" in operand:
            # PostgreSQL's text cannot hold NUL: no value equals or contains
            # such an operand, and one below it is at most its part before NUL.
            # SQLite compares NUL as any character, but its LIKE stops at it.
            if op in LIKE or (op == CompareOperator.eq and self.postgres):
                return false()
            if self.postgres:
                below = op in (CompareOperator.lt, CompareOperator.le)
                op = CompareOperator.le if below else CompareOperator.gt
                operand = operand[: operand.index("\x00")]
        if op in LIKE:
            return getattr(value, LIKE[op])(operand, autoescape=True)
        if isinstance(operand, str) and op != CompareOperator.eq:
            value = self.codepoint_order(value)
        return getattr(operator, op.value)(value, operand)  # operator.eq, .gt...

    def read(self, target: PlanColumn | JsonKey, scope: "Scope") -> ColumnElement:
        """A Column or JsonKey of the plan, as a typed SQL value."""
        if isinstance(target, PlanColumn):
            return scope.columns.get(target.name, null())
        if not self.postgres:  # json_extract gives SQL values of the JSON's types
            value = scope.document
            if target.path:
                value = func.json_extract(value, sqlite_json_path(target.path))
            return type_coerce(value, SQL_TYPES[target.type])
        value = scope.document[target.path]  # `#>`, as JSON; `#>>` as text
        if target.type is str:
            return value.astext
        if target.type is bool:
            typed, json_type = cast(value.astext, Boolean), "boolean"
        else:  # numeric: any JSON number, any operand, exactly
            typed, json_type = cast(value.astext, Numeric), "number"
        return case((func.jsonb_typeof(value) == json_type, typed))

    def rows(self, name: str) -> tuple[Any, ColumnElement, dict[str, Any]]:
        """The rows of a collection, their link to the record, their columns."""
        if name in MULTI_VALUED:  # emails, phone_numbers
            table = MULTI_VALUED[name]
            columns = {column: table.c[column] for column in ROW_COLUMNS}
            return table, table.c.user_id == self.table.c.id, columns
        if name == "groups":  # a user's memberships, and the groups' names
            columns = {
                "value": memberships.c.group_id,
                "display": member_groups.c.display_name,
            }
            link = memberships.c.member_id == self.table.c.id
            on = member_groups.c.id == memberships.c.group_id
            return memberships.join(member_groups, on), link, columns
        columns = {  # a group's members
            "value": memberships.c.member_id,
            "type": memberships.c.member_type,
            "display": MEMBER_DISPLAY,
        }
        return MEMBERS, memberships.c.group_id == self.table.c.id, columns

    def elements(
        self, path: tuple[str, ...], document: ColumnElement | None = None
    ) -> tuple[Any, ColumnElement]:
        """The elements of a JSON array in `extra` (or in `document`), and a
        check that it is one."""
        document = self.extra if document is None else document
        if not self.postgres:
            at = sqlite_json_path(path)
            elements = func.json_each(document, at).table_valued("value")
            return elements, func.json_type(document, at) == "array"
        array = document[path]  # jsonb_array_elements fails on anything else
        array = case((func.jsonb_typeof(array) == "array", array), else_=EMPTY)
        value = sql_column("value", JSONB)
        return func.jsonb_array_elements(array).table_valued(value), true()

    def fold(self, value: ColumnElement) -> ColumnElement:
        """records.fold in SQL: NFC, lower case, NFC, for any letter."""
        if not self.postgres:
            return func.scim_fold(value, type_=String)
        # ICU's root locale lower-cases as Python does, whatever the database's.
        lowered = func.lower(func.normalize(value, type_=String).collate("und-x-icu"))
        return func.normalize(lowered, type_=String)

    def number(self, number: int) -> Decimal | int | float:
        """An integer operand of any size (True is 1), as the database compares it."""
        if self.postgres:  # numeric, not the bigint an int is sent as
            return Decimal(number)
        if abs(number) < 2**63:  # SQLite's integers: larger ones are floats
            return int(number)
        if abs(number) < 10**308:
            return float(number)
        return inf if number > 0 else -inf

    def codepoint_order(self, value: ColumnElement) -> ColumnElement:
        """Strings in code-point order, as Python's; SQLite's binary order is."""
        return value.collate("C") if self.postgres else value


@dataclass(frozen=True)
class Scope:
    """What a plan's targets are read from: a row's columns, a JSON document."""

    columns: Any
    document: ColumnElement | None


def sqlite_json_path(path: tuple[str, ...]) -> str:
    """`$."urn:...:User"."clearanceLevel"`: keys quoted, for their `:` and `.`."""
    return "$" + "".join(f'."{key}"' for key in path)


LIKE = {
    CompareOperator.co: "contains",
    CompareOperator.sw: "startswith",
    CompareOperator.ew: "endswith",
}
SQL_TYPES = {str: String, bool: Boolean, int: Integer, float: Float}
EMPTY = func.jsonb_build_array(type_=JSONB)  # PostgreSQL's []
# --8<-- [end:sql-filter]
