"""The SQL backend against the in-memory one: same answers, real indexes, real locks."""

import threading
import time
import uuid
from datetime import UTC
from datetime import datetime

import pytest
from conftest import POSTGRES_URL
from conftest import postgres_url
from scim2_models import PreconditionFailedException
from scim2_models import ScimFilter
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from sqlalchemy import insert
from sqlalchemy import text

from shared import mapping
from shared import storage
from shared.discovery import UserResource
from shared.sql_storage import SqlStorage
from shared.sql_storage import users

ENTERPRISE = mapping.ENTERPRISE
BASE = "http://testserver/scim/v2"


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path}/scim.sqlite3"


@pytest.fixture(params=["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"])
def sql(request, tmp_path, worker_id):
    """An empty SqlStorage on SQLite, and on PostgreSQL when one is configured."""
    if request.param == "sqlite":
        backend = SqlStorage(f"sqlite:///{tmp_path}/scim.sqlite3")
    else:
        backend = SqlStorage(postgres_url(f"scim_parity_{worker_id}"))
        backend.reset()
    yield backend
    backend.engine.dispose()


def sample_users():
    titles = ["Engineer", "engineer", "Manager", None, "Zoologist", "Éditeur"]
    for index in range(24):
        payload = {
            "userName": f"user{index:02d}@Example.com",
            "displayName": f"User {chr(65 + index)}",
            "active": [True, False, None][index % 3],
            "title": titles[index % len(titles)],
            "nickName": ["Bob", "bobby", None][index % 3],
            "name": {"givenName": ["Ann", "ann", "Zed", None][index % 4]},
            ENTERPRISE: {"department": ["R&D", "Sales", None][index % 3]},
        }
        if index % 2:
            payload["emails"] = [
                {"value": f"u{index}@work.example.com", "type": "work"},
                {"value": f"u{index}@other.example.net"},
                {
                    "value": f"u{index}@home.example.org",
                    "type": "home",
                    "primary": True,
                },
            ]
        if index % 5 == 0:
            payload["phoneNumbers"] = [{"value": f"+1 555 01{index:02d}"}]
        yield UserResource.model_validate(payload)


FILTERS = [
    'userName eq "USER03@example.com"',
    'userName ne "user03@example.com"',
    'userName co "R1"',
    'userName sw "user2"',
    'userName ew "@example.COM"',
    'displayName gt "User M"',
    'displayName ge "User M"',
    'displayName lt "User C"',
    'displayName le "User C"',
    "title pr",
    'title eq "engineer"',
    'title ne "Engineer"',
    'title gt "m"',
    "not (title pr)",
    "not (active eq true)",
    'not (title co "ngi")',
    'not (nickName eq "bob")',
    'not (emails.type eq "home")',
    'not (name.givenName gt "b")',
    "active eq true",
    "active eq false",
    "active ne true",
    "active pr",
    'nickName eq "BOB"',
    'nickName ne "bob"',
    "nickName pr",
    'name.givenName eq "ann"',
    'name.givenName ne "ann"',
    "name.givenName pr",
    f'{ENTERPRISE}:department eq "sales"',
    f"{ENTERPRISE}:department pr",
    f'{ENTERPRISE}:department co "AL"',
    'displayName sw "USER B"',
    'title ew "EUR"',
    'emails.value co "work"',
    'emails.value ne "u1@work.example.com"',
    'emails.type eq "home"',
    "emails pr",
    'emails co "home"',
    'emails[type eq "work" and value sw "u1"]',
    'emails[type eq "home" or primary eq true]',
    'emails[not (type eq "work")]',
    "phoneNumbers pr",
    'phoneNumbers.value ew "10"',
    'title eq "Engineer" or (active eq false and nickName pr)',
    'not (userName sw "user1") and not (emails pr)',
    'meta.resourceType eq "User"',
    "id pr and externalId pr",
]


def load(backend, payloads):
    for user in payloads:
        backend.save_record(storage.USER, mapping.from_scim_user(user))


@pytest.mark.parametrize("filter_", FILTERS)
def test_sql_filters_give_what_scim_filter_match_gives(sql, filter_):
    memory = storage.MemoryStorage()
    load(sql, sample_users())
    load(memory, sample_users())
    search = SearchRequest[UserResource](filter=filter_)

    def to_resource(record):
        return mapping.to_scim_user(record, BASE)

    _, in_memory = memory.search_records(storage.USER, search, 0, None, to_resource)
    total, in_sql = sql.search_records(storage.USER, search, 0, None, to_resource)
    expected = [
        record["user_name"]
        for record in sql.list_records(storage.USER)[1]
        if ScimFilter[UserResource](filter_).match(to_resource(record))
    ]
    assert [record["user_name"] for record in in_sql] == expected
    assert [record["user_name"] for record in in_memory] == expected
    assert total == len(expected)


@pytest.mark.parametrize(
    "sort_by",
    ["userName", "title", "emails", "name.givenName", "active", "meta.created"],
)
@pytest.mark.parametrize("order", ["ascending", "descending"])
def test_sql_sorting_matches_memory(sql, sort_by, order):
    memory = storage.MemoryStorage()
    load(sql, sample_users())
    load(memory, sample_users())
    search = SearchRequest[UserResource](sort_by=sort_by, sort_order=order)

    def to_resource(record):
        return mapping.to_scim_user(record, BASE)

    _, in_memory = memory.search_records(storage.USER, search, 0, None, to_resource)
    _, in_sql = sql.search_records(storage.USER, search, 0, None, to_resource)
    assert [r["user_name"] for r in in_sql] == [r["user_name"] for r in in_memory]


def test_a_restart_keeps_the_data(sqlite_url):
    first = SqlStorage(sqlite_url)
    saved = first.save_record(
        storage.USER, mapping.from_scim_user(next(sample_users()))
    )
    first.engine.dispose()
    second = SqlStorage(sqlite_url)
    assert second.get_record(storage.USER, saved["id"]) == saved
    second.engine.dispose()


def test_two_processes_worth_of_engines_share_one_truth(sqlite_url):
    """Two engines stand for two workers: CAS and uniqueness hold across them."""
    one, two = SqlStorage(sqlite_url), SqlStorage(sqlite_url)
    record = mapping.from_scim_user(UserResource(user_name="bjensen"))
    saved = one.save_record(storage.USER, record)
    with pytest.raises(UniquenessException):
        two.save_record(
            storage.USER, mapping.from_scim_user(UserResource(user_name="BJENSEN"))
        )
    two.save_record(storage.USER, {**saved, "title": "a"}, expected_version=1)
    with pytest.raises(PreconditionFailedException):
        one.save_record(storage.USER, {**saved, "title": "b"}, expected_version=1)
    one.engine.dispose()
    two.engine.dispose()


def test_concurrent_creates_across_engines_leave_one(sqlite_url):
    engines = [SqlStorage(sqlite_url) for _ in range(4)]
    barrier = threading.Barrier(8)
    outcomes = []

    def create(index):
        barrier.wait()
        name = "BJensen" if index % 2 else "bjensen"
        try:
            engines[index % 4].save_record(
                storage.USER, mapping.from_scim_user(UserResource(user_name=name))
            )
            outcomes.append(201)
        except UniquenessException:
            outcomes.append(409)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [201] + [409] * 7
    for engine in engines:
        engine.engine.dispose()


def test_100k_users_filter_by_user_name_and_a_page_stay_fast(sqlite_url):
    """Indexes, not scans: the same speed with 100,000 users as with a few."""
    sql = SqlStorage(sqlite_url)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = [
        {
            "id": uuid.uuid4().hex,
            "version": 1,
            "created": now,
            "last_modified": now,
            "user_name": f"user{index:06d}",
            "user_name_key": f"user{index:06d}",
            "active": True,
            "extra": {},
        }
        for index in range(100_000)
    ]
    with sql.engine.begin() as conn:
        conn.execute(insert(users), rows)
        plan = conn.execute(
            text(
                "EXPLAIN QUERY PLAN SELECT * FROM scim_users WHERE user_name_key = 'x'"
            )
        ).all()
    assert any("USING INDEX" in str(row) for row in plan)
    storage.use(sql)
    try:
        from shared import search

        started = time.perf_counter()
        for index in range(0, 100_000, 5_000):
            name = f"USER{index:06d}"
            reply = search.list_resources(
                "Users", {"filter": f'userName eq "{name}"'}, BASE
            )
            assert reply.body["totalResults"] == 1
        by_name = (time.perf_counter() - started) / 20
        started = time.perf_counter()
        for start in range(1, 100_000, 10_000):
            reply = search.list_resources(
                "Users", {"startIndex": start, "count": 10}, BASE
            )
            assert reply.body["itemsPerPage"] == 10
            assert reply.body["totalResults"] == 100_000
        page = (time.perf_counter() - started) / 10
    finally:
        storage.use(storage.MemoryStorage())
        sql.engine.dispose()
    # Each is a few milliseconds; a full scan of 100k rows would take far more.
    assert by_name < 0.05, by_name
    assert page < 0.05, page
