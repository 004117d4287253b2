"""The storage API on a SQL database, through SQLAlchemy 2: SQLite or PostgreSQL.

Same functions, same records and same guarantees as `MemoryStorage`, but the
work happens in the database so several worker processes can share it:

- filters become WHERE clauses (`SqlFilter`, a scim2-models `FilterVisitor`),
  sorting and paging ORDER BY / LIMIT / OFFSET, totalResults a COUNT;
- userName uniqueness is a unique index on the folded value, so two workers
  creating the same user race into an IntegrityError, answered 409;
- an If-Match write is `UPDATE ... WHERE version = :read`, a compare-and-swap;
- group memberships are rows of their own, so adding a member inserts one row.
"""

import functools
import time
import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from typing import Any

from scim2_models import Group
from scim2_models import InvalidFilterException
from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import ScimFilter
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
from sqlalchemy import JSON
from sqlalchemy import Boolean
from sqlalchemy import Column
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import Integer
from sqlalchemy import MetaData
from sqlalchemy import String
from sqlalchemy import Table
from sqlalchemy import and_
from sqlalchemy import create_engine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import exists
from sqlalchemy import false
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import literal
from sqlalchemy import not_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import true
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql.elements import ColumnElement

from shared.discovery import UserResource
from shared.records import GROUP
from shared.records import USER
from shared.records import display_of
from shared.records import fold

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
Json = JSON().with_variant(JSONB(), "postgresql")

# --8<-- [start:sql-tables]
metadata = MetaData()


def _resource_columns() -> list[Column]:
    """What every resource row has: its order, id, version and timestamps."""
    return [
        # `seq` orders records by creation: the stable default order of pages.
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("id", String(32), nullable=False, unique=True),
        Column("version", Integer, nullable=False),
        Column("created", DateTime, nullable=False),
        Column("last_modified", DateTime, nullable=False),
    ]


users = Table(
    "scim_users",
    metadata,
    *_resource_columns(),
    Column("user_name", String, nullable=False),
    # userName is caseExact false: uniqueness is enforced on the folded form.
    Column("user_name_key", String, nullable=False, unique=True),
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
    *_resource_columns(),
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
USER_COLUMNS = {
    # (schema field, sub-field) -> column of `users`; anything else lives in `extra`.
    ("id", None): "id",
    ("user_name", None): "user_name",
    ("external_id", None): "external_id",
    ("display_name", None): "display_name",
    ("active", None): "active",
    ("title", None): "title",
    ("name", "given_name"): "given_name",
    ("name", "family_name"): "family_name",
    ("department", None): "department",
    ("employee_number", None): "employee_number",
    ("manager", "value"): "manager_id",
    ("meta", "created"): "created",
    ("meta", "last_modified"): "last_modified",
}
GROUP_COLUMNS = {
    ("id", None): "id",
    ("external_id", None): "external_id",
    ("display_name", None): "display_name",
    ("meta", "created"): "created",
    ("meta", "last_modified"): "last_modified",
}
SUB_COLUMNS = {"value", "type", "primary", "display"}


def _naive_utc(moment: datetime) -> datetime:
    """What DateTime columns hold: UTC, without tzinfo (SQLite keeps no zone)."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


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


RETRYABLE_SQLSTATES = {"40P01", "40001"}  # deadlock_detected, serialization_failure
DEADLOCK_ATTEMPTS = 5


class SqlStorage:
    """The storage API on a SQLAlchemy engine."""

    def __init__(self, url: str) -> None:
        self.engine = _make_engine(url)
        self.dialect = self.engine.dialect.name
        metadata.create_all(self.engine)

    def reset(self) -> None:
        """Forget everything: for tests, notebooks and demos."""
        with self._write() as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(delete(table))

    # --8<-- [start:sql-read]
    def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """A record, or None when there is no such record."""
        with self.engine.connect() as conn:
            table = TABLES[kind]
            row = conn.execute(select(table).where(table.c.id == record_id)).first()
            return self._records(conn, kind, [row])[0] if row else None

    def find_user_by_user_name(self, user_name: str) -> dict[str, Any] | None:
        """The user with this userName, in any letter case (one index lookup)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users).where(users.c.user_name_key == fold(user_name))
            ).first()
            return self._records(conn, USER, [row])[0] if row else None

    def list_records(
        self, kind: str, start: int = 0, stop: int | None = None
    ) -> tuple[int, list[dict[str, Any]]]:
        """How many records of a kind exist, and those in [start:stop)."""
        table = TABLES[kind]
        query = select(table).order_by(table.c.seq).offset(start)
        if stop is not None:
            query = query.limit(max(0, stop - start))
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(table)).scalar_one()
            return total, self._records(conn, kind, conn.execute(query).all())

    def search_records(
        self,
        kind: str,
        search: SearchRequest,
        start: int,
        stop: int | None,
        to_resource: Callable[[dict[str, Any]], Any],
    ) -> tuple[int, list[dict[str, Any]]]:
        """Filter, sort and page in the database: WHERE, ORDER BY, LIMIT/OFFSET."""
        table = TABLES[kind]
        model = UserResource if kind == USER else Group
        where = true()
        if search.filter is not None:
            where = SqlFilter(kind, model, self.dialect).visit(search.filter.ast)
        query = select(table).where(where)
        binding = search.sort_binding(model) if search.sort_by else None
        if binding is not None:
            key = _sort_key(kind, binding, self.dialect)
            if search.sort_order == SearchRequest.SortOrder.descending:
                query = query.order_by(key.desc().nulls_first())
            else:
                query = query.order_by(key.asc().nulls_last())
        elif search.sort_by is not None:
            # Not an attribute of this type: its records have no value and sort
            # last (RFC 7644 §3.4.2.3), in their stable order.
            pass
        query = query.order_by(table.c.seq).offset(start)
        if stop is not None:
            query = query.limit(max(0, stop - start))
        count = select(func.count()).select_from(table).where(where)
        with self.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            return total, self._records(conn, kind, conn.execute(query).all())

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
                guard = table.c.id == record_id
                if expected_version is not None:
                    guard &= table.c.version == expected_version
                values = {**self._row(kind, record), "last_modified": now}
                previous = conn.execute(
                    select(table).where(table.c.id == record_id)
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
                    self._touch_related(conn, kind, record_id)
            else:
                record_id = uuid.uuid4().hex
                values = {**self._row(kind, record), "created": now}
                _execute_write(
                    conn,
                    insert(table).values(
                        id=record_id, version=1, last_modified=now, **values
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
    def delete_record(
        self, kind: str, record_id: str, expected_version: int | None = None
    ) -> None:
        """Delete a record and every membership that mentions it."""
        table = TABLES[kind]
        with self._write() as conn:
            guard = table.c.id == record_id
            if expected_version is not None:
                guard &= table.c.version == expected_version
            if kind == GROUP:
                self._write_members(conn, record_id, [])
            if not conn.execute(delete(table).where(guard)).rowcount:
                found = conn.execute(select(table.c.id).where(table.c.id == record_id))
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

    def _write(self) -> Any:
        """A write transaction; on SQLite it takes the write lock up front."""
        return _WriteTransaction(self.engine)

    def _row(self, kind: str, record: dict[str, Any]) -> dict[str, Any]:
        """The column values of a record, without the derived and child data."""
        if kind == GROUP:
            return {
                "display_name": record["display_name"],
                "external_id": record["external_id"],
                "extra": record["extra"],
            }
        columns = {name: record.get(name) for name in USER_RECORD_FIELDS}
        columns["user_name_key"] = fold(record["user_name"])
        columns["extra"] = record["extra"]
        return columns

    def _write_multi_valued(
        self, conn: Connection, user_id: str, record: dict[str, Any]
    ) -> None:
        for field_name, table in MULTI_VALUED.items():
            conn.execute(delete(table).where(table.c.user_id == user_id))
            entries = [
                {"user_id": user_id, "position": position}
                | {key: entry.get(key) for key in SUB_COLUMNS}
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
        new = wanted.keys() - current.keys()
        gone = current.keys() - wanted.keys()
        for member_id in new:
            kind = wanted[member_id]["type"]
            if kind == GROUP and member_id == group_id:
                raise InvalidValueException(detail="a group cannot contain itself")
            # Bumping the version of a joining member (its `groups` changes) is
            # also the check that it exists: the UPDATE locks its row, so a
            # concurrent delete of it either already happened (no row) or waits.
            if kind not in TABLES or not self._touch(conn, kind, [member_id]):
                raise InvalidValueException(
                    detail=f"member {member_id!r} is not an existing {kind}"
                )
        if gone:
            conn.execute(
                delete(memberships).where(
                    memberships.c.group_id == group_id,
                    memberships.c.member_id.in_(gone),
                )
            )
        changed_display = [
            member_id
            for member_id in current.keys() & wanted.keys()
            if current[member_id].display != wanted[member_id].get("display")
        ]
        for member_id in changed_display:
            conn.execute(
                update(memberships)
                .where(
                    memberships.c.group_id == group_id,
                    memberships.c.member_id == member_id,
                )
                .values(display=wanted[member_id].get("display"))
            )
        if new:
            conn.execute(
                insert(memberships),
                [
                    {
                        "group_id": group_id,
                        "member_id": member_id,
                        "member_type": wanted[member_id]["type"],
                        "display": wanted[member_id].get("display"),
                    }
                    for member_id in new
                ],
            )
        # The members that left show a different `groups` now.
        for kind in (USER, GROUP):
            self._touch(conn, kind, [m for m in gone if current[m].member_type == kind])

    def _touch(self, conn: Connection, kind: str, record_ids: list[str]) -> int:
        """New versions for records whose derived attributes changed; how many."""
        if not record_ids:
            return 0
        table = TABLES[kind]
        return conn.execute(
            update(table)
            .where(table.c.id.in_(record_ids))
            .values(
                version=table.c.version + 1,
                last_modified=_naive_utc(datetime.now(UTC)),
            )
        ).rowcount

    def _touch_related(self, conn: Connection, kind: str, record_id: str) -> None:
        """New versions for the records that show this one's display name."""
        group_ids = conn.execute(
            select(memberships.c.group_id).where(memberships.c.member_id == record_id)
        ).scalars()
        self._touch(conn, GROUP, list(group_ids))
        if kind == GROUP:
            rows = conn.execute(
                select(memberships.c.member_id, memberships.c.member_type).where(
                    memberships.c.group_id == record_id
                )
            ).all()
            for member_kind in (USER, GROUP):
                self._touch(
                    conn,
                    member_kind,
                    [r.member_id for r in rows if r.member_type == member_kind],
                )

    def _records(self, conn: Connection, kind: str, rows: list[Any]) -> list[dict]:
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
        member_rows = conn.execute(
            select(
                memberships.c.group_id,
                memberships.c.member_id,
                memberships.c.member_type,
                func.coalesce(
                    memberships.c.display,
                    users.c.display_name,
                    users.c.user_name,
                    _member_groups.c.display_name,
                ).label("display"),
            )
            .outerjoin(users, users.c.id == memberships.c.member_id)
            .outerjoin(_member_groups, _member_groups.c.id == memberships.c.member_id)
            .where(memberships.c.group_id.in_(ids))
        ).all()
        for row in rows:
            records.append(
                {
                    "id": row.id,
                    "version": row.version,
                    "created": _aware(row.created),
                    "last_modified": _aware(row.last_modified),
                    "display_name": row.display_name,
                    "external_id": row.external_id,
                    "extra": row.extra,
                    "members": [
                        {
                            "value": m.member_id,
                            "type": m.member_type,
                            "display": m.display,
                        }
                        for m in member_rows
                        if m.group_id == row.id
                    ],
                }
            )
        return records


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
_member_groups = groups.alias("member_groups")


def _children(conn: Connection, table: Table, ids: list[str]) -> dict[str, list]:
    result: dict[str, list] = {}
    rows = conn.execute(
        select(table).where(table.c.user_id.in_(ids)).order_by(table.c.position)
    )
    for row in rows:
        entry = {key: getattr(row, key) for key in SUB_COLUMNS}
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
        # others are lower-cased on both sides by SqlFilter.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()

    return engine


# --8<-- [start:sql-filter]
class SqlFilter(FilterVisitor[ColumnElement]):
    """Translate a SCIM filter into a WHERE clause on one resource table.

    It gives what `ScimFilter.match` gives in memory: attributes of another
    resource type are false (RFC 7644 §3.4.2.1), caseExact false strings compare
    lower-cased, `ne` holds on a missing value, and a comparison on a
    multi-valued attribute holds when one of its values does (`ne`: when none
    equals the operand).
    """

    def __init__(self, kind: str, model: Any, dialect: str) -> None:
        self.kind = kind
        self.model = model
        self.dialect = dialect
        self.table = TABLES[kind]

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement:
        terms = [self.visit(term) for term in node.terms]
        return and_(*terms) if node.op == LogicalOperator.and_ else or_(*terms)

    def visit_not(self, node: Not) -> ColumnElement:
        return not_(self.visit(node.expr))

    def visit_present(self, node: Present) -> ColumnElement:
        binding = self._resolve(node.attr_path)
        if binding is None:
            return false()
        if binding.field_name in MULTI_VALUED or self._is_members(binding):
            table, link = self._child(binding)
            columns = [binding.sub_field_name] if binding.sub_field_name else ["value"]
            present = or_(*(_present(self._child_column(table, c)) for c in columns))
            return exists().where(link, present)
        return _present(self._column(binding))

    def visit_comparison(self, node: Comparison) -> ColumnElement:
        binding = self._resolve(node.attr_path, for_comparison=True)
        if binding is None:
            return false()
        expected = coerce_value(binding, node.value, node.op)
        if binding.field_name in MULTI_VALUED or self._is_members(binding):
            table, link = self._child(binding)
            column = self._child_column(table, binding.sub_field_name or "value")
            if node.op == CompareOperator.ne:
                equal = self._compare(column, CompareOperator.eq, expected, binding)
                return not_(exists().where(link, equal))
            return exists().where(
                link, self._compare(column, node.op, expected, binding)
            )
        return self._compare(self._column(binding), node.op, expected, binding)

    def visit_value_path(self, node: ValuePath) -> ColumnElement:
        binding = self._resolve(node.attr_path)
        if binding is None:
            return false()
        if not (binding.field_name in MULTI_VALUED or self._is_members(binding)):
            raise InvalidFilterException(
                detail=f"Filtering inside {node.attr_path} is not supported in SQL"
            )
        table, link = self._child(binding)
        inner = _ChildFilter(self, node.attr_path, table).visit(node.val_filter)
        return exists().where(link, inner)

    def _compare(
        self,
        column: ColumnElement,
        op: CompareOperator,
        expected: Any,
        binding: AttributeBinding,
    ) -> ColumnElement:
        return _compare(column, op, expected, binding, self.dialect)

    def _resolve(
        self, attr_path: AttrPath, for_comparison: bool = False
    ) -> AttributeBinding | None:
        return resolve_filter_path(self.model, attr_path, for_comparison)

    def _is_members(self, binding: AttributeBinding) -> bool:
        return binding.field_name in ("members", "groups")

    def _child(self, binding: AttributeBinding) -> tuple[Any, ColumnElement]:
        """The table holding a multi-valued attribute's values, and its link."""
        if binding.field_name == "members" and self.kind == GROUP:
            return memberships, memberships.c.group_id == self.table.c.id
        if binding.field_name == "groups" and self.kind == USER:
            return memberships, memberships.c.member_id == self.table.c.id
        table = MULTI_VALUED[binding.field_name]
        return table, table.c.user_id == self.table.c.id

    def _child_column(self, table: Any, sub_field: str) -> ColumnElement:
        if table is memberships:
            if self.kind == USER:  # a user's `groups`: value and display
                names = {
                    "value": memberships.c.group_id,
                    "display": select(_member_groups.c.display_name)
                    .where(_member_groups.c.id == memberships.c.group_id)
                    .scalar_subquery(),
                    "type": literal("direct"),
                }
            else:
                names = {
                    "value": memberships.c.member_id,
                    "type": memberships.c.member_type,
                    "display": memberships.c.display,
                }
            if sub_field not in names:
                return literal(None)
            return names[sub_field]
        if sub_field not in SUB_COLUMNS:
            return literal(None)
        return table.c[sub_field]

    def _column(self, binding: AttributeBinding) -> ColumnElement:
        """The column (or JSON value in `extra`) a single-valued attribute lives in."""
        columns = USER_COLUMNS if self.kind == USER else GROUP_COLUMNS
        key = (binding.field_name, binding.sub_field_name)
        if key == ("user_name", None) and self.kind == USER:
            # Already folded, and indexed: `userName eq` is one index lookup.
            return self.table.c.user_name_key
        if key in columns:
            return self.table.c[columns[key]]
        if key == ("meta", "resource_type"):
            return literal(self.kind)
        if binding.is_multivalued or binding.field_name in ("meta", "schemas"):
            raise InvalidFilterException(
                detail=f"Filtering on {binding.urn} is not supported in SQL"
            )
        path = json_path(binding)
        element = self.table.c.extra[path]
        if binding.target_type is bool:
            return element.as_boolean()
        return element.as_string()


class _ChildFilter(SqlFilter):
    """The filter inside `emails[...]`: sub-attributes of one child row."""

    def __init__(self, parent: SqlFilter, head: AttrPath, table: Any) -> None:
        super().__init__(parent.kind, parent.model, parent.dialect)
        self.head = head
        self.child_table = table

    def _qualified(self, attr_path: AttrPath) -> AttrPath:
        return AttrPath(self.head.attr, attr_path.attr, self.head.uri)

    def visit_present(self, node: Present) -> ColumnElement:
        column = self._child_column(
            self.child_table, sub_attribute_name(node.attr_path)
        )
        return _present(column)

    def visit_comparison(self, node: Comparison) -> ColumnElement:
        binding = self._resolve(self._qualified(node.attr_path), for_comparison=True)
        if binding is None:
            return false()
        expected = coerce_value(binding, node.value, node.op)
        column = self._child_column(
            self.child_table, sub_attribute_name(node.attr_path)
        )
        return self._compare(column, node.op, expected, binding)

    def visit_value_path(self, node: ValuePath) -> ColumnElement:
        return false()  # nested value paths are not SCIM (RFC 7644 errata 7122)


def resolve_filter_path(
    model: Any, attr_path: AttrPath, for_comparison: bool = False
) -> AttributeBinding | None:
    """Bind an attribute path of a filter to `model`, as `ScimFilter.match` does.

    A filter bound to the model resolves its paths: None for an attribute the
    model does not have, which is false rather than an error (RFC 7644
    §3.4.2.1). A comparison on a multi-valued complex attribute
    (`emails co "x"`) binds its `value` sub-attribute (`resolve_comparison`).
    """
    bound = ScimFilter[model](Present(attr_path))
    resolve = bound.resolve_comparison if for_comparison else bound.resolve
    return resolve(attr_path, strict=False)


def sub_attribute_name(attr_path: AttrPath) -> str:
    """The Python name of a sub-attribute written in a value filter."""
    return {"$ref": "ref"}.get(attr_path.attr, attr_path.attr.lower())


def _present(column: ColumnElement) -> ColumnElement:
    if isinstance(column.type, String):
        return and_(column.is_not(None), column != "")
    return column.is_not(None)


def _compare(
    column: ColumnElement,
    op: CompareOperator,
    expected: Any,
    binding: AttributeBinding,
    dialect: str,
) -> ColumnElement:
    """`column op expected`, with the semantics of ScimFilter.match."""
    if isinstance(expected, datetime):
        expected = _naive_utc(expected)
    if isinstance(expected, str):
        expected = binding.comparable(expected)
        if not binding.case_exact and column.key != "user_name_key":
            column = func.lower(column)
    if expected is None:
        if op == CompareOperator.eq:
            return column.is_(None)
        return column.is_not(None) if op == CompareOperator.ne else false()
    if op == CompareOperator.ne:
        return or_(column.is_(None), column != expected)
    # SQL compares NULL to "unknown", and NOT (unknown) drops the row where
    # ScimFilter.match says `not (title eq "x")` holds: make it plainly false.
    return and_(column.is_not(None), _holds(column, op, expected, dialect))


def _holds(
    column: ColumnElement, op: CompareOperator, expected: Any, dialect: str
) -> ColumnElement:
    if op == CompareOperator.eq:
        return column == expected
    if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
        if not isinstance(expected, str):
            return false()
        method = {"co": "contains", "sw": "startswith", "ew": "endswith"}[op.value]
        return getattr(column, method)(expected, autoescape=True)
    if isinstance(expected, str):
        column = _codepoint_order(column, dialect)
    return {
        CompareOperator.gt: column > expected,
        CompareOperator.ge: column >= expected,
        CompareOperator.lt: column < expected,
        CompareOperator.le: column <= expected,
    }[op]


# --8<-- [end:sql-filter]


def _codepoint_order(column: ColumnElement, dialect: str) -> ColumnElement:
    """Order strings by code point, as Python does; SQLite already does."""
    return column.collate("C") if dialect == "postgresql" else column


def json_path(binding: AttributeBinding) -> tuple[str, ...]:
    """The keys leading to an attribute inside `extra`, in SCIM spelling."""
    # The URN spells the attribute as its schema does, after the schema's
    # URN: `...:2.0:User:name.givenName`. SCIM names hold no `:` and no `.`.
    names = tuple(binding.urn.rpartition(":")[2].split("."))
    if binding.urn.lower().startswith(ENTERPRISE.lower()):
        return (ENTERPRISE, *names)
    return names


def _sort_key(kind: str, binding: AttributeBinding, dialect: str) -> ColumnElement:
    """The value a record sorts by: its column, or the primary (else first) entry."""
    sql_filter = SqlFilter(kind, UserResource if kind == USER else Group, dialect)
    if binding.field_name in MULTI_VALUED:
        table = MULTI_VALUED[binding.field_name]
        key = (
            select(table.c[binding.sub_field_name or "value"])
            .where(table.c.user_id == sql_filter.table.c.id)
            .order_by(table.c.primary.is_(True).desc(), table.c.position)
            .limit(1)
            .scalar_subquery()
        )
    elif sql_filter._is_members(binding):
        raise InvalidFilterException(detail="Sorting on members is not supported")
    else:
        key = sql_filter._column(binding)
    if not isinstance(key.type, String):
        return key  # COLLATE only applies to strings: PostgreSQL refuses it elsewhere
    if not binding.case_exact:
        key = func.lower(key)
    return _codepoint_order(key, dialect)
