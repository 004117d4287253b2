"""The Django ORM backend gives what the other backends give, through storage and HTTP.

conftest.py runs the whole behaviour suite on it too (the django-sqlite and
django-postgres backends); this file holds what is particular to it: records
and versions as MemoryStorage makes them, every kind of filter and sort against
the in-memory results, and a few HTTP checks.
"""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.conf import settings

if not settings.SETTINGS_MODULE.endswith("django_orm_settings"):
    pytest.skip(
        "run with DJANGO_SETTINGS_MODULE=django_orm_settings",
        allow_module_level=True,
    )

import test_shared_storage  # noqa: E402
from conftest import ENTERPRISE  # noqa: E402
from conftest import ScimClient  # noqa: E402
from conftest import assert_error  # noqa: E402
from conftest import create_group  # noqa: E402
from conftest import create_user  # noqa: E402
from conftest import group_body  # noqa: E402
from conftest import make_app  # noqa: E402
from conftest import patch_body  # noqa: E402
from conftest import user_body  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import OperationalError  # noqa: E402
from django.db import transaction  # noqa: E402
from scim2_models import Group  # noqa: E402
from scim2_models import InvalidFilterException  # noqa: E402
from scim2_models import SearchRequest  # noqa: E402

from integrations.django_app.orm_storage import DjangoOrmStorage  # noqa: E402
from shared import mapping  # noqa: E402
from shared import storage  # noqa: E402
from shared.discovery import UserResource  # noqa: E402

DATABASES = {"sqlite": "default"}  # test id -> DATABASES alias
if "postgres" in settings.DATABASES:
    DATABASES["postgres"] = "postgres"


@pytest.fixture(params=list(DATABASES))
def orm(
    request: pytest.FixtureRequest,
    django_databases: None,
    thread_connections_closed: None,
) -> Iterator[DjangoOrmStorage]:
    """An empty DjangoOrmStorage on one database, serving shared.storage's functions."""
    backend = DjangoOrmStorage(using=DATABASES[request.param])
    backend.reset()
    previous = storage.backend()
    storage.use(backend)
    yield backend
    storage.use(previous)
    backend.reset()


def test_the_migrations_match_the_models(django_databases):
    # Exits with an error when a model changed without its migration.
    call_command("makemigrations", "scim", check=True, dry_run=True, verbosity=0)


# 1. Records, versions and retries: as MemoryStorage and SqlStorage do.


def test_records_look_like_memory_storage_records(orm):
    """Same keys and values as MemoryStorage, password_hash only when set."""
    memory = storage.MemoryStorage()
    payload = {
        "userName": "bjensen",
        "name": {"givenName": "Barbara", "middleName": "J"},
        "emails": [{"value": "b@example.com", "type": "work", "primary": True}],
        "phoneNumbers": [{"value": "+33 1 23", "type": "mobile"}],
        ENTERPRISE: {"department": "R&D", "costCenter": "42"},
    }
    records = [
        backend.save_record(
            storage.USER, mapping.from_scim_user(UserResource.model_validate(payload))
        )
        for backend in (memory, orm)
    ]
    derived = ("id", "created", "last_modified")
    in_memory, in_orm = (
        {k: v for k, v in r.items() if k not in derived} for r in records
    )
    assert in_orm == in_memory
    assert "password_hash" not in in_orm
    with_password = mapping.from_scim_user(
        UserResource(user_name="alice", password="s3cret")
    )
    saved = orm.save_record(storage.USER, with_password)
    assert mapping.check_password("s3cret", saved["password_hash"])


def touch_scenario(backend: Any) -> list[int]:
    """Members join, leave and get renamed; the versions that moved, in order."""
    save = backend.save_record
    alice = save(storage.USER, test_shared_storage.user_record("alice"))
    bob = save(storage.USER, test_shared_storage.user_record("bob"))
    admins = save(
        storage.GROUP, test_shared_storage.group_record("Admins", alice["id"])
    )
    everyone = test_shared_storage.group_record("Everyone")
    everyone["members"] = [{"value": admins["id"], "type": storage.GROUP}]
    everyone = save(storage.GROUP, everyone)
    bob_only = [{"value": bob["id"], "type": storage.USER}]
    save(storage.GROUP, {**admins, "members": bob_only})
    # Bob has no displayName: Admins shows his userName, so a rename shows too.
    save(
        storage.USER,
        {**backend.get_record(storage.USER, bob["id"]), "user_name": "rob"},
    )
    renamed = {
        **backend.get_record(storage.GROUP, admins["id"]),
        "display_name": "Root",
    }
    save(storage.GROUP, renamed)
    backend.delete_record(storage.USER, bob["id"])
    return [
        backend.get_record(storage.USER, alice["id"])["version"],
        backend.get_record(storage.GROUP, admins["id"])["version"],
        backend.get_record(storage.GROUP, everyone["id"])["version"],
    ]


def test_versions_move_as_in_memory_storage(orm):
    assert touch_scenario(orm) == touch_scenario(storage.MemoryStorage())


class Deadlock(Exception):
    sqlstate = "40P01"  # what psycopg reports for PostgreSQL's deadlock victim


def test_a_deadlock_victim_is_run_again_unless_in_a_callers_transaction(
    orm, monkeypatch
):
    write = DjangoOrmStorage._write_multi_valued
    failures = []

    def deadlock_once(self, *args):
        write(self, *args)  # the first attempt wrote, and must be rolled back
        if not failures:
            failures.append(True)
            raise OperationalError("deadlock detected") from Deadlock()

    monkeypatch.setattr(DjangoOrmStorage, "_write_multi_valued", deadlock_once)
    orm.save_record(storage.USER, test_shared_storage.user_record("alice"))
    assert orm.list_records(storage.USER)[0] == 1
    failures.clear()
    with pytest.raises(OperationalError), transaction.atomic(using=orm.using):
        orm.save_record(storage.USER, test_shared_storage.user_record("bob"))
    assert orm.find_user_by_user_name("bob") is None


def test_unknown_member_type_and_self_membership_are_invalid(orm):
    group = orm.save_record(storage.GROUP, test_shared_storage.group_record("G"))
    for member in (
        {"value": group["id"], "type": "Group"},
        {"value": "x", "type": "Robot"},
    ):
        with pytest.raises(storage.InvalidValueException):
            orm.save_record(storage.GROUP, {**group, "members": [member]})


# 2. Filters, sorting and paging: the same results as in memory.

PEOPLE = [
    user_body(
        "bjensen",
        externalId="EXT-1",
        displayName="Barbara Jensen",
        nickName="Babs",
        title="Engineer",
        active=True,
        name={"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
        emails=[
            {"value": "bjensen@example.com", "type": "work", "primary": True},
            {"value": "babs@home.example.org", "type": "home"},
        ],
        phoneNumbers=[{"value": "+33 1 23 45 67 89", "type": "work"}],
        **{
            ENTERPRISE: {"department": "R&D", "employeeNumber": "7", "costCenter": "42"}
        },
    ),
    user_body(
        "JSmith",
        externalId="ext-2",
        displayName="John Smith",
        title="Manager",
        active=False,
        name={"givenName": "John", "familyName": "Smith"},
        emails=[{"value": "jsmith@corp.example.org", "type": "home"}],
        **{ENTERPRISE: {"department": "Sales", "employeeNumber": "12"}},
    ),
    user_body(
        "achen",
        displayName="Alice Chen",
        active=True,
        userType="Employee",
        locale="fr-FR",
        emails=[
            {
                "value": "achen@example.com",
                "type": "work",
                "primary": False,
                "display": "Alice at work",
            }
        ],
        phoneNumbers=[{"value": "+1 555 0100", "type": "mobile"}],
        **{ENTERPRISE: {"department": "sales", "organization": "Acme"}},
    ),
    user_body("zed", active=True, title=""),
    user_body("mjones", displayName="", title="engineer", userType="Contractor"),
    user_body(
        "o.brien",
        displayName="Orla O'Brien",
        name={"formatted": "Ms. Orla O'Brien"},
        emails=[
            {"value": "orla@example.com", "type": "other"},
            {"value": "ORLA@corp.example.org", "type": "work", "primary": True},
        ],
    ),
    *(
        user_body(
            f"user{index:02d}",
            displayName=f"User {index:02d}" if index % 3 else None,
            title=["Engineer", "Manager", None, "Director"][index % 4],
            active=[True, False, None][index % 3],
            emails=[{"value": f"user{index:02d}@example.com", "type": "work"}]
            if index % 2
            else [],
            **({ENTERPRISE: {"employeeNumber": str(index)}} if index % 5 else {}),
        )
        for index in range(14)
    ),
]
MANAGED = {"zed": "bjensen", "achen": "JSmith"}  # user -> manager
GROUPS = {  # display name -> member names (a group's name makes it a Group member)
    "Admins": ["bjensen", "achen"],
    "Everyone": ["bjensen", "JSmith", "achen", "zed", "mjones", "Admins"],
    "Empty": [],
    "Ops": ["o.brien", "user03"],
}

USER_FILTERS = [
    'userName eq "bjensen"',
    'userName eq "BJENSEN"',
    'userName ne "bjensen"',
    'userName co "EN"',
    'userName sw "j"',
    'userName ew "S"',
    'userName gt "m"',
    'userName ge "mjones"',
    'userName lt "b"',
    'userName le "bjensen"',
    "displayName pr",
    "not (displayName pr)",
    'displayName co " "',
    "displayName eq null",
    'displayName eq ""',
    'title eq "engineer"',
    'title ne "Engineer"',
    "title pr",
    "active eq true",
    "active eq false",
    "active ne true",
    "active pr",
    'externalId eq "EXT-1"',
    'externalId eq "ext-1"',  # caseExact: no match
    'externalId co "XT"',
    'externalId sw "ext"',
    'externalId ew "2"',
    'emails co "example.com"',
    'emails.value co "CORP"',
    'emails.type eq "work"',
    'emails.type ne "work"',
    'emails.value ne "orla@example.com"',
    "emails.primary eq true",
    "emails.primary eq false",
    "emails pr",
    "not (emails pr)",
    "emails.display pr",
    'emails[type eq "work" and value ew ".org"]',
    'emails[type eq "work" or primary eq true]',
    'emails[not (type eq "work")]',
    "emails[primary pr]",
    'emails[value sw "orla"] and displayName pr',
    'phoneNumbers.value sw "+33"',
    'phoneNumbers[type eq "mobile"]',
    'name.givenName eq "barbara"',
    'name.familyName sw "J"',
    "name.middleName pr",
    "name pr",
    'name.formatted co "orla"',
    'nickName eq "babs"',
    'userType ne "Employee"',
    'locale sw "fr"',
    f'{ENTERPRISE}:department eq "sales"',
    f'{ENTERPRISE}:department ne "sales"',
    f'{ENTERPRISE}:employeeNumber gt "5"',
    f"{ENTERPRISE}:employeeNumber pr",
    f'{ENTERPRISE}:costCenter eq "42"',
    f'{ENTERPRISE}:organization co "ac"',
    f"{ENTERPRISE}:manager pr",
    f'{ENTERPRISE}:manager.value eq "{{bjensen}}"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "zed"',
    'meta.resourceType eq "User"',
    'meta.created ge "{created_user05}"',
    'meta.created lt "{created_achen}"',
    'meta.lastModified gt "{modified_user10}"',
    'groups.value eq "{Admins}"',
    'groups.display eq "everyone"',
    'groups.type eq "direct"',
    "groups pr",
    "not (groups pr)",
    'groups[display sw "o"]',
    'id eq "{achen}"',
    'id ne "{achen}"',
    '(title pr or active eq false) and emails.type eq "work"',
    'not (userName sw "a" or userName sw "b")',
    'title eq "Engineer" and not (active eq true)',
    'userName sw "user" and (title eq "manager" or displayName ew "3")',
]
GROUP_FILTERS = [
    'displayName eq "admins"',
    'displayName co "e"',
    'displayName gt "B"',
    'members.value eq "{bjensen}"',
    'members.value ne "{bjensen}"',
    'members[type eq "Group"]',
    'members.type eq "user"',
    'members.display eq "Barbara Jensen"',
    'members.display eq "zed"',  # no displayName: the userName shows
    'members.display eq "USER03"',
    'members.display eq "admins"',  # a group shows its displayName
    'members[display co "(ops)" and type eq "User"]',
    "members pr",
    "not (members pr)",
    "externalId pr",
    'meta.resourceType eq "Group"',
    'meta.created gt "{created_Admins}"',
]
SORTS = [
    "userName",
    "displayName",
    "title",
    "active",
    "externalId",
    "emails",
    "emails.type",
    "phoneNumbers.value",
    "name.familyName",
    "nickName",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "emails.primary",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
]


def populate(backend: Any) -> dict[str, str]:
    """Save PEOPLE and GROUPS; the values filters name, by the keys they use."""
    saved: dict[str, dict] = {}
    for body in PEOPLE:
        user = mapping.from_scim_user(UserResource.model_validate(body))
        if body["userName"] in MANAGED:
            user["manager_id"] = saved[MANAGED[body["userName"]]]["id"]
        saved[body["userName"]] = backend.save_record(storage.USER, user)
    for display_name, member_names in GROUPS.items():
        members = [
            {"value": saved[name]["id"], "type": "Group" if name in GROUPS else "User"}
            for name in member_names
        ]
        if display_name == "Ops":  # a display given by the client
            members[0]["display"] = "Orla (ops)"
        external_id = {"externalId": "G-1"} if display_name == "Admins" else {}
        body = group_body(display_name, **external_id)
        record = mapping.from_scim_group(Group.model_validate(body))
        saved[display_name] = backend.save_record(
            storage.GROUP, {**record, "members": members}
        )
    names: dict[str, str] = {}
    for name, record in saved.items():
        current = backend.get_record(
            storage.GROUP if name in GROUPS else storage.USER, record["id"]
        )
        names[name] = current["id"]
        names[f"created_{name}"] = current["created"].isoformat()
        names[f"modified_{name}"] = current["last_modified"].isoformat()
    return names


@pytest.fixture(scope="class", params=list(DATABASES))
def stores(request, django_databases) -> Iterator[list[tuple[Any, dict[str, str]]]]:
    """The same users and groups in memory and in the ORM backend, read-only."""
    orm = DjangoOrmStorage(using=DATABASES[request.param])
    orm.reset()
    memory = storage.MemoryStorage()
    yield [(memory, populate(memory)), (orm, populate(orm))]
    orm.reset()


def name_of(record: dict[str, Any]) -> str:
    return record.get("user_name") or record["display_name"]


def search(backend, kind, search_request, start=0, stop=None) -> tuple[int, list]:
    to_scim = mapping.to_scim_user if kind == storage.USER else mapping.to_scim_group
    total, records = backend.search_records(
        kind, search_request, start, stop, lambda r: to_scim(r, "http://x")
    )
    return total, [name_of(record) for record in records]


def matched_in_memory(backend, kind, filter_) -> list[str]:
    """What ScimFilter.match keeps of the backend's records, in their order."""
    to_scim = mapping.to_scim_user if kind == storage.USER else mapping.to_scim_group
    return [
        name_of(record)
        for record in backend.list_records(kind)[1]
        if filter_.match(to_scim(record, "http://x"))
    ]


class TestSameResultsAsMemory:
    """One data set per database, searched by every test of the class."""

    @pytest.mark.parametrize(
        ("kind", "template"),
        [(storage.USER, f) for f in USER_FILTERS]
        + [(storage.GROUP, f) for f in GROUP_FILTERS],
    )
    def test_filter(self, stores, kind, template):
        model = UserResource if kind == storage.USER else Group
        results = []
        for backend, names in stores:
            request = SearchRequest[model](filter=template.format_map(names))
            total, found = search(backend, kind, request)
            assert total == len(found)
            assert found == matched_in_memory(backend, kind, request.filter)
            results.append(found)
        memory_result, orm_result = results
        assert orm_result == memory_result

    @pytest.mark.parametrize(
        ("kind", "filter_"),
        [(storage.GROUP, 'userName eq "bjensen"'), (storage.USER, "members pr")],
    )
    def test_attribute_of_the_other_type_matches_nothing(self, stores, kind, filter_):
        """RFC 7644 §3.4.2.1, as in a search at the root over both types."""
        request = SearchRequest[UserResource | Group](filter=filter_)
        for backend, _ in stores:
            assert search(backend, kind, request) == (0, [])

    @pytest.mark.parametrize("order", ["ascending", "descending"])
    @pytest.mark.parametrize("sort_by", SORTS)
    def test_sort(self, stores, sort_by, order):
        request = SearchRequest[UserResource](sort_by=sort_by, sort_order=order)
        (memory, _), (orm, _) = stores
        found = search(orm, storage.USER, request)
        _, records = orm.list_records(storage.USER)
        users = [mapping.to_scim_user(r, "x") for r in records]
        assert found[1] == [user.user_name for user in request.sort(users)]
        # Each backend touches the members a group save adds in its own order.
        if sort_by != "meta.lastModified":
            assert found == search(memory, storage.USER, request)

    def test_sort_on_an_attribute_of_the_other_type_keeps_the_order(self, stores):
        request = SearchRequest[UserResource | Group](sort_by="userName")
        for backend, _ in stores:
            assert search(backend, storage.GROUP, request)[1] == list(GROUPS)

    @pytest.mark.parametrize(
        ("start", "stop"), [(0, 5), (5, 10), (18, 40), (3, 3), (7, None)]
    )
    def test_filtered_sorted_page(self, stores, start, stop):
        request = SearchRequest[UserResource](
            filter="emails pr or title pr", sort_by="title", sort_order="descending"
        )
        (memory, _), (orm, _) = stores
        expected = search(memory, storage.USER, request, start, stop)
        assert search(orm, storage.USER, request, start, stop) == expected
        total, records = orm.list_records(storage.USER, start, stop)
        expected_total, expected_records = memory.list_records(
            storage.USER, start, stop
        )
        assert total == expected_total
        assert list(map(name_of, records)) == list(map(name_of, expected_records))

    def test_unsupported_filter_is_invalid_filter(self, stores):
        request = SearchRequest[UserResource](filter='addresses.locality eq "Paris"')
        with pytest.raises(InvalidFilterException):
            search(stores[1][0], storage.USER, request)


# 3. The Django integration served from the ORM backend, over HTTP.


@pytest.fixture
def client(orm) -> ScimClient:
    return ScimClient("django", make_app("django"))


def test_user_lifecycle(client):
    user = create_user(
        client, "bjensen", emails=[{"value": "b@example.com", "type": "work"}]
    )
    path = f"/Users/{user['id']}"
    assert client.get(path).json == user
    create_user(client, "achen", title="Engineer")
    listing = client.get("/Users", params={"sortBy": "userName"}).json
    assert [u["userName"] for u in listing["Resources"]] == ["achen", "bjensen"]
    found = client.get("/Users", params={"filter": 'emails[type eq "work"]'}).json
    assert [u["userName"] for u in found["Resources"]] == ["bjensen"]
    patched = client.patch(
        path, patch_body({"op": "replace", "path": "title", "value": "Lead"})
    )
    assert (patched.status, patched.json["title"]) == (200, "Lead")
    replaced = client.put(path, user_body("bjensen", displayName="Barbara"))
    assert replaced.status == 200
    assert "title" not in replaced.json
    assert replaced.json["meta"]["version"] == 'W/"3"'
    assert client.delete(path).status == 204
    assert_error(client.get(path), 404)


def test_groups_with_members(client):
    alice = create_user(client, "alice")
    bob = create_user(client, "bob", displayName="Bob B")
    group = create_group(client, "Admins", alice["id"], bob["id"])
    assert {(m["value"], m["display"]) for m in group["members"]} == {
        (alice["id"], "alice"),
        (bob["id"], "Bob B"),
    }
    groups = client.get(f"/Users/{alice['id']}").json["groups"]
    assert [(g["value"], g["display"]) for g in groups] == [(group["id"], "Admins")]
    client.delete(f"/Users/{alice['id']}")
    members = client.get(f"/Groups/{group['id']}").json["members"]
    assert [m["value"] for m in members] == [bob["id"]]
    reply = client.post("/Groups", group_body("Ghosts", "nobody"))
    assert_error(reply, 400, "invalidValue")


def test_taken_user_name_is_409_in_any_case(client):
    create_user(client, "bjensen")
    assert_error(client.post("/Users", user_body("BJensen")), 409, "uniqueness")
    other = create_user(client, "other")
    reply = client.put(f"/Users/{other['id']}", user_body("BJENSEN"))
    assert_error(reply, 409, "uniqueness")


def test_stale_if_match_is_412(client):
    user = create_user(client, "bjensen")
    path = f"/Users/{user['id']}"
    stale = {"If-Match": user["meta"]["version"]}
    client.patch(path, patch_body({"op": "add", "path": "nickName", "value": "B"}))
    body = patch_body({"op": "add", "path": "title", "value": "x"})
    assert_error(client.patch(path, body, headers=stale), 412)
    assert_error(client.put(path, user_body("bjensen"), headers=stale), 412)
    assert_error(client.delete(path, headers=stale), 412)
    assert client.get(path).json["nickName"] == "B"


def test_parallel_creates_of_one_user_name_make_one_user(client):
    def create(index: int) -> int:
        name = "bjensen" if index % 2 else "BJensen"
        return ScimClient("django", client.app).post("/Users", user_body(name)).status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(create, range(8)))
    assert sorted(statuses) == [201] + [409] * 7
    assert client.get("/Users").json["totalResults"] == 1


def test_parallel_patches_keep_every_member(client):
    users = [create_user(client, f"user{index}") for index in range(8)]
    group = create_group(client, "Everyone")

    path = f"/Groups/{group['id']}"

    def add(user: dict) -> int:
        member = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        return ScimClient("django", client.app).patch(path, patch_body(member)).status

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(add, users))
    assert statuses == [200] * 8
    members = client.get(f"/Groups/{group['id']}").json["members"]
    assert {m["value"] for m in members} == {user["id"] for user in users}
