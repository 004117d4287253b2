"""A group of 400 members costs what a group of 10 costs, on every backend.

What Entra ID and Okta send against an "all employees" group: one PATCH per
membership change (by a value list, by a `members[value eq]` path, Entra's
remove-with-value), a PATCH of another attribute, reads that leave members
out, and Entra's membership probe. Each request is timed in a group of 10 and
in one of 400 (best of several runs, as timeit does): the large one may cost
at most three times as much. Without the fast path (shared/membership.py),
these grow with the group: 15 to 80 times at 400 members.

And the storage is never asked for a group's member list while they run: the
check that holds however fast the machine is.
"""

import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import POSTGRES_URL
from conftest import ScimClient
from conftest import patch_body
from scim2_models import Group
from scim2_models import User

from shared import mapping
from shared import storage

LARGE = 400
SMALL = 10
RUNS = 5

# The memory backend under each framework; each database under one of them.
PAIRS = [
    ("flask", "memory"),
    ("fastapi", "memory"),
    ("django", "memory"),
    ("flask", "sqlite"),
    ("django", "django-sqlite"),
]
if POSTGRES_URL:
    PAIRS += [("fastapi", "postgres"), ("django", "django-postgres")]


def seed_group(display_name: str, members: list[str]) -> str:
    record = mapping.from_scim_group(Group(display_name=display_name))
    record["members"] = [{"value": member, "type": "User"} for member in members]
    return storage.save_record(storage.GROUP, record)["id"]


def seed_users(count: int) -> list[str]:
    return [
        storage.save_record(
            storage.USER, mapping.from_scim_user(User(user_name=f"user{index:05d}"))
        )["id"]
        for index in range(count)
    ]


def patched(client: ScimClient, group_id: str, *operations: dict) -> None:
    reply = client.patch(f"/Groups/{group_id}", patch_body(*operations))
    assert reply.status == 204, reply.body


def add_and_remove_by_path(client, group_id, member, spare):
    add = {"op": "add", "path": "members", "value": [{"value": spare}]}
    patched(client, group_id, add)
    patched(client, group_id, {"op": "remove", "path": f'members[value eq "{spare}"]'})


def add_and_remove_as_entra_does(client, group_id, member, spare):
    add = {"op": "Add", "path": "members", "value": [{"value": spare}]}
    remove = {
        "op": "Remove",
        "path": "members",
        "value": [{"$ref": None, "value": spare}],
    }
    patched(client, group_id, add)
    patched(client, group_id, remove)


def rename(client, group_id, member, spare):
    name = f"Renamed {time.perf_counter_ns()}"
    patched(client, group_id, {"op": "replace", "path": "displayName", "value": name})


def replace_external_id_as_okta_does(client, group_id, member, spare):
    value = {"id": group_id, "externalId": f"okta-{time.perf_counter_ns()}"}
    patched(client, group_id, {"op": "replace", "value": value})


def get_without_members(client, group_id, member, spare):
    reply = client.get(f"/Groups/{group_id}", params={"excludedAttributes": "members"})
    assert reply.status == 200 and "members" not in reply.json


def list_only_names(client, group_id, member, spare):
    reply = client.get("/Groups", params={"attributes": "displayName", "count": "5"})
    assert reply.status == 200 and reply.json["totalResults"] == 2


def entra_membership_probe(client, group_id, member, spare):
    # As Entra ID sends it, before it adds or removes a member.
    params = {
        "excludedAttributes": "members",
        "filter": f'id eq "{group_id}" and members[value eq "{member}"]',
    }
    reply = client.get("/Groups", params=params)
    assert reply.status == 200 and reply.json["totalResults"] == 1
    params["filter"] = f'id eq "{group_id}" and members[value eq "{spare}"]'
    assert client.get("/Groups", params=params).json["totalResults"] == 0


OPERATIONS: list[Callable[..., None]] = [
    add_and_remove_by_path,
    add_and_remove_as_entra_does,
    rename,
    replace_external_id_as_okta_does,
    get_without_members,
    list_only_names,
    entra_membership_probe,
]


def best_times(operation: Callable[..., None], *groups: tuple) -> list[float]:
    """The best time of each group's runs, the groups taking turns, so that a
    busy spell of the machine falls on both alike."""
    best = [float("inf")] * len(groups)
    for _ in range(RUNS):
        for index, args in enumerate(groups):
            started = time.perf_counter()
            operation(*args)
            best[index] = min(best[index], time.perf_counter() - started)
    return best


def grows(operation: Callable[..., None], small: tuple, large: tuple) -> str | None:
    """How much slower the large group is, if more than 3x (with 2 ms of slack:
    below that, a timer tick or a GC pause decides). A cost that grows with
    the group is slower every time, a busy machine only now and then: three
    tries."""
    for _ in range(3):
        at_small, at_large = best_times(operation, small, large)
        if at_large <= 3 * at_small + 0.002:
            return None
    return f"{at_small * 1e3:.1f} -> {at_large * 1e3:.1f} ms"


@pytest.fixture
def member_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The storage reads of groups with their member list, while a test runs."""
    reads: list[str] = []
    for name in ("get_record", "list_records", "search_records"):
        real = getattr(storage, name)

        def spy(*args: Any, _real: Any = real, _name: str = name, **kwargs: Any) -> Any:
            call = inspect.signature(_real).bind(*args, **kwargs).arguments
            if call["kind"] == storage.GROUP and call.get("members", True):
                reads.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(storage, name, spy)
    return reads


@pytest.mark.parametrize(
    ("framework", "backend"), PAIRS, indirect=True, ids=[f"{f}-{b}" for f, b in PAIRS]
)
def test_membership_operations_cost_the_same_in_a_large_group(client, member_reads):
    users = seed_users(LARGE + 1)
    spare = users.pop()  # a member of neither group, added and removed again
    small = seed_group("Small", users[:SMALL])
    large = seed_group("Large", users)
    member_reads.clear()
    slower = {}
    for operation in OPERATIONS:
        operation(client, large, users[-1], spare)  # warm up
        small_group = (client, small, users[0], spare)
        large_group = (client, large, users[-1], spare)
        if times := grows(operation, small_group, large_group):
            slower[operation.__name__] = times
    assert slower == {}
    assert member_reads == []
    # And every member is still there, the spare in neither group.
    members = client.get(f"/Groups/{large}").json["members"]
    assert {member["value"] for member in members} == set(users)
    assert client.get(f"/Users/{spare}").json.get("groups", []) == []
