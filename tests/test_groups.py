"""Groups: CRUD, members that must exist, and User.groups derived from memberships."""

import pytest
from conftest import BASE
from conftest import assert_error
from conftest import create_group
from conftest import create_user
from conftest import group_body
from conftest import patch_body


def member_ids(group: dict) -> set[str]:
    return {member["value"] for member in group.get("members", [])}


def test_create_group_with_members(client):
    alice = create_user(client, "alice", displayName="Alice")
    bob = create_user(client, "bob")
    reply = client.post("/Groups", group_body("Admins", alice["id"], bob["id"]))
    assert reply.status == 201
    group = reply.json
    assert group["displayName"] == "Admins"
    assert reply.headers["location"] == f"{BASE}/Groups/{group['id']}"
    assert reply.headers["etag"] == group["meta"]["version"]
    assert group["meta"]["resourceType"] == "Group"
    by_id = {member["value"]: member for member in group["members"]}
    assert by_id[alice["id"]] == {
        "value": alice["id"],
        "$ref": f"{BASE}/Users/{alice['id']}",
        "type": "User",
        "display": "Alice",
    }
    assert by_id[bob["id"]]["display"] == "bob"


def test_group_crud(client):
    group = create_group(client, "Admins")
    assert client.get(f"/Groups/{group['id']}").json == group
    assert client.get("/Groups").json["totalResults"] == 1
    replaced = client.put(f"/Groups/{group['id']}", group_body("Operators"))
    assert replaced.status == 200
    assert replaced.json["displayName"] == "Operators"
    assert client.delete(f"/Groups/{group['id']}").status == 204
    assert_error(client.get(f"/Groups/{group['id']}"), 404)


def test_unknown_member_is_400_invalid_value_and_changes_nothing(client):
    reply = client.post("/Groups", group_body("Admins", "no-such-user"))
    assert_error(reply, 400, "invalidValue")
    assert client.get("/Groups").json["totalResults"] == 0

    group = create_group(client, "Admins")
    patch = patch_body(
        {"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}
    )
    assert_error(client.patch(f"/Groups/{group['id']}", patch), 400, "invalidValue")
    assert client.get(f"/Groups/{group['id']}").json == group


@pytest.mark.keeps("nested-groups")
def test_nested_groups(client):
    inner = create_group(client, "Inner")
    reply = client.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Outer",
            "members": [{"value": inner["id"], "type": "Group"}],
        },
    )
    assert reply.status == 201
    [member] = reply.json["members"]
    assert member["$ref"] == f"{BASE}/Groups/{inner['id']}"
    assert member["type"] == "Group"


def test_user_groups_reflect_memberships(client):
    alice = create_user(client, "alice")
    admins = create_group(client, "Admins", alice["id"])
    ops = create_group(client, "Ops", alice["id"])
    groups = client.get(f"/Users/{alice['id']}").json["groups"]
    assert {group["value"] for group in groups} == {admins["id"], ops["id"]}
    by_id = {group["value"]: group for group in groups}
    assert by_id[admins["id"]]["display"] == "Admins"
    assert by_id[admins["id"]]["$ref"] == f"{BASE}/Groups/{admins['id']}"
    assert by_id[admins["id"]]["type"] == "direct"

    client.delete(f"/Groups/{ops['id']}")
    groups = client.get(f"/Users/{alice['id']}").json["groups"]
    assert [group["value"] for group in groups] == [admins["id"]]


def test_user_groups_are_read_only(client):
    alice = create_user(client, "alice")
    group = create_group(client, "Admins")
    # A PUT carrying groups (Okta sends them) does not change memberships.
    reply = client.put(
        f"/Users/{alice['id']}",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice",
            "groups": [{"value": group["id"]}],
        },
    )
    assert reply.status == 200
    assert "groups" not in reply.json
    assert member_ids(client.get(f"/Groups/{group['id']}").json) == set()


def test_deleting_a_user_removes_it_from_every_group(client):
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    admins = create_group(client, "Admins", alice["id"], bob["id"])
    ops = create_group(client, "Ops", alice["id"])
    assert client.delete(f"/Users/{alice['id']}").status == 204
    assert member_ids(client.get(f"/Groups/{admins['id']}").json) == {bob["id"]}
    assert member_ids(client.get(f"/Groups/{ops['id']}").json) == set()


def test_membership_changes_move_the_user_etag(client):
    alice = create_user(client, "alice")
    before = client.get(f"/Users/{alice['id']}").headers["etag"]
    create_group(client, "Admins", alice["id"])
    after = client.get(f"/Users/{alice['id']}").headers["etag"]
    assert before != after


def test_deleting_a_group_leaves_its_members(client):
    alice = create_user(client, "alice")
    group = create_group(client, "Admins", alice["id"])
    client.delete(f"/Groups/{group['id']}")
    user = client.get(f"/Users/{alice['id']}").json
    assert "groups" not in user


def test_excluded_attributes_members(client):
    alice = create_user(client, "alice")
    group = create_group(client, "Admins", alice["id"])
    params = {"excludedAttributes": "members"}
    one = client.get(f"/Groups/{group['id']}", params=params).json
    assert "members" not in one
    assert one["displayName"] == "Admins"
    listed = client.get("/Groups", params=params).json["Resources"][0]
    assert "members" not in listed
    assert listed["id"] == group["id"]
