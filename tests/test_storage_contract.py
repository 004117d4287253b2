"""The Storage contract (shared/records.py), held to every backend alike.

Each test runs on every backend: "memory" (MemoryStorage), "sqlite" and
"postgres" (SqlStorage), "django-sqlite" and "django-postgres"
(DjangoOrmStorage); the PostgreSQL ones when SCIM_TEST_POSTGRES_URL is set.

1. Writes: ids, versions and timestamps, userName uniqueness, compare-and-swap,
   referential integrity and the attributes the storage derives, paging;
   tenants, each seeing its own records only.
2. Reads of one data set, built once per backend for the whole class: every
   filter and sort gives what scim2-models' `ScimFilter.match` and
   `SearchRequest.sort` give in memory, and every backend gives memory's
   answer, page by page. A filter no backend can answer raises
   InvalidFilterException on every backend, memory included.
"""

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import DJANGO_DATABASES
from conftest import ENTERPRISE
from conftest import POSTGRES_URL
from conftest import group_body
from conftest import postgres_url
from conftest import user_body
from scim2_models import EnterpriseUser
from scim2_models import Group
from scim2_models import InvalidFilterException
from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import PreconditionFailedException
from scim2_models import SearchRequest
from scim2_models import UniquenessException
from scim2_models import User

from shared import mapping
from shared.discovery import UserResource
from shared.extension import ACME
from shared.extension import AcmeUser
from shared.records import GROUP
from shared.records import USER
from shared.storage import MemoryStorage

BACKENDS = ["memory", "sqlite"]
if POSTGRES_URL:
    BACKENDS.append("postgres")
BACKENDS.append("django-sqlite")
if POSTGRES_URL:
    BACKENDS.append("django-postgres")

# The User the service stores, with the Acme extension (shared/extension.py).
if ACME in UserResource.get_extension_models():
    UserModel: Any = UserResource
else:  # not yet declared by shared/discovery.py
    UserModel = User[EnterpriseUser | AcmeUser]

BASE = "http://testserver/scim/v2"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


def open_backend(backend_id: str, request: pytest.FixtureRequest, name: str) -> Any:
    """A backend on a database of its own: `name` tells it from the others."""
    from shared.sql_storage import SqlStorage

    if backend_id == "memory":
        return MemoryStorage()
    if backend_id == "sqlite":
        where = request.getfixturevalue("tmp_path_factory").mktemp(name)
        return SqlStorage(f"sqlite:///{where}/contract.sqlite3")
    if backend_id == "postgres":
        worker = request.getfixturevalue("worker_id")
        return SqlStorage(postgres_url(f"scim_{name}_{worker}"))
    from integrations.django_app.orm_storage import DjangoOrmStorage

    # The Django databases are the settings' own: one SQLite file, one
    # PostgreSQL schema per worker, emptied by each fixture that uses them.
    request.getfixturevalue("django_databases")
    return DjangoOrmStorage(using=DJANGO_DATABASES[backend_id])


def close_backend(backend: Any) -> None:
    backend.reset()
    if hasattr(backend, "engine"):
        backend.engine.dispose()


@pytest.fixture(scope="module")
def backends(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The backends of the tests that write, opened once: each test empties one."""
    opened: dict[str, Any] = {}
    yield opened
    for backend in opened.values():
        close_backend(backend)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, backends: dict[str, Any]) -> Any:
    """An empty backend, for the tests that write."""
    if request.param.startswith("django-"):
        request.getfixturevalue("thread_connections_closed")
    if request.param not in backends:
        backends[request.param] = open_backend(request.param, request, "contract")
    backend = backends[request.param]
    backend.reset()
    return backend


def user(user_name: str, **fields: Any) -> dict[str, Any]:
    """A user record as the service makes it from a SCIM User."""
    record = mapping.from_scim_user(UserModel(user_name=user_name))
    record.update(fields)
    return record


def group(display_name: str, *members: dict[str, Any]) -> dict[str, Any]:
    """A group record whose members are saved records (users or groups)."""
    record = mapping.from_scim_group(Group(display_name=display_name))
    record["members"] = [
        {"value": m["id"], "type": USER if "user_name" in m else GROUP} for m in members
    ]
    return record


def refresh(backend: Any, record: dict[str, Any]) -> dict[str, Any]:
    kind = USER if "user_name" in record else GROUP
    return backend.get_record(kind, record["id"])


# 1. Writes.


def test_create_assigns_id_version_and_timestamps(store):
    saved = store.save_record(USER, user("bjensen"))
    other = store.save_record(USER, user("achen"))
    assert isinstance(saved["id"], str)
    assert saved["id"]
    assert saved["id"] != other["id"]
    assert saved["version"] == 1
    assert saved["created"].tzinfo is not None
    assert saved["created"] == saved["last_modified"]
    assert saved["groups"] == []
    created = store.save_record(GROUP, group("Admins"))
    assert (created["version"], created["members"]) == (1, [])


def test_get_gives_the_record_as_saved(store):
    body = user_body(
        "bjensen",
        externalId="EXT-1",
        displayName="Barbara Jensen",
        nickName="Babs",
        title="",
        active=False,
        name={"givenName": "Barbara", "familyName": "Jensen", "middleName": "J"},
        emails=[
            {"value": "b@example.com", "type": "work", "primary": True},
            {"value": "babs@example.org", "display": "Babs"},
        ],
        phoneNumbers=[{"value": "+33 1 23", "type": "mobile"}],
        addresses=[{"type": "work", "locality": "Ærøskøbing", "primary": True}],
        roles=[{"value": "admin", "primary": True}],
        **{
            ENTERPRISE: {"department": "R&D", "costCenter": "42"},
            ACME: {"badgeNumber": "B-1", "clearanceLevel": 3},
        },
    )
    record = mapping.from_scim_user(UserModel.model_validate(body))
    saved = store.save_record(USER, record)
    assert store.get_record(USER, saved["id"]) == saved
    owned = ("id", "version", "created", "last_modified", "position", "groups")
    assert {k: v for k, v in saved.items() if k not in owned} == record
    resource = mapping.to_scim_user(saved, BASE)
    assert resource.model_dump(exclude={"id", "meta"}) == UserModel.model_validate(
        body
    ).model_dump(exclude={"id", "meta"})
    assert store.get_record(USER, "nope") is None
    assert store.get_record(GROUP, saved["id"]) is None


def test_update_moves_the_version_and_keeps_created(store):
    saved = store.save_record(USER, user("bjensen"))
    updated = store.save_record(USER, {**saved, "title": "Lead"})
    assert updated["id"] == saved["id"]
    assert updated["version"] == 2
    assert updated["title"] == "Lead"
    assert updated["created"] == saved["created"]
    assert updated["last_modified"] > saved["last_modified"]
    assert store.get_record(USER, saved["id"]) == updated
    admins = store.save_record(GROUP, group("Admins"))
    renamed = store.save_record(GROUP, {**admins, "display_name": "Root"})
    assert (renamed["version"], renamed["display_name"]) == (2, "Root")


def test_delete_forgets_the_record(store):
    saved = store.save_record(USER, user("bjensen"))
    kept = store.save_record(USER, user("achen"))
    store.delete_record(USER, saved["id"])
    assert store.get_record(USER, saved["id"]) is None
    assert store.find_user_by_user_name("bjensen") is None
    assert store.list_records(USER) == (1, [kept])
    admins = store.save_record(GROUP, group("Admins"))
    store.delete_record(GROUP, admins["id"])
    assert store.list_records(GROUP) == (0, [])


@pytest.mark.parametrize("kind", [USER, GROUP])
def test_update_or_delete_of_a_missing_record_is_not_found(store, kind):
    record = user("x") if kind == USER else group("x")
    with pytest.raises(NotFoundException):
        store.save_record(kind, {**record, "id": "nope"})
    with pytest.raises(NotFoundException):
        store.delete_record(kind, "nope")
    with pytest.raises(NotFoundException):
        store.delete_record(kind, "nope", expected_version=1)
    assert store.list_records(kind) == (0, [])


def test_reset_empties_everything(store):
    alice = store.save_record(USER, user("alice"))
    store.save_record(GROUP, group("Admins", alice))
    store.reset()
    assert store.list_records(USER) == (0, [])
    assert store.list_records(GROUP) == (0, [])
    assert store.find_user_by_user_name("alice") is None
    store.save_record(USER, user("alice"))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("bjensen", "BJENSEN"),
        ("bjensen", "BJensen"),
        ("Émile", "émile"),
        ("émile", "ÉMILE"),
        ("émile", "e\u0301mile"),  # the same name, decomposed (NFD)
        ("Ærøskøbing", "æRØSKØBING"),
    ],
)
def test_user_name_is_unique_in_any_letter_case(store, first, second):
    saved = store.save_record(USER, user(first))
    with pytest.raises(UniquenessException):
        store.save_record(USER, user(second))
    assert store.find_user_by_user_name(second) == saved
    assert store.find_user_by_user_name(first) == saved
    other = store.save_record(USER, user("other"))
    with pytest.raises(UniquenessException):
        store.save_record(USER, {**other, "user_name": second})
    assert store.get_record(USER, other["id"]) == other
    # Its own name in another case is no conflict.
    recased = store.save_record(USER, {**saved, "user_name": second})
    assert recased["user_name"] == second
    assert store.list_records(USER)[0] == 2


def test_find_user_by_user_name(store):
    assert store.find_user_by_user_name("nobody") is None
    saved = store.save_record(USER, user("Émile"))
    assert store.find_user_by_user_name("ÉMILE") == saved
    assert store.find_user_by_user_name("emile") is None


def test_renaming_frees_the_old_user_name(store):
    saved = store.save_record(USER, user("Émile"))
    store.save_record(USER, {**saved, "user_name": "barbara"})
    assert store.find_user_by_user_name("émile") is None
    assert store.find_user_by_user_name("Barbara")["id"] == saved["id"]
    store.save_record(USER, user("ÉMILE"))
    with pytest.raises(UniquenessException):
        store.save_record(USER, user("BARBARA"))


def test_compare_and_swap_on_save(store):
    saved = store.save_record(USER, user("bjensen"))
    store.save_record(USER, {**saved, "title": "a"}, expected_version=1)
    with pytest.raises(PreconditionFailedException):
        store.save_record(USER, {**saved, "title": "b"}, expected_version=1)
    current = store.get_record(USER, saved["id"])
    assert (current["title"], current["version"]) == ("a", 2)
    store.save_record(USER, {**current, "title": "c"}, expected_version=2)
    admins = store.save_record(GROUP, group("Admins"))
    with pytest.raises(PreconditionFailedException):
        store.save_record(GROUP, {**admins, "display_name": "x"}, expected_version=9)
    assert store.get_record(GROUP, admins["id"]) == admins


def test_compare_and_swap_on_delete(store):
    saved = store.save_record(USER, user("bjensen"))
    store.save_record(USER, {**saved, "title": "a"})
    with pytest.raises(PreconditionFailedException):
        store.delete_record(USER, saved["id"], expected_version=1)
    assert store.get_record(USER, saved["id"])["title"] == "a"
    store.delete_record(USER, saved["id"], expected_version=2)
    assert store.get_record(USER, saved["id"]) is None
    admins = store.save_record(GROUP, group("Admins"))
    with pytest.raises(PreconditionFailedException):
        store.delete_record(GROUP, admins["id"], expected_version=2)
    store.delete_record(GROUP, admins["id"], expected_version=1)


def test_members_must_exist(store):
    alice = store.save_record(USER, user("alice"))
    admins = store.save_record(GROUP, group("Admins"))
    for member in (
        {"value": "nobody", "type": USER},
        {"value": "nobody", "type": GROUP},
        {"value": alice["id"], "type": GROUP},  # a user is not a group
        {"value": admins["id"], "type": USER},
        {"value": alice["id"], "type": "Robot"},
    ):
        with pytest.raises(InvalidValueException):
            store.save_record(GROUP, {**group("Ghosts"), "members": [member]})
        with pytest.raises(InvalidValueException):
            store.save_record(GROUP, {**admins, "members": [member]})
    assert store.list_records(GROUP) == (1, [admins])
    assert store.get_record(USER, alice["id"]) == alice


def test_a_group_cannot_contain_itself(store):
    admins = store.save_record(GROUP, group("Admins"))
    with pytest.raises(InvalidValueException):
        store.save_record(
            GROUP, {**admins, "members": [{"value": admins["id"], "type": GROUP}]}
        )
    assert store.get_record(GROUP, admins["id"]) == admins


def test_groups_and_member_displays_are_derived(store):
    alice = store.save_record(USER, user("alice"))
    bob = store.save_record(USER, user("bob", display_name="Bob B"))
    admins = store.save_record(GROUP, group("Admins", alice, bob))
    ops = group("Ops", alice, admins)
    ops["members"][0]["display"] = "Alice (ops)"  # given by the client: kept
    ops = store.save_record(GROUP, ops)
    assert refresh(store, alice)["groups"] == [
        {"value": admins["id"], "display": "Admins"},
        {"value": ops["id"], "display": "Ops"},
    ]
    assert refresh(store, bob)["groups"] == [
        {"value": admins["id"], "display": "Admins"}
    ]

    def members(record):
        found = refresh(store, record)["members"]
        return sorted((m["value"], m["type"], m["display"]) for m in found)

    assert members(admins) == sorted(
        [(alice["id"], USER, "alice"), (bob["id"], USER, "Bob B")]
    )
    assert members(ops) == sorted(
        [(alice["id"], USER, "Alice (ops)"), (admins["id"], GROUP, "Admins")]
    )
    # Renames show where they are derived, and move those records on.
    bob, admins = refresh(store, bob), refresh(store, admins)
    store.save_record(USER, {**bob, "display_name": None, "user_name": "rob"})
    assert (bob["id"], USER, "rob") in members(admins)
    assert refresh(store, admins)["version"] > admins["version"]
    admins = refresh(store, admins)
    store.save_record(GROUP, {**admins, "display_name": "Root"})
    assert (admins["id"], GROUP, "Root") in members(ops)
    assert refresh(store, alice)["groups"] == [
        {"value": ops["id"], "display": "Ops"},
        {"value": admins["id"], "display": "Root"},
    ]


def test_joining_and_leaving_move_the_members_version(store):
    alice = store.save_record(USER, user("alice"))
    admins = store.save_record(GROUP, group("Admins", alice))
    joined = refresh(store, alice)
    assert joined["version"] > alice["version"]
    store.save_record(GROUP, {**refresh(store, admins), "members": []})
    left = refresh(store, alice)
    assert left["version"] > joined["version"]
    assert left["groups"] == []


def test_deleting_a_user_removes_it_from_its_groups(store):
    alice = store.save_record(USER, user("alice"))
    bob = store.save_record(USER, user("bob"))
    admins = store.save_record(GROUP, group("Admins", alice, bob))
    store.delete_record(USER, alice["id"])
    after = refresh(store, admins)
    assert [m["value"] for m in after["members"]] == [bob["id"]]
    assert after["version"] > admins["version"]
    # The id can be saved again as a member of nothing: it is gone.
    with pytest.raises(InvalidValueException):
        store.save_record(GROUP, group("Again", alice))


def test_deleting_a_group_removes_it_everywhere(store):
    alice = store.save_record(USER, user("alice"))
    admins = store.save_record(GROUP, group("Admins", alice))
    everyone = store.save_record(GROUP, group("Everyone", alice, admins))
    alice = refresh(store, alice)
    store.delete_record(GROUP, admins["id"])
    assert refresh(store, alice)["groups"] == [
        {"value": everyone["id"], "display": "Everyone"}
    ]
    assert refresh(store, alice)["version"] > alice["version"]
    after = refresh(store, everyone)
    assert [m["value"] for m in after["members"]] == [alice["id"]]
    assert after["version"] > everyone["version"]


def member(record: dict[str, Any], **fields: Any) -> dict[str, Any]:
    kind = USER if "user_name" in record else GROUP
    return {"value": record["id"], "type": kind, **fields}


def test_update_group_adds_and_removes_members_one_by_one(store):
    alice = store.save_record(USER, user("alice"))
    bob = store.save_record(USER, user("bob"))
    admins = store.save_record(GROUP, group("Admins", alice))
    alice = refresh(store, alice)
    updated = store.update_group(admins["id"], None, [member(bob)], [alice["id"]])
    assert "members" not in updated  # the list is neither read nor returned
    assert updated["version"] == admins["version"] + 1
    assert [m["value"] for m in refresh(store, admins)["members"]] == [bob["id"]]
    # Each member that joined or left shows other `groups`: its version moves.
    assert refresh(store, alice)["groups"] == []
    assert refresh(store, alice)["version"] > alice["version"]
    assert refresh(store, bob)["groups"] == [
        {"value": admins["id"], "display": "Admins"}
    ]
    assert refresh(store, bob)["version"] > bob["version"]
    # A display the client gives is kept, and can be given again.
    store.update_group(admins["id"], None, [member(alice, display="Al")], [])
    store.update_group(admins["id"], None, [member(alice, display="Alice")], [])
    assert sorted(
        (m["value"], m["display"]) for m in refresh(store, admins)["members"]
    ) == sorted([(alice["id"], "Alice"), (bob["id"], "bob")])


def test_update_group_that_changes_nothing_writes_nothing(store):
    alice = store.save_record(USER, user("alice"))
    bob = store.save_record(USER, user("bob"))
    admins = store.save_record(GROUP, group("Admins", alice))
    alice = refresh(store, alice)
    same = {k: admins[k] for k in ("display_name", "external_id", "extra")}
    unchanged = store.update_group(admins["id"], same, [member(alice)], [bob["id"]])
    assert unchanged["version"] == admins["version"]
    assert refresh(store, alice)["version"] == alice["version"]
    assert refresh(store, bob)["version"] == bob["version"]


def test_update_group_checks_what_save_record_checks(store):
    alice = store.save_record(USER, user("alice"))
    bob = store.save_record(USER, user("bob"))
    admins = store.save_record(GROUP, group("Admins", alice))
    ghost = {"value": "nobody", "type": USER}
    with pytest.raises(InvalidValueException):
        store.update_group(admins["id"], None, [ghost], [alice["id"]])
    with pytest.raises(InvalidValueException):
        store.update_group(admins["id"], None, [member(admins)], [])
    with pytest.raises(InvalidValueException):  # a user id is not a Group
        store.update_group(admins["id"], None, [member(bob, type=GROUP)], [])
    with pytest.raises(PreconditionFailedException):
        store.update_group(admins["id"], None, [], [alice["id"]], admins["version"] + 1)
    with pytest.raises(NotFoundException):
        store.update_group("nope", None, [], [])
    # Nothing of a refused call was written.
    assert refresh(store, admins) == admins
    assert refresh(store, alice)["groups"] == [
        {"value": admins["id"], "display": "Admins"}
    ]
    done = store.update_group(admins["id"], None, [], [alice["id"]], admins["version"])
    assert done["version"] == admins["version"] + 1


def test_update_group_changes_its_fields_and_keeps_its_members(store):
    alice = store.save_record(USER, user("alice"))
    admins = store.save_record(GROUP, group("Admins", alice))
    everyone = store.save_record(GROUP, group("Everyone", admins))
    alice, everyone = refresh(store, alice), refresh(store, everyone)
    fields = {"display_name": "Root", "external_id": "G-9", "extra": {"x": 1}}
    renamed = store.update_group(admins["id"], fields, [], [])
    assert {k: renamed[k] for k in fields} == fields
    assert [m["value"] for m in refresh(store, admins)["members"]] == [alice["id"]]
    # The group that shows it as a member moves on; its members do not (the
    # display in their `groups` is a label), but they show the new name.
    assert refresh(store, everyone)["version"] > everyone["version"]
    assert refresh(store, everyone)["members"][0]["display"] == "Root"
    assert refresh(store, alice)["version"] == alice["version"]
    assert refresh(store, alice)["groups"] == [
        {"value": admins["id"], "display": "Root"}
    ]


def test_records_read_without_members(store):
    alice = store.save_record(USER, user("alice"))
    admins = store.save_record(GROUP, group("Admins", alice))
    store.save_record(GROUP, group("Empty"))
    full = refresh(store, admins)
    lean = store.get_record(GROUP, admins["id"], members=False)
    assert lean == {k: v for k, v in full.items() if k != "members"}
    total, page = store.list_records(GROUP, 0, None, members=False)
    assert total == 2
    assert [sorted(record) for record in page] == [sorted(lean)] * 2
    assert store.get_record(USER, alice["id"], members=False) == refresh(store, alice)


WINDOWS = [(0, None), (0, 4), (3, 6), (8, None), (8, 20), (10, None), (12, 15), (4, 4)]


def test_list_records_pages_in_creation_order(store):
    names = [f"user{index}" for index in range(10)]
    for name in names:
        store.save_record(USER, user(name))
    for index in (0, 5):  # an update keeps the place
        record = store.find_user_by_user_name(names[index])
        store.save_record(USER, {**record, "title": "moved"})
    for start, stop in WINDOWS:
        total, page = store.list_records(USER, start, stop)
        assert (start, stop, total) == (start, stop, 10)
        assert [record["user_name"] for record in page] == names[start:stop]
        assert store.list_records(GROUP, start, stop) == (0, [])


def test_positions_follow_creation_and_are_fixed_for_life(store):
    """What a cursor resumes from: an update keeps it, a delete frees no place."""
    first, second, third = (store.save_record(USER, user(n)) for n in "abc")
    assert first["position"] < second["position"] < third["position"]
    store.save_record(USER, {**refresh(store, first), "title": "moved"})
    assert refresh(store, first)["position"] == first["position"]
    store.delete_record(USER, first["id"])
    fourth = store.save_record(USER, user("d"))
    assert fourth["position"] > third["position"]
    assert store.get_record(USER, third["id"])["position"] == third["position"]
    admins = store.save_record(GROUP, group("Admins", second))
    assert (
        store.get_record(GROUP, admins["id"], members=False)["position"]
        == (admins["position"])
    )


# (start, stop) windows for keyset pages, and the positions they start from:
# none (the first or the last record), a record's, a deleted record's, and
# before or past them all.
KEYSET_WINDOWS = [(0, None), (0, 3), (0, 1), (2, 4), (0, 0)]


def keyset_store(store: Any) -> tuple[list[dict[str, Any]], list[int | None]]:
    """Nine users, the third and the seventh deleted; positions to page from."""
    saved = [
        store.save_record(USER, user(f"user{i}", title=f"t{i % 2}")) for i in range(9)
    ]
    for gone in (saved[2], saved[6]):
        store.delete_record(USER, gone["id"])
    kept = [record for record in saved if record not in (saved[2], saved[6])]
    positions = [record["position"] for record in saved]
    return kept, [None, positions[0] - 1, *positions, positions[-1] + 1]


def keyset_page(
    records: list[dict[str, Any]], past: int | None, backwards: bool
) -> list[str]:
    """The names a keyset gives, from records in creation order."""
    if backwards:
        records = records[::-1]
    return [
        name_of(record)
        for record in records
        if past is None
        or (record["position"] < past if backwards else record["position"] > past)
    ]


def test_list_records_pages_from_a_position(store):
    kept, positions = keyset_store(store)
    for past in positions:
        for backwards in (False, True):
            expected = keyset_page(kept, past, backwards)
            for start, stop in KEYSET_WINDOWS:
                total, page = store.list_records(
                    USER, start, stop, past=past, backwards=backwards
                )
                assert (past, backwards, start, stop, total, name_list(page)) == (
                    past,
                    backwards,
                    start,
                    stop,
                    7,
                    expected[start:stop],
                )


def test_search_records_pages_matches_from_a_position(store):
    """A filter narrows, the total counts every match, the sort is left out."""
    kept, positions = keyset_store(store)
    request = SearchRequest[UserModel](
        filter='title eq "t1"', sort_by="userName", sort_order="descending"
    )
    matches = [record for record in kept if record["title"] == "t1"]
    for past in positions:
        for backwards in (False, True) if past is not None else (True,):
            expected = keyset_page(matches, past, backwards)
            for start, stop in KEYSET_WINDOWS:
                total, page = store.search_records(
                    USER,
                    request,
                    start,
                    stop,
                    to_resource(USER),
                    past=past,
                    backwards=backwards,
                )
                assert (past, backwards, start, stop, total, name_list(page)) == (
                    past,
                    backwards,
                    start,
                    stop,
                    len(matches),
                    expected[start:stop],
                )


def name_list(records: list[dict[str, Any]]) -> list[str]:
    return [name_of(record) for record in records]


def test_a_walk_by_position_meets_every_record_once_while_others_come_and_go(store):
    """What a cursor walk relies on: page by page, past the last one's position."""
    there = [store.save_record(USER, user(f"old{i}")) for i in range(10)]
    seen, past, created = [], None, 0
    while True:
        _, page = store.list_records(USER, 0, 3, past=past)
        seen += name_list(page)
        if len(page) < 3:
            break
        past = page[-1]["position"]
        # Between pages: a record not yet seen goes, and two new ones come.
        unseen = [r for r in there if r["user_name"] not in seen]
        if unseen:
            store.delete_record(USER, unseen[-1]["id"])
            there.remove(unseen[-1])
        for _ in range(2):
            store.save_record(USER, user(f"new{created}"))
            created += 1
    survivors = name_list(there)
    assert [name for name in seen if name.startswith("old")] == survivors
    assert len(seen) == len(set(seen))


def test_concurrent_saves_of_one_user_name_leave_one(store):
    barrier = threading.Barrier(8)
    outcomes = []

    def save(index: int) -> None:
        barrier.wait()
        try:
            store.save_record(USER, user("Émile" if index % 2 else "émile"))
            outcomes.append("saved")
        except UniquenessException:
            outcomes.append("taken")

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["saved"] + ["taken"] * 7
    assert store.list_records(USER)[0] == 1


# Tenants: a backend's `for_tenant(name)` is a Storage of that tenant's records
# alone (shared/tenants.py). What another tenant holds is, to it, not there.


def tenant_pair(store: Any) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """Two tenants, each with a user bjensen of externalId "e1"; globex's in a group."""
    acme, globex = store.for_tenant("acme"), store.for_tenant("globex")
    theirs = globex.save_record(USER, user("bjensen", external_id="e1"))
    ours = acme.save_record(USER, user("BJensen", external_id="e1"))
    globex.save_record(GROUP, group("Staff", theirs))
    return acme, globex, ours, theirs


def test_tenants_each_see_their_own_records(store):
    acme, globex, ours, theirs = tenant_pair(store)
    assert ours["id"] != theirs["id"]
    assert acme.get_record(USER, theirs["id"]) is None
    assert acme.find_user_by_user_name("bjensen") == ours
    assert globex.find_user_by_user_name("BJENSEN") == refresh(globex, theirs)
    assert acme.list_records(USER) == (1, [ours])
    assert acme.list_records(GROUP) == (0, [])
    assert store.list_records(USER) == (0, [])  # the default tenant's: none
    by_external_id = SearchRequest(filter='externalId eq "e1"')
    assert search(acme, USER, by_external_id) == (1, ["BJensen"])
    in_staff = SearchRequest(filter=f'members[value eq "{theirs["id"]}"]')
    assert search(acme, GROUP, in_staff) == (0, [])
    assert search(globex, GROUP, in_staff) == (1, ["Staff"])
    # A keyset walk from another tenant's position finds only this one's records.
    assert acme.list_records(USER, past=-1)[1] == [ours]
    with pytest.raises(UniquenessException):  # unique within the tenant
        acme.save_record(USER, user("bjensen"))


def test_a_tenant_cannot_change_another_tenants_records(store):
    acme, globex, ours, theirs = tenant_pair(store)
    theirs = refresh(globex, theirs)
    staff = globex.list_records(GROUP)[1][0]
    for attempt in (
        lambda: acme.save_record(USER, {**theirs, "title": "taken"}),
        lambda: acme.save_record(USER, {**theirs, "title": "taken"}, 1),
        lambda: acme.delete_record(USER, theirs["id"]),
        lambda: acme.delete_record(GROUP, staff["id"], staff["version"]),
        lambda: acme.update_group(staff["id"], None, [], [theirs["id"]]),
        lambda: acme.save_record(GROUP, {**staff, "members": []}),
    ):
        with pytest.raises(NotFoundException):
            attempt()
    assert refresh(globex, theirs) == theirs
    assert refresh(globex, staff) == staff


def test_members_are_of_the_same_tenant(store):
    acme, globex, ours, theirs = tenant_pair(store)
    admins = acme.save_record(GROUP, group("Admins"))
    staff = globex.list_records(GROUP)[1][0]
    for member in ({"value": theirs["id"], "type": USER}, member_of(staff)):
        with pytest.raises(InvalidValueException):
            acme.save_record(GROUP, {**group("Ghosts"), "members": [member]})
        with pytest.raises(InvalidValueException):
            acme.update_group(admins["id"], None, [member], [])
    assert acme.list_records(GROUP) == (1, [admins])
    assert refresh(globex, theirs)["groups"] == [
        {"value": staff["id"], "display": "Staff"}
    ]


def member_of(record: dict[str, Any]) -> dict[str, Any]:
    return {"value": record["id"], "type": USER if "user_name" in record else GROUP}


def test_reset_forgets_every_tenant(store):
    acme, globex, _, _ = tenant_pair(store)
    acme.reset()
    assert globex.list_records(USER) == (0, [])
    assert acme.list_records(USER) == (0, [])


# 2. Reads: one data set, every filter and sort.

ACME_BADGE = f"{ACME}:badgeNumber"
ACME_LEVEL = f"{ACME}:clearanceLevel"


def _named_people() -> list[dict[str, Any]]:
    return [
        user_body(
            "bjensen",
            externalId="EXT-1",
            displayName="Barbara Jensen",
            nickName="Babs",
            title="Engineer",
            active=True,
            userType="Employee",
            preferredLanguage="en-US",
            name={
                "givenName": "Barbara",
                "familyName": "Jensen",
                "middleName": "J",
                "honorificPrefix": "Ms.",
            },
            emails=[
                {"value": "bjensen@example.com", "type": "work", "primary": True},
                {"value": "babs@home.example.org", "type": "home"},
            ],
            phoneNumbers=[
                {"value": "+33 1 23 45 67 89", "type": "work", "display": "desk"}
            ],
            addresses=[
                {"type": "work", "locality": "Paris", "country": "FR", "primary": True}
            ],
            ims=[{"value": "bjensen@xmpp.example.com", "type": "xmpp"}],
            roles=[{"value": "admin", "primary": True}],
            entitlements=[{"value": "vpn"}, {"value": "badge-printer"}],
            x509Certificates=[{"value": "aGVsbG8="}],
            **{
                ENTERPRISE: {
                    "department": "R&D",
                    "employeeNumber": "7",
                    "costCenter": "42",
                    "organization": "Example",
                },
                ACME: {"badgeNumber": "B-0042", "clearanceLevel": 3},
            },
        ),
        user_body(
            "JSmith",
            externalId="ext-2",
            displayName="John Smith",
            title="Manager",
            active=False,
            timezone="Europe/London",
            name={"givenName": "John", "familyName": "Smith"},
            emails=[{"value": "jsmith@corp.example.org", "type": "home"}],
            addresses=[{"type": "home", "locality": "London", "country": "GB"}],
            roles=[{"value": "auditor"}],
            **{
                ENTERPRISE: {"department": "Sales", "employeeNumber": "12"},
                ACME: {"badgeNumber": "b-0100", "clearanceLevel": 5},
            },
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
            addresses=[
                {"type": "work", "locality": "Lyon", "country": "FR"},
                {"type": "home", "locality": "Paris", "country": "FR"},
            ],
            ims=[{"value": "achen", "type": "skype"}],
            entitlements=[{"value": "VPN", "primary": True}],
            **{
                ENTERPRISE: {"department": "sales", "organization": "Acme"},
                ACME: {"badgeNumber": "C-7", "clearanceLevel": 0},
            },
        ),
        user_body("zed", active=True, title="", nickName=""),
        user_body(
            "mjones",
            displayName="",
            title="engineer",
            userType="Contractor",
            **{ACME: {"clearanceLevel": 10}},
        ),
        user_body(
            "o.brien",
            displayName="Orla O'Brien",
            name={"formatted": "Ms. Orla O'Brien"},
            emails=[
                {"value": "orla@example.com", "type": "other"},
                {"value": "ORLA@corp.example.org", "type": "work", "primary": True},
            ],
            phoneNumbers=[
                {"value": "+353 1 555", "type": "work", "primary": True},
                {"value": "+353 87 555", "type": "mobile"},
            ],
        ),
        user_body(
            "émile",
            displayName="Émile Zola",
            nickName="Mimile",
            title="Écrivain",
            active=True,
            locale="fr-FR",
            name={"givenName": "Émile", "familyName": "Zola"},
            emails=[{"value": "émile@zola.example.fr", "type": "work"}],
            **{
                ENTERPRISE: {"department": "Édition", "employeeNumber": "1840"},
                ACME: {"badgeNumber": "É-1", "clearanceLevel": 2},
            },
        ),
        user_body(
            "ezola",
            displayName="ÉMILE ZOLA",
            active=False,
            name={"givenName": "ÉMILE", "familyName": "ZOLA", "middleName": ""},
            **{ACME: {"badgeNumber": "e-2"}},
        ),
        user_body(
            "aero",
            displayName="Ærøskøbing Office",
            title="Ø-Lead",
            name={"familyName": "Ærø"},
            addresses=[{"type": "work", "locality": "Ærøskøbing", "country": "DK"}],
            **{ENTERPRISE: {"department": "Øresund"}},
        ),
        user_body(
            "pnoname",
            displayName="P without a name",
            nickName="Bob",
            active=None,
            name={"middleName": "Q"},  # only in `extra`: `name pr` holds
        ),
        user_body("pbare"),
        user_body(
            "pmail",
            emails=[{"value": "pmail@example.com", "primary": True}],
            ims=[{"value": "pmail", "type": "xmpp"}],
        ),
        user_body(
            "pnamed",
            name={"givenName": "Paul"},
            **{ACME: {"badgeNumber": "P-1", "clearanceLevel": 1}},
        ),
    ]


def _numbered_people() -> list[dict[str, Any]]:
    """Two series of users with attributes in rotating shapes."""
    people = [
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
    ]
    titles = ["Engineer", "engineer", "Manager", None, "Zoologist", "Éditeur"]
    for index in range(24):
        body = user_body(
            f"user{index:02d}@Example.com",
            displayName=f"User {chr(65 + index)}",
            active=[True, False, None][index % 3],
            title=titles[index % len(titles)],
            nickName=["Bob", "bobby", None][index % 3],
            name={"givenName": ["Ann", "ann", "Zed", None][index % 4]},
            **{ENTERPRISE: {"department": ["R&D", "Sales", None][index % 3]}},
        )
        if index % 2:
            body["emails"] = [
                {"value": f"u{index}@work.example.com", "type": "work"},
                {"value": f"u{index}@other.example.net"},
                {
                    "value": f"u{index}@home.example.org",
                    "type": "home",
                    "primary": True,
                },
            ]
        if index % 5 == 0:
            body["phoneNumbers"] = [{"value": f"+1 555 01{index:02d}"}]
        if index % 4 == 1:
            body[ACME] = {"badgeNumber": f"N-{index:02d}", "clearanceLevel": index % 6}
        people.append(body)
    return people


PEOPLE = _named_people() + _numbered_people()
MANAGED = {"zed": "bjensen", "achen": "JSmith", "émile": "achen"}  # user -> manager
GROUPS = {  # display name -> member names (a group's name makes it a Group member)
    "Admins": ["bjensen", "achen"],
    "Everyone": ["bjensen", "JSmith", "achen", "zed", "mjones", "Admins"],
    "Empty": [],
    "Ops": ["o.brien", "user03"],
    "Ærø Team": ["émile", "aero", "ezola", "Ops"],
    "root": ["Admins", "Ops", "pbare"],
}
GIVEN_DISPLAYS = {  # (group, member) -> the display the client gave
    ("Ops", "o.brien"): "Orla (ops)",
    ("Ærø Team", "ezola"): "Émile (Ærø)",
}
GROUP_EXTERNAL_IDS = {"Admins": "G-1", "Ærø Team": "g-2"}


def populate(backend: Any) -> dict[str, str]:
    """Save PEOPLE and GROUPS; the values filters name, by the keys they use."""
    saved: dict[str, dict] = {}
    for body in PEOPLE:
        record = mapping.from_scim_user(UserModel.model_validate(body))
        if body["userName"] in MANAGED:
            record["manager_id"] = saved[MANAGED[body["userName"]]]["id"]
        saved[body["userName"]] = backend.save_record(USER, record)
    for display_name, member_names in GROUPS.items():
        external_id = GROUP_EXTERNAL_IDS.get(display_name)
        body = group_body(
            display_name, **({"externalId": external_id} if external_id else {})
        )
        record = mapping.from_scim_group(Group.model_validate(body))
        record["members"] = [
            {
                "value": saved[name]["id"],
                "type": GROUP if name in GROUPS else USER,
                "display": GIVEN_DISPLAYS.get((display_name, name)),
            }
            for name in member_names
        ]
        saved[display_name] = backend.save_record(GROUP, record)
    names: dict[str, str] = {}
    for name, record in saved.items():
        current = backend.get_record(GROUP if name in GROUPS else USER, record["id"])
        names[name] = current["id"]
        names[f"created_{name}"] = current["created"].isoformat()
        names[f"modified_{name}"] = current["last_modified"].isoformat()
    return names


USER_FILTERS = [
    # userName: caseExact false, every operator, the core URN.
    'userName eq "bjensen"',
    'userName eq "BJENSEN"',
    'userName eq "USER03@example.com"',
    'userName eq "ÉMILE"',
    'userName ne "bjensen"',
    'userName ne "user03@example.com"',
    'userName co "EN"',
    'userName co "R1"',
    'userName sw "j"',
    'userName sw "user2"',
    'userName sw "É"',
    'userName ew "S"',
    'userName ew "@example.COM"',
    'userName gt "m"',
    'userName ge "mjones"',
    'userName lt "b"',
    'userName le "bjensen"',
    'userName gt "z"',
    "userName pr",
    f'{CORE_USER}:userName eq "zed"',
    f'{CORE_USER}:userName sw "USER1"',
    f'{CORE_USER}:name.givenName eq "barbara"',
    # displayName, title, nickName: empty strings, nulls, absent values.
    "displayName pr",
    "not (displayName pr)",
    'displayName co " "',
    "displayName eq null",
    "displayName ne null",
    'displayName eq ""',
    'displayName gt "User M"',
    'displayName ge "User M"',
    'displayName lt "User C"',
    'displayName le "User C"',
    'displayName sw "USER B"',
    'displayName co "ærø"',
    'displayName eq "émile zola"',
    'displayName gt "Z"',
    'title eq "engineer"',
    'title ne "Engineer"',
    'title eq ""',
    'title ne ""',
    "title pr",
    "not (title pr)",
    'title gt "m"',
    'title ew "EUR"',
    'title sw "é"',
    'title lt "e"',
    "title eq null",
    'not (title co "ngi")',
    'nickName eq "BOB"',
    'nickName eq "bob"',
    'nickName ne "bob"',
    'nickName eq ""',
    "nickName pr",
    "nickName eq null",
    'not (nickName eq "bob")',
    'nickName co "MIL"',
    # active: a boolean, also absent.
    "active eq true",
    "active eq false",
    "active ne true",
    "active ne false",
    "active pr",
    "not (active pr)",
    "not (active eq true)",
    "active eq null",
    # externalId: caseExact.
    "externalId pr",
    'externalId eq "EXT-1"',
    'externalId eq "ext-1"',
    'externalId co "XT"',
    'externalId sw "ext"',
    'externalId ew "2"',
    'externalId gt "E"',
    'externalId ne "EXT-1"',
    # emails: multi-valued, with type, primary and display.
    'emails co "example.com"',
    'emails co "home"',
    'emails.value co "CORP"',
    'emails.value co "work"',
    'emails.value eq "ORLA@EXAMPLE.COM"',
    'emails.value ne "orla@example.com"',
    'emails.value ne "u1@work.example.com"',
    'emails.value sw "É"',
    'emails.value gt "u2@example.com"',
    'emails.type eq "work"',
    'emails.type eq "home"',
    'emails.type ne "work"',
    "emails.type pr",
    "emails.primary eq true",
    "emails.primary eq false",
    "emails.primary ne true",
    "emails.primary pr",
    "emails pr",
    "not (emails pr)",
    "emails.display pr",
    'emails.display co "WORK"',
    'not (emails.type eq "home")',
    # emails[...]: one entry meets the whole value filter.
    'emails[type eq "work" and value ew ".org"]',
    'emails[type eq "work" or primary eq true]',
    'emails[type eq "work" and value sw "u1"]',
    'emails[type eq "home" or primary eq true]',
    'emails[not (type eq "work")]',
    'emails[type eq "work" and not (primary eq true)]',
    'emails[value co "example" and (type eq "other" or display pr)]',
    "emails[primary pr]",
    "emails[display pr]",
    'emails[value sw "orla"] and displayName pr',
    'emails[type eq "work"] and emails[type eq "home"]',
    'not (emails[type eq "home"])',
    # phoneNumbers.
    "phoneNumbers pr",
    "not (phoneNumbers pr)",
    'phoneNumbers.value sw "+33"',
    'phoneNumbers.value ew "10"',
    'phoneNumbers.value co "555"',
    'phoneNumbers.type eq "mobile"',
    'phoneNumbers.type ne "work"',
    "phoneNumbers.primary eq true",
    'phoneNumbers.display eq "DESK"',
    'phoneNumbers[type eq "mobile"]',
    'phoneNumbers[type eq "work" and primary eq true]',
    'not (phoneNumbers.value sw "+1")',
    # name: columns and `extra`, and `name pr` across both.
    'name.givenName eq "barbara"',
    'name.givenName eq "ann"',
    'name.givenName ne "ann"',
    'name.givenName eq "ÉMILE"',
    'name.givenName eq "émile"',
    'name.givenName sw "é"',
    "name.givenName pr",
    'not (name.givenName gt "b")',
    'name.familyName sw "J"',
    'name.familyName co "ærø"',
    'name.familyName eq "zola"',
    "name.familyName pr",
    "name.middleName pr",
    'name.middleName eq ""',
    "not (name.middleName pr)",
    'name.formatted co "orla"',
    "name.formatted pr",
    'name.honorificPrefix eq "ms."',
    "name pr",
    "not (name pr)",
    # Attributes kept in `extra`.
    'userType eq "employee"',
    'userType ne "Employee"',
    "userType pr",
    'locale sw "fr"',
    'locale eq "FR-fr"',
    'preferredLanguage eq "en-US"',
    'timezone co "london"',
    "addresses pr",
    "not (addresses pr)",
    'addresses.locality eq "Paris"',
    'addresses.locality co "ærø"',
    'addresses.country eq "fr"',
    'addresses.type eq "home"',
    "addresses.primary eq true",
    'addresses[type eq "work" and locality co "par"]',
    'addresses[type eq "work" and locality co "lyon"]',
    'addresses[not (type eq "work")]',
    'addresses.type eq "work" and addresses.locality co "par"',
    'ims.value eq "ACHEN"',
    'ims.type eq "xmpp"',
    "ims pr",
    'ims[type eq "xmpp" and value sw "p"]',
    'roles.value eq "admin"',
    "roles.primary eq true",
    'roles co "aud"',
    'entitlements.value eq "vpn"',
    'entitlements.value co "print"',
    "entitlements[primary eq true]",
    # The enterprise extension, by full URN.
    f'{ENTERPRISE}:department eq "sales"',
    f'{ENTERPRISE}:department ne "sales"',
    f"{ENTERPRISE}:department pr",
    f'{ENTERPRISE}:department co "AL"',
    f'{ENTERPRISE}:department sw "é"',
    f'{ENTERPRISE}:department gt "r"',
    f'{ENTERPRISE}:employeeNumber gt "5"',
    f'{ENTERPRISE}:employeeNumber eq "12"',
    f"{ENTERPRISE}:employeeNumber pr",
    f'{ENTERPRISE}:costCenter eq "42"',
    f'{ENTERPRISE}:organization co "ac"',
    f'{ENTERPRISE}:organization eq "EXAMPLE"',
    f"{ENTERPRISE}:manager pr",
    f"not ({ENTERPRISE}:manager pr)",
    f'{ENTERPRISE}:manager.value eq "{{bjensen}}"',
    f'{ENTERPRISE}:manager.value ne "{{bjensen}}"',
    f"{ENTERPRISE}:manager.value pr",
    # The Acme extension: a string and an integer.
    f'{ACME_BADGE} eq "b-0042"',
    f'{ACME_BADGE} co "00"',
    f'{ACME_BADGE} sw "É"',
    f'{ACME_BADGE} sw "n-"',
    f'{ACME_BADGE} gt "c"',
    f'{ACME_BADGE} ne "C-7"',
    f"{ACME_BADGE} pr",
    f"not ({ACME_BADGE} pr)",
    f"{ACME_BADGE} eq null",
    f"{ACME_LEVEL} eq 3",
    f"{ACME_LEVEL} ne 3",
    f"{ACME_LEVEL} gt 2",
    f"{ACME_LEVEL} gt 9",
    f"{ACME_LEVEL} ge 3",
    f"{ACME_LEVEL} lt 3",
    f"{ACME_LEVEL} lt 10",
    f"{ACME_LEVEL} le 0",
    f"{ACME_LEVEL} pr",
    f"not ({ACME_LEVEL} gt 2)",
    f"{ACME_LEVEL} eq 0",
    f'{ACME_LEVEL} ge 1 and {ACME_BADGE} sw "n"',
    # meta, id.
    'meta.resourceType eq "User"',
    'meta.resourceType eq "user"',
    'meta.resourceType ne "User"',
    'meta.created ge "{created_user05}"',
    'meta.created lt "{created_achen}"',
    'meta.created gt "2000-01-01T00:00:00Z"',
    'meta.lastModified gt "{modified_user10}"',
    'meta.lastModified lt "2000-01-01T00:00:00Z"',
    "meta.created pr",
    'id eq "{achen}"',
    'id ne "{achen}"',
    "id pr",
    # groups: derived from memberships.
    'groups.value eq "{Admins}"',
    'groups.value ne "{Everyone}"',
    'groups.display eq "everyone"',
    'groups.display co "ærø"',
    'groups.type eq "direct"',
    "groups pr",
    "not (groups pr)",
    'groups[display sw "o"]',
    'groups[value eq "{Ops}"]',
    # Nested logic.
    'title eq "Engineer" or (active eq false and nickName pr)',
    'not (userName sw "user1") and not (emails pr)',
    '(title pr or active eq false) and emails.type eq "work"',
    'not (userName sw "a" or userName sw "b")',
    'title eq "Engineer" and not (active eq true)',
    'userName sw "user" and (title eq "manager" or displayName ew "3")',
    'userName sw "p" and not (emails pr or name pr)',
    'userName sw "user" and not (emails pr or name pr)',
    "not (not (active eq true))",
    "not (title pr and (active eq true or not (emails pr)))",
    "id pr and externalId pr",
    f'{ENTERPRISE}:department eq "sales" or {ACME_LEVEL} ge 5',
]
GROUP_FILTERS = [
    'displayName eq "admins"',
    'displayName co "e"',
    'displayName gt "B"',
    'displayName sw "Æ"',
    'displayName co "ærø"',
    'displayName ew "S"',
    'displayName ne "empty"',
    'not (displayName eq "empty")',
    f'{CORE_GROUP}:displayName eq "ROOT"',
    'members.value eq "{bjensen}"',
    'members.value ne "{bjensen}"',
    'members.value eq "{Admins}"',
    "members.value pr",
    'members[type eq "Group"]',
    'members[not (type eq "User")]',
    'members[value eq "{émile}"]',
    'members.type eq "user"',
    'members.type ne "User"',
    'members.display eq "Barbara Jensen"',
    'members.display eq "zed"',  # no displayName: the userName shows
    'members.display eq "mjones"',  # an empty displayName: the userName too
    'members.display eq ""',
    'members.display eq "USER03"',
    'members.display eq "admins"',  # a group shows its displayName
    'members.display co "ops"',  # the display a client gave
    'members.display co "ærø"',
    'members.display eq "Ærøskøbing Office"',
    'members.display sw "é"',
    "members.display pr",
    'members[display co "(ops)" and type eq "User"]',
    'members[display pr and type eq "Group"]',
    "members pr",
    "not (members pr)",
    "externalId pr",
    'externalId eq "G-1"',
    'externalId eq "g-1"',
    'meta.resourceType eq "Group"',
    'meta.created gt "{created_Admins}"',
    'id eq "{Ops}"',
    'ID eq "{Ops}"',
    'displayName eq "ADMINS" or members.display eq "zed"',
    # Entra ID's membership probe, and the like, which memory answers from
    # its indexes.
    'id eq "{Admins}" and members[value eq "{bjensen}"]',
    'id eq "{Ops}" and members[value eq "{bjensen}"]',
    'members[value eq "{émile}"] and not (displayName eq "Admins")',
    'id eq "{Admins}" and members.value eq "{Admins}"',
    f'{CORE_GROUP}:id eq "{{Admins}}" and {CORE_GROUP}:members[value eq "{{bjensen}}"]',
]
FILTERS = [(USER, f) for f in USER_FILTERS] + [(GROUP, f) for f in GROUP_FILTERS]

# Attributes of the other resource type: false (RFC 7644 §3.4.2.1).
OTHER_TYPE_FILTERS = [
    (GROUP, 'userName eq "bjensen"'),
    (GROUP, 'emails.value co "example"'),
    (GROUP, f"{ENTERPRISE}:department pr"),
    (GROUP, "not (userName pr)"),
    (USER, "members pr"),
    (USER, 'members.value eq "x"'),
    (USER, 'not (members.display eq "x")'),
]

USER_SORTS = [
    "userName",
    f"{CORE_USER}:userName",
    "displayName",
    "title",
    "active",
    "externalId",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "phoneNumbers",
    "phoneNumbers.value",
    "name.familyName",
    "name.givenName",
    "name.formatted",
    "nickName",
    "userType",
    "locale",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "id",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:costCenter",
    f"{ENTERPRISE}:manager.value",
    ACME_BADGE,
    ACME_LEVEL,
]
GROUP_SORTS = ["displayName", "externalId", "meta.created", "id"]
SORTS = [(USER, s) for s in USER_SORTS] + [(GROUP, s) for s in GROUP_SORTS]
# Ids are random (a manager.value is one), and each backend touches members in
# its own order: those sorts are held to SearchRequest.sort on each backend's
# own records only.
OWN_ORDER_SORTS = {"id", "meta.lastModified", f"{ENTERPRISE}:manager.value"}

# Filters and sorts some backend may not answer: shared/filter_plan.py decides.
CANDIDATE_FILTERS = [
    (USER, 'meta.location eq "x"'),
    (USER, "meta.location pr"),
    (USER, 'meta.version eq "W/\\"1\\""'),
    (USER, 'x509Certificates.value eq "aGVsbG8="'),
    (USER, "x509Certificates pr"),
    (USER, 'groups.$ref co "Groups"'),
    (USER, f'{ENTERPRISE}:manager.$ref co "Users"'),
    (USER, 'photos.value eq "https://photos.example.com/b.jpg"'),
    (USER, 'schemas eq "urn:ietf:params:scim:schemas:core:2.0:User"'),
    (USER, 'profileUrl eq "https://example.com/bjensen"'),
    (USER, f'{ACME_LEVEL} eq "3"'),
    (USER, f'{ACME_LEVEL} co "1"'),
    (USER, 'addresses[locality eq "Paris"].country eq "fr"'),
    (USER, 'emails[type eq "work"].value co "example"'),
    # A complex attribute compared as a whole, and a date without a zone.
    (USER, "name eq null"),
    (USER, 'name sw ""'),
    (USER, f"{ENTERPRISE}:manager ne null"),
    (USER, 'addresses co "par"'),
    (USER, 'meta.created gt "2020-01-01"'),
    (USER, 'meta.created ne "2020-01-01"'),
    (GROUP, 'members.$ref eq "x"'),
    (GROUP, 'members.$ref co "Users"'),
    (GROUP, 'meta.location co "Groups"'),
]
CANDIDATE_SORTS = [
    (USER, "addresses.locality"),
    (USER, "groups.display"),
    (USER, "meta.location"),
    (USER, "roles"),
    (USER, "name.middleName"),
    (USER, "ims.value"),
    (USER, f"{ENTERPRISE}:organization"),
    (GROUP, "members"),
    (GROUP, "members.display"),
    (GROUP, "meta.location"),
]


def name_of(record: dict[str, Any]) -> str:
    return record.get("user_name") or record["display_name"]


_RESOURCES: dict[tuple, Any] = {}


def to_resource(kind: str) -> Any:
    """The SCIM resource of a record, built once per version of the record.

    The data set is read-only, so memory's scans and the checks against
    `match` and `sort` reuse what they built (ids are unique to a backend).
    """
    to_scim = mapping.to_scim_user if kind == USER else mapping.to_scim_group

    def build(record: dict[str, Any]) -> Any:
        key = (kind, record["id"], record["version"], record["last_modified"])
        if key not in _RESOURCES:
            _RESOURCES[key] = to_scim(record, BASE)
        return _RESOURCES[key]

    return build


def search(
    backend: Any, kind: str, request: SearchRequest, start: int = 0, stop: Any = None
) -> tuple[int, list[str]]:
    """A backend's answer: the total, and the names of the page.

    A group search answers the same with members=False, without members.
    """
    total, records = backend.search_records(
        kind, request, start, stop, to_resource(kind)
    )
    answer = total, [name_of(record) for record in records]
    if kind == GROUP:
        total, records = backend.search_records(
            kind, request, start, stop, to_resource(kind), members=False
        )
        assert not any("members" in record for record in records)
        assert (total, [name_of(record) for record in records]) == answer
    return answer


def resources(backend: Any, kind: str) -> list[Any]:
    """The backend's records as SCIM resources, in storage order."""
    return [to_resource(kind)(record) for record in backend.list_records(kind)[1]]


def model_of(kind: str) -> Any:
    return UserModel if kind == USER else Group


def outcome(backend: Any, kind: str, request: SearchRequest, *page: Any) -> Any:
    """A backend's answer, or "refused" when it raises InvalidFilterException."""
    try:
        return search(backend, kind, request, *page)
    except InvalidFilterException:
        return "refused"


class Populated:
    """One backend holding the data set, and the names its filters refer to."""

    def __init__(self, backend_id: str, backend: Any) -> None:
        self.id = backend_id
        self.backend = backend
        self.names = populate(backend)
        self.answers: dict[Any, Any] = {}
        self._resources: dict[str, list[Any]] = {}

    def resources(self, kind: str) -> list[Any]:
        """The records as SCIM resources, in storage order (built once)."""
        if kind not in self._resources:
            self._resources[kind] = resources(self.backend, kind)
        return self._resources[kind]

    def matched(self, kind: str, request: SearchRequest) -> tuple[int, list[str]]:
        """What `ScimFilter.match` keeps of the records, in storage order."""
        found = [
            resource.user_name if kind == USER else resource.display_name
            for resource in self.resources(kind)
            if request.filter.match(resource)
        ]
        return len(found), found

    def sorted_names(self, kind: str, request: SearchRequest) -> list[str]:
        """The names of the records in the order `SearchRequest.sort` gives."""
        return [
            resource.user_name if kind == USER else resource.display_name
            for resource in request.sort(self.resources(kind))
        ]

    def request(self, kind: str, **params: Any) -> SearchRequest:
        if "filter" in params:
            params["filter"] = params["filter"].format_map(self.names)
        return SearchRequest[model_of(kind)](**params)


@pytest.fixture(scope="module")
def memory() -> Populated:
    """The data set in memory: the answers every backend must give."""
    return Populated("memory", MemoryStorage())


@pytest.fixture(scope="class", params=BACKENDS)
def populated(
    request: pytest.FixtureRequest,
    memory: Populated,
) -> Iterator[Populated]:
    """The data set on one backend, built once for the tests that only read."""
    if request.param == "memory":
        yield memory
        return
    backend = open_backend(request.param, request, "contract_data")
    backend.reset()
    yield Populated(request.param, backend)
    close_backend(backend)


def expected_answer(
    memory: Populated, kind: str, page: tuple = (), **params: Any
) -> Any:
    """Memory's answer, computed once per question: the data set is read-only."""
    key = (kind, page, tuple(sorted(params.items())))
    if key not in memory.answers:
        request = memory.request(kind, **params)
        memory.answers[key] = outcome(memory.backend, kind, request, *page)
    return memory.answers[key]


# [start:stop) windows: the first page, middle ones, an empty one, past the end.
PAGES = [(0, 5), (5, 10), (18, 40), (3, 3), (7, None), (30, None), (200, None)]


class TestSameAnswers:
    """Every backend answers reads of one data set as memory does."""

    @pytest.mark.parametrize(
        ("kind", "template"), FILTERS, ids=[f"{k}:{f}" for k, f in FILTERS]
    )
    def test_filter(self, populated, memory, kind, template):
        request = populated.request(kind, filter=template)
        answer = search(populated.backend, kind, request)
        if populated.id == "memory":
            assert answer == populated.matched(kind, request)
        else:
            assert answer == expected_answer(memory, kind, filter=template)

    @pytest.mark.parametrize(
        ("kind", "filter_"),
        OTHER_TYPE_FILTERS,
        ids=[f"{k}:{f}" for k, f in OTHER_TYPE_FILTERS],
    )
    def test_attribute_of_the_other_type(self, populated, memory, kind, filter_):
        """False, as in a search at the root over both types (RFC 7644 §3.4.2.1)."""
        request = SearchRequest[UserModel | Group](filter=filter_)
        answer = search(populated.backend, kind, request)
        assert answer == memory.matched(kind, request)

    @pytest.mark.parametrize(
        ("kind", "sort_by"), SORTS, ids=[f"{k}:{s}" for k, s in SORTS]
    )
    def test_sort(self, populated, memory, kind, sort_by):
        """Ascending then descending: as `SearchRequest.sort`, and as memory."""
        for order in ("ascending", "descending"):
            request = populated.request(kind, sort_by=sort_by, sort_order=order)
            total, found = search(populated.backend, kind, request)
            assert (order, found) == (order, populated.sorted_names(kind, request))
            if sort_by not in OWN_ORDER_SORTS:
                expected = expected_answer(
                    memory, kind, sort_by=sort_by, sort_order=order
                )
                assert (order, total, found) == (order, *expected)

    def test_sort_on_an_attribute_of_the_other_type_keeps_the_order(self, populated):
        request = SearchRequest[UserModel | Group](sort_by="userName")
        assert search(populated.backend, GROUP, request)[1] == list(GROUPS)
        request = SearchRequest[UserModel | Group](sort_by="members.value")
        names = [body["userName"] for body in PEOPLE]
        assert search(populated.backend, USER, request)[1] == names

    @pytest.mark.parametrize(
        "params",
        [
            {"filter": "emails pr or title pr", "sort_by": "title"},
            {
                "filter": 'not (userName sw "user0")',
                "sort_by": "name.givenName",
                "sort_order": "descending",
            },
            {"filter": f"{ACME_LEVEL} pr", "sort_by": ACME_LEVEL},
            {"sort_by": "emails.value", "sort_order": "descending"},
            {"filter": "active pr"},
        ],
        ids=["title", "givenName-desc", "acme", "emails-desc", "unsorted"],
    )
    def test_filtered_sorted_page(self, populated, memory, params):
        request = populated.request(USER, **params)
        for page in PAGES:
            expected = expected_answer(memory, USER, page, **params)
            assert (page, search(populated.backend, USER, request, *page)) == (
                page,
                expected,
            )

    @pytest.mark.parametrize("kind", [USER, GROUP])
    def test_list_records_page(self, populated, memory, kind):
        for page in PAGES:
            total, records = populated.backend.list_records(kind, *page)
            expected_total, expected = memory.backend.list_records(kind, *page)
            assert (page, total, [name_of(r) for r in records]) == (
                page,
                expected_total,
                [name_of(r) for r in expected],
            )

    @pytest.mark.parametrize(
        ("kind", "params"),
        [
            (USER, {}),
            (USER, {"filter": "emails pr or title pr"}),
            (USER, {"filter": 'not (userName sw "user0")'}),
            (GROUP, {}),
            (GROUP, {"filter": "members pr"}),
        ],
        ids=["users", "users-filtered", "users-not", "groups", "members"],
    )
    def test_a_walk_by_position_meets_memory_s_records(
        self, populated, memory, kind, params
    ):
        """Forward then back, five at a time: memory's names, in creation order."""

        def walk(store: Populated) -> tuple[list[str], list[str]]:
            request = store.request(kind, **params)

            def page(**side: Any) -> tuple[int, list[dict[str, Any]]]:
                if params:
                    return store.backend.search_records(
                        kind, request, 0, 5, to_resource(kind), **side
                    )
                return store.backend.list_records(kind, 0, 5, **side)

            forward, past = [], None
            while True:
                total, records = page(past=past)
                forward += name_list(records)
                past = records[-1]["position"] if records else past
                if len(records) < 5:
                    break
            assert total == len(forward)
            backward, past = [], None  # from the last record, newest first
            while True:
                _, records = page(past=past, backwards=True)
                backward += name_list(records)
                if len(records) < 5:
                    break
                past = records[-1]["position"]
            return forward, backward

        forward, backward = walk(populated)
        assert backward == forward[::-1]
        assert (forward, backward) == walk(memory)

    @pytest.mark.parametrize("kind", [USER, GROUP])
    def test_records_hold_what_memory_holds(self, populated, memory, kind):
        """Every record, its derived attributes included, ids written as names."""

        def comparable(store: Populated) -> list[dict[str, Any]]:
            by_id = {value: key for key, value in store.names.items()}
            owned = ("id", "version", "created", "last_modified", "position")
            records = []
            for record in store.backend.list_records(kind)[1]:
                record = {k: v for k, v in record.items() if k not in owned}
                if kind == USER:
                    record["manager_id"] = by_id.get(record["manager_id"])
                    record["groups"] = [
                        (by_id[g["value"]], g["display"]) for g in record["groups"]
                    ]
                else:
                    record["members"] = sorted(
                        (by_id[m["value"]], m["type"], m["display"])
                        for m in record["members"]
                    )
                records.append(record)
            return records

        assert comparable(populated) == comparable(memory)

    @pytest.mark.parametrize(
        ("kind", "filter_"),
        CANDIDATE_FILTERS,
        ids=[f"{k}:{f}" for k, f in CANDIDATE_FILTERS],
    )
    def test_a_filter_is_refused_everywhere_or_nowhere(
        self, populated, memory, kind, filter_
    ):
        """Refused by every backend, memory included, or answered as memory does."""
        request = populated.request(kind, filter=filter_)
        expected = expected_answer(memory, kind, filter=filter_)
        assert outcome(populated.backend, kind, request) == expected
        if populated.id == "memory" and expected != "refused":
            assert expected == populated.matched(kind, request)

    @pytest.mark.parametrize(
        ("kind", "sort_by"),
        CANDIDATE_SORTS,
        ids=[f"{k}:{s}" for k, s in CANDIDATE_SORTS],
    )
    def test_a_sort_is_refused_everywhere_or_nowhere(
        self, populated, memory, kind, sort_by
    ):
        for order in ("ascending", "descending"):
            request = populated.request(kind, sort_by=sort_by, sort_order=order)
            expected = expected_answer(memory, kind, sort_by=sort_by, sort_order=order)
            answer = outcome(populated.backend, kind, request)
            assert (order, answer) == (order, expected)
            if populated.id == "memory" and expected != "refused":
                assert expected[1] == populated.sorted_names(kind, request)
