"""PATCH (RFC 7644 §3.5.2) through scim2-models' PatchOp, for users and groups."""

import pytest
from conftest import ENTERPRISE
from conftest import assert_error
from conftest import create_group
from conftest import create_user
from conftest import password_matches
from conftest import patch_body


def patch_user(client, user, *operations):
    return client.patch(f"/Users/{user['id']}", patch_body(*operations))


def test_replace_with_path_answers_200_with_the_resource(client):
    user = create_user(client, "bjensen", displayName="Babs")
    reply = patch_user(
        client, user, {"op": "replace", "path": "displayName", "value": "B"}
    )
    assert reply.status == 200
    assert reply.json["displayName"] == "B"
    assert reply.json["id"] == user["id"]
    assert reply.headers["etag"] == reply.json["meta"]["version"]
    assert reply.headers["etag"] != user["meta"]["version"]
    assert client.get(f"/Users/{user['id']}").json == reply.json


def test_add_and_remove_with_path(client):
    user = create_user(
        client, "bjensen", emails=[{"value": "h@example.com", "type": "home"}]
    )
    reply = patch_user(
        client,
        user,
        {
            "op": "add",
            "path": "emails",
            "value": [{"value": "w@example.com", "type": "work"}],
        },
        {"op": "add", "path": "title", "value": "Engineer"},
    )
    assert [e["value"] for e in reply.json["emails"]] == [
        "h@example.com",
        "w@example.com",
    ]
    assert reply.json["title"] == "Engineer"
    reply = patch_user(
        client,
        user,
        {"op": "remove", "path": 'emails[type eq "home"]'},
        {"op": "remove", "path": "title"},
    )
    assert reply.status == 200
    assert [e["value"] for e in reply.json["emails"]] == ["w@example.com"]
    assert "title" not in reply.json


def test_add_and_replace_without_path(client):
    user = create_user(client, "bjensen")
    reply = patch_user(
        client, user, {"op": "add", "value": {"nickName": "B", "title": "T"}}
    )
    assert (reply.json["nickName"], reply.json["title"]) == ("B", "T")
    reply = patch_user(client, user, {"op": "replace", "value": {"title": "Boss"}})
    assert reply.json["title"] == "Boss"
    assert reply.json["nickName"] == "B"


def test_value_filter_sub_attribute_path(client):
    user = create_user(
        client,
        "bjensen",
        emails=[
            {"value": "h@example.com", "type": "home"},
            {"value": "w@example.com", "type": "work"},
        ],
    )
    reply = patch_user(
        client,
        user,
        {
            "op": "replace",
            "path": 'emails[type eq "work"].value',
            "value": "new@example.com",
        },
    )
    emails = {email["type"]: email["value"] for email in reply.json["emails"]}
    assert emails == {"home": "h@example.com", "work": "new@example.com"}


def test_extension_urn_path(client):
    user = create_user(client, "bjensen")
    reply = patch_user(
        client,
        user,
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "Sales"},
    )
    assert reply.status == 200
    assert reply.json[ENTERPRISE]["department"] == "Sales"
    reply = patch_user(
        client, user, {"op": "remove", "path": f"{ENTERPRISE}:department"}
    )
    assert ENTERPRISE not in reply.json


def test_password_can_be_patched_and_is_not_returned(client):
    from shared import storage

    user = create_user(client, "bjensen")
    reply = patch_user(
        client, user, {"op": "replace", "path": "password", "value": "N3w-pass"}
    )
    assert reply.status == 200
    assert "password" not in reply.json
    record = storage.get_record(storage.USER, user["id"])
    assert password_matches("N3w-pass", record["password_hash"])


@pytest.mark.parametrize("path", ["id", "meta.created", "meta.version", "groups"])
def test_changing_read_only_attributes_is_400_mutability(client, path):
    user = create_user(client, "bjensen")
    value = [{"value": "x"}] if path == "groups" else "x"
    reply = patch_user(client, user, {"op": "replace", "path": path, "value": value})
    assert_error(reply, 400, "mutability")
    assert client.get(f"/Users/{user['id']}").json == user


def test_removing_a_required_attribute_is_refused(client):
    user = create_user(client, "bjensen")
    reply = patch_user(client, user, {"op": "remove", "path": "userName"})
    assert_error(reply, 400, "mutability")


@pytest.mark.parametrize("path", ["nope", "emails[[", "name.nope", "urn:nope:x"])
def test_bad_path_is_400_invalid_path(client, path):
    user = create_user(client, "bjensen")
    reply = patch_user(client, user, {"op": "replace", "path": path, "value": "x"})
    assert_error(reply, 400, "invalidPath")
    assert client.get(f"/Users/{user['id']}").json == user


def test_filter_matching_nothing_is_400_no_target(client):
    user = create_user(
        client, "bjensen", emails=[{"value": "h@example.com", "type": "home"}]
    )
    reply = patch_user(
        client,
        user,
        {
            "op": "replace",
            "path": 'emails[type ne "home"].value',
            "value": "x@example.com",
        },
    )
    assert_error(reply, 400, "noTarget")


def test_unknown_op_and_missing_value_are_400_invalid_value(client):
    user = create_user(client, "bjensen")
    reply = patch_user(
        client, user, {"op": "frobnicate", "path": "title", "value": "x"}
    )
    assert_error(reply, 400, "invalidValue")
    reply = patch_user(client, user, {"op": "replace", "path": "title"})
    assert_error(reply, 400, "invalidValue")


def test_no_operations_is_400(client):
    user = create_user(client, "bjensen")
    reply = client.patch(f"/Users/{user['id']}", patch_body())
    assert_error(reply, 400, "invalidValue")


def test_operations_apply_all_or_nothing(client):
    user = create_user(client, "bjensen", title="Engineer")
    reply = patch_user(
        client,
        user,
        {"op": "replace", "path": "title", "value": "Boss"},
        {"op": "replace", "path": "nope", "value": "x"},
    )
    assert_error(reply, 400, "invalidPath")
    assert client.get(f"/Users/{user['id']}").json["title"] == "Engineer"


def test_patch_that_changes_nothing_keeps_the_version(client):
    user = create_user(client, "bjensen", title="Engineer")
    reply = patch_user(
        client, user, {"op": "replace", "path": "title", "value": "Engineer"}
    )
    assert reply.status == 200
    assert reply.headers["etag"] == user["meta"]["version"]


def test_patch_unknown_resource_is_404(client):
    reply = client.patch(
        "/Users/nope", patch_body({"op": "add", "path": "title", "value": "x"})
    )
    assert_error(reply, 404)


def test_group_member_add_and_remove_by_value_filter(client):
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    group = create_group(client, "Admins", alice["id"])
    path = f"/Groups/{group['id']}"
    reply = client.patch(
        path,
        patch_body({"op": "add", "path": "members", "value": [{"value": bob["id"]}]}),
    )
    # RFC 7644 §3.5.2: a group PATCH without `attributes` answers 204, whose
    # ETag is the version a GET then shows.
    assert (reply.status, reply.body) == (204, b"")
    current = client.get(path)
    assert reply.headers["etag"] == current.headers["etag"]
    assert {m["value"] for m in current.json["members"]} == {alice["id"], bob["id"]}
    reply = client.patch(
        path,
        patch_body({"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}),
    )
    assert reply.status == 204
    assert [m["value"] for m in client.get(path).json["members"]] == [bob["id"]]
    groups = client.get(f"/Users/{alice['id']}").json.get("groups", [])
    assert groups == []


def test_group_replace_members_and_display_name(client):
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    group = create_group(client, "Admins", alice["id"])
    reply = client.patch(
        f"/Groups/{group['id']}",
        patch_body(
            {"op": "replace", "path": "members", "value": [{"value": bob["id"]}]},
            {"op": "replace", "path": "displayName", "value": "Operators"},
        ),
        params={"attributes": "members,displayName"},
    )
    assert reply.status == 200
    assert [m["value"] for m in reply.json["members"]] == [bob["id"]]
    assert reply.json["displayName"] == "Operators"


@pytest.mark.parametrize(
    ("params", "shown"),
    [
        ({"attributes": "displayName"}, {"displayName"}),
        ({"excludedAttributes": "members"}, {"displayName", "meta"}),
        ({"attributes": "members.value"}, {"members"}),
        ({"excludedAttributes": "members.display"}, {"displayName", "members"}),
    ],
)
def test_group_patch_answers_the_attributes_asked(client, params, shown):
    """With `attributes` or `excludedAttributes`, a group PATCH answers 200."""
    alice = create_user(client, "alice")
    group = create_group(client, "Admins")
    add = {"op": "add", "path": "members", "value": [{"value": alice["id"]}]}
    reply = client.patch(f"/Groups/{group['id']}", patch_body(add), params=params)
    assert reply.status == 200
    assert shown <= set(reply.json) <= shown | {"schemas", "id", "meta", "externalId"}
    if "members" in shown:
        assert [m["value"] for m in reply.json["members"]] == [alice["id"]]
    assert reply.headers["etag"] == client.get(f"/Groups/{group['id']}").headers["etag"]


def test_attributes_parameter_on_patch_response(client):
    user = create_user(client, "bjensen", title="x")
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "replace", "path": "title", "value": "y"}),
        params={"attributes": "title"},
    )
    assert set(reply.json) == {"schemas", "id", "title"}
