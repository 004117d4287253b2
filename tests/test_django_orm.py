"""The Django ORM backend gives what the other backends give, through storage and HTTP.

conftest.py runs the whole behaviour suite on it too (the django-sqlite and
django-postgres backends), and tests/test_storage_contract.py holds it to
memory's answers to every filter and sort; this file holds what is particular
to it: records and versions as MemoryStorage makes them, deadlock retries,
migrations, and a few HTTP checks.
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
    derived = ("id", "created", "last_modified", "position")
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


# 2. The Django integration served from the ORM backend, over HTTP.


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
    assert statuses == [204] * 8
    members = client.get(f"/Groups/{group['id']}").json["members"]
    assert {m["value"] for m in members} == {user["id"] for user in users}
