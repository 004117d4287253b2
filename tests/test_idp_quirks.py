"""What Microsoft Entra ID and Okta really send, accepted as they send it."""

import pytest
from conftest import ENTERPRISE
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import create_group
from conftest import create_user
from conftest import patch_body


def test_capitalised_op_names(client):
    # Entra ID sends "Replace", "Add", "Remove".
    user = create_user(client, "bjensen")
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body(
            {"op": "Replace", "path": "title", "value": "Lead"},
            {"op": "Add", "path": "nickName", "value": "B"},
        ),
    )
    assert reply.status == 200
    assert (reply.json["title"], reply.json["nickName"]) == ("Lead", "B")


def test_booleans_sent_as_strings(client):
    # Entra ID sends {"op": "Replace", "path": "active", "value": "False"}.
    user = create_user(client, "bjensen", active=True)
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "Replace", "path": "active", "value": "False"}),
    )
    assert reply.status == 200
    assert reply.json["active"] is False
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "replace", "value": {"active": "True"}}),
    )
    assert reply.json["active"] is True


def test_path_less_replace_with_a_value_object(client):
    # Okta deactivates users this way.
    user = create_user(client, "bjensen", active=True)
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "replace", "value": {"active": False}}),
    )
    assert reply.status == 200
    assert reply.json["active"] is False


def test_path_less_replace_with_extension_and_dotted_keys(client):
    # Entra ID puts attribute paths as keys of a path-less value.
    user = create_user(client, "bjensen")
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body(
            {
                "op": "replace",
                "value": {
                    "name.givenName": "Barbara",
                    f"{ENTERPRISE}:department": "R&D",
                },
            }
        ),
    )
    assert reply.status == 200, reply.json
    assert reply.json["name"]["givenName"] == "Barbara"
    assert reply.json[ENTERPRISE]["department"] == "R&D"


def test_remove_members_given_as_a_value_list(client):
    # Entra ID: {"op": "Remove", "path": "members", "value": [{"value": "<id>"}]}.
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    group = create_group(client, "Admins", alice["id"], bob["id"])
    reply = client.patch(
        f"/Groups/{group['id']}",
        patch_body(
            {"op": "Remove", "path": "members", "value": [{"value": alice["id"]}]}
        ),
    )
    assert reply.status == 204
    members = client.get(f"/Groups/{group['id']}").json["members"]
    assert [member["value"] for member in members] == [bob["id"]]


def test_replace_on_a_missing_filtered_entry_creates_it(client):
    # Entra ID replaces emails[type eq "work"].value on users with no work email.
    user = create_user(client, "bjensen")
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body(
            {
                "op": "replace",
                "path": 'emails[type eq "work"].value',
                "value": "bjensen@example.com",
            }
        ),
    )
    assert reply.status == 200
    assert reply.json["emails"] == [{"value": "bjensen@example.com", "type": "work"}]


def test_put_body_with_id_meta_groups_and_password(client):
    # Okta PUTs back the whole user it read, plus the password.
    user = create_user(client, "bjensen", title="x")
    group = create_group(client, "Admins", user["id"])
    current = client.get(f"/Users/{user['id']}").json
    body = {
        **current,
        "id": "something-else",
        "meta": {**current["meta"], "created": "2001-01-01T00:00:00Z"},
        "title": "Lead",
        "password": "N3w-Passw0rd",
    }
    reply = client.put(f"/Users/{user['id']}", body)
    assert reply.status == 200, reply.json
    assert reply.json["id"] == user["id"]
    assert reply.json["title"] == "Lead"
    assert reply.json["meta"]["created"] == user["meta"]["created"]
    assert [g["value"] for g in reply.json["groups"]] == [group["id"]]
    assert "password" not in reply.json


def test_entra_checks_for_the_user_before_creating_it(client):
    # Entra ID first asks GET /Users?filter=userName eq "..." and expects a list.
    reply = client.get("/Users", params={"filter": 'userName eq "new@example.com"'})
    assert reply.status == 200
    assert reply.json["totalResults"] == 0
    create_user(client, "New@Example.com")
    reply = client.get("/Users", params={"filter": 'userName eq "new@example.com"'})
    assert reply.json["totalResults"] == 1


def test_okta_group_push_adds_members_without_type(client):
    alice = create_user(client, "alice")
    group = create_group(client, "Admins")
    reply = client.patch(
        f"/Groups/{group['id']}",
        patch_body(
            {
                "op": "add",
                "path": "members",
                "value": [{"value": alice["id"], "display": "alice@example.com"}],
            }
        ),
    )
    assert reply.status == 204
    [member] = client.get(f"/Groups/{group['id']}").json["members"]
    assert (member["type"], member["display"]) == ("User", "alice@example.com")


@pytest.mark.parametrize(
    "address",
    # A directory's own addresses: a special-use domain of a network that
    # never went public, a test domain, a domain without a dot. pydantic's
    # EmailStr refuses all three, though each has RFC 5321's syntax.
    ["jdoe@corp.local", "qa.bot@example.test", "admin@contoso", "Ann.Lee@Example.COM"],
)
def test_directory_email_addresses_are_kept_as_sent(client, address):
    user = create_user(
        client, "jdoe", emails=[{"value": address, "type": "work", "primary": True}]
    )
    assert user["emails"][0]["value"] == address
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "replace", "path": 'emails[type eq "work"].value',
                    "value": address.upper()}),
    )  # fmt: skip
    assert reply.status == 200, reply.json
    assert reply.json["emails"][0]["value"] == address.upper()
    found = client.get("/Users", params={"filter": f'emails.value eq "{address}"'})
    assert [found_user["id"] for found_user in found.json["Resources"]] == [user["id"]]


@pytest.mark.parametrize(
    "address", ["jdoe", "jdoe@", "@corp.local", "j doe@corp.local", "a@b@c"]
)
def test_a_value_that_is_not_an_address_is_refused(client, address):
    reply = client.post(
        "/Users", {"schemas": [USER_SCHEMA], "userName": "jdoe",
                   "emails": [{"value": address}]},
    )  # fmt: skip
    assert_error(reply, 400, "invalidValue")
    found = client.get("/Users", params={"filter": 'userName eq "jdoe"'})
    assert found.json["totalResults"] == 0
