"""The Microsoft Entra ID SCIM Validator's scenarios, replayed as Entra sends them.

The request bodies are the ones of https://scimvalidator.microsoft.com and of
Microsoft's "Develop and plan provisioning for a SCIM endpoint" tutorial:
capitalised op names, booleans as strings, `emails[type eq "work"].value`
paths, the enterprise extension URN, `externalId`, and every body sent as
`Content-Type: application/scim+json` (the client's default). Each test then
reads the state back with a GET, the way the validator checks it.
"""

import uuid
from typing import Any

from conftest import ENTERPRISE
from conftest import GROUP_SCHEMA
from conftest import SCIM_JSON
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import patch_body

MANAGER = f"{ENTERPRISE}:manager"
WORK_EMAIL = 'emails[type eq "work"].value'
# Entra's classic provisioning client puts this attribute-less marker next to
# the core Group schema when it creates a group.
ADSCIM_GROUP = (
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"
)


def entra_user(**extension: Any) -> dict:
    """The body of Entra's "Create User" request, with fresh random values."""
    suffix = uuid.uuid4()
    return {
        "schemas": [USER_SCHEMA, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": f"Test_User_{suffix}",
        "active": True,
        "emails": [
            {
                "primary": True,
                "type": "work",
                "value": f"Test_User_{suffix}@testuser.com",
            }
        ],
        "meta": {"resourceType": "User"},
        "name": {
            "formatted": "givenName familyName",
            "familyName": "familyName",
            "givenName": "givenName",
        },
        "roles": [],
        ENTERPRISE: {"department": "R&D", "employeeNumber": "1234", **extension},
    }


def entra_group(display_name: str, *schemas: str) -> dict:
    """The body of Entra's "Create Group" request: no members, ever."""
    return {
        "schemas": [GROUP_SCHEMA, *schemas],
        "externalId": str(uuid.uuid4()),
        "displayName": display_name,
        "meta": {"resourceType": "Group"},
    }


def post_user(client, **extension: Any) -> dict:
    reply = client.post("/Users", entra_user(**extension))
    assert reply.status == 201, reply.json
    return reply.json


def post_group(client, display_name: str = "displayName") -> dict:
    reply = client.post("/Groups", entra_group(display_name))
    assert reply.status == 201, reply.json
    return reply.json


def read(client, path: str) -> dict:
    reply = client.get(path)
    assert reply.status == 200, reply.json
    return reply.json


def filter_users(client, expression: str) -> dict:
    reply = client.get("/Users", params={"filter": expression})
    assert reply.status == 200, reply.json
    return reply.json


def filter_groups(client, expression: str) -> dict:
    # Entra never wants the members when it looks a group up.
    params = {"excludedAttributes": "members", "filter": expression}
    reply = client.get("/Groups", params=params)
    assert reply.status == 200, reply.json
    return reply.json


def patch_user(client, user_id: str, *operations: dict) -> dict:
    reply = client.patch(f"/Users/{user_id}", patch_body(*operations))
    assert reply.status == 200, reply.json
    return reply.json


def patch_group(client, group_id: str, *operations: dict) -> None:
    reply = client.patch(f"/Groups/{group_id}", patch_body(*operations))
    # The tutorial asks for 204 on a group PATCH; Entra also takes a 200 body.
    assert reply.status in (200, 204), reply.json


def manager_of(client, user_id: str) -> dict | None:
    return read(client, f"/Users/{user_id}").get(ENTERPRISE, {}).get("manager")


def reference_to(user: dict) -> dict:
    """A manager as RFC 7643 §4.3 writes it, to create a user who has one."""
    return {"value": user["id"], "$ref": user["meta"]["location"]}


def assert_manager_is(client, user_id: str, manager_id: str) -> None:
    manager = manager_of(client, user_id)
    assert manager is not None, "the user has no manager"
    assert manager["value"] == manager_id
    assert manager["$ref"].endswith(f"/Users/{manager_id}")


def member_ids(group: dict) -> list[str]:
    return [member["value"] for member in group.get("members", [])]


def group_ids(user: dict) -> list[str]:
    return [group["value"] for group in user.get("groups", [])]


# Users


def test_create_user(client):
    body = entra_user()
    reply = client.post("/Users", body)
    assert reply.status == 201, reply.json
    assert reply.headers["content-type"].startswith(SCIM_JSON)
    created = reply.json
    assert reply.headers["location"] == created["meta"]["location"]
    assert created["meta"]["location"].endswith(f"/Users/{created['id']}")
    assert created["schemas"] == [USER_SCHEMA, ENTERPRISE]
    for attribute in ("userName", "externalId", "active", "emails", "name"):
        assert created[attribute] == body[attribute], attribute
    assert created[ENTERPRISE] == body[ENTERPRISE]
    assert read(client, f"/Users/{created['id']}") == created


def test_create_duplicate_user(client):
    body = entra_user()
    assert client.post("/Users", body).status == 201
    reply = client.post("/Users", {**body, "externalId": str(uuid.uuid4())})
    assert_error(reply, 409, "uniqueness")
    assert (
        filter_users(client, f'userName eq "{body["userName"]}"')["totalResults"] == 1
    )


def test_filter_existing_user(client):
    user = post_user(client)
    listing = filter_users(client, f'userName eq "{user["userName"]}"')
    assert listing["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert listing["totalResults"] == 1
    [found] = listing["Resources"]
    assert found == read(client, f"/Users/{user['id']}")


def test_filter_non_existing_user(client):
    post_user(client)
    listing = filter_users(client, f'userName eq "{uuid.uuid4()}@testuser.com"')
    assert listing["totalResults"] == 0
    assert listing.get("Resources", []) == []


def test_filter_existing_user_with_different_case(client):
    # userName is caseExact false (RFC 7643 §4.1.1): Entra checks it is found.
    user = post_user(client)
    listing = filter_users(client, f'userName eq "{user["userName"].upper()}"')
    assert listing["totalResults"] == 1
    assert listing["Resources"][0]["id"] == user["id"]


def test_patch_user_replace_attributes(client):
    # Entra's default: one path-less Replace, attribute paths as the keys.
    user = post_user(client)
    patch_user(
        client,
        user["id"],
        {
            "op": "Replace",
            "value": {
                "name.givenName": "Oswaldo",
                "name.familyName": "Rylan",
                "displayName": "Oswaldo Rylan",
                "externalId": "new-external-id",
                "title": "Engineer",
                f"{ENTERPRISE}:department": "Finance",
            },
        },
    )
    current = read(client, f"/Users/{user['id']}")
    assert current["name"]["givenName"] == "Oswaldo"
    assert current["name"]["familyName"] == "Rylan"
    assert current["displayName"] == "Oswaldo Rylan"
    assert current["externalId"] == "new-external-id"
    assert current["title"] == "Engineer"
    assert current[ENTERPRISE]["department"] == "Finance"
    assert current[ENTERPRISE]["employeeNumber"] == "1234"
    assert current["emails"] == user["emails"]


def test_patch_user_replace_attributes_with_a_filtered_email_key(client):
    # The path-less Replace also carries the work email as a filtered path key.
    user = post_user(client)
    patch_user(
        client,
        user["id"],
        {
            "op": "Replace",
            "value": {
                "name.givenName": "Oswaldo",
                WORK_EMAIL: "oswaldo@rylan.example.com",
            },
        },
    )
    current = read(client, f"/Users/{user['id']}")
    assert current["name"]["givenName"] == "Oswaldo"
    [email] = current["emails"]
    assert (email["type"], email["value"]) == ("work", "oswaldo@rylan.example.com")


def test_patch_user_verbose(client):
    # The validator's "verbose" flavour: one operation per attribute.
    user = post_user(client)
    patch_user(
        client,
        user["id"],
        {"op": "Replace", "path": "name.givenName", "value": "Sandy"},
        {"op": "Replace", "path": "name.familyName", "value": "Nia"},
        {"op": "Replace", "path": WORK_EMAIL, "value": "sandy.nia@example.com"},
        {"op": "Replace", "path": "externalId", "value": "external-2"},
        {"op": "Replace", "path": "displayName", "value": "Sandy Nia"},
        {"op": "Replace", "path": "active", "value": "False"},
    )
    current = read(client, f"/Users/{user['id']}")
    assert (current["name"]["givenName"], current["name"]["familyName"]) == (
        "Sandy",
        "Nia",
    )
    [email] = current["emails"]
    assert (email["type"], email["value"]) == ("work", "sandy.nia@example.com")
    assert current["externalId"] == "external-2"
    assert current["displayName"] == "Sandy Nia"
    assert current["active"] is False


def test_update_user_name(client):
    user = post_user(client)
    new_name = f"{uuid.uuid4()}@testuser.com"
    patched = patch_user(
        client, user["id"], {"op": "Replace", "path": "userName", "value": new_name}
    )
    assert patched["userName"] == new_name
    assert read(client, f"/Users/{user['id']}")["userName"] == new_name
    assert filter_users(client, f'userName eq "{new_name}"')["totalResults"] == 1
    old = filter_users(client, f'userName eq "{user["userName"]}"')
    assert old["totalResults"] == 0


def test_disable_user(client):
    # Entra sends the boolean as the string "False".
    user = post_user(client)
    patch_user(
        client, user["id"], {"op": "Replace", "path": "active", "value": "False"}
    )
    assert read(client, f"/Users/{user['id']}")["active"] is False
    [found] = filter_users(client, f'userName eq "{user["userName"]}"')["Resources"]
    assert found["active"] is False


def test_add_manager(client):
    # Entra sends the manager's id as a bare string, not a complex value.
    manager = post_user(client)
    user = post_user(client)
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "Add", "path": MANAGER, "value": manager["id"]}),
    )
    assert reply.status == 200, reply.json
    assert_manager_is(client, user["id"], manager["id"])


def test_replace_manager(client):
    # Entra sends a one-item list whose `$ref` is null.
    former = post_user(client)
    manager = post_user(client)
    user = post_user(client, manager=reference_to(former))
    assert_manager_is(client, user["id"], former["id"])
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body(
            {
                "op": "Replace",
                "path": MANAGER,
                "value": [{"$ref": None, "value": manager["id"]}],
            }
        ),
    )
    assert reply.status == 200, reply.json
    assert_manager_is(client, user["id"], manager["id"])


def test_remove_manager_given_as_a_value_list(client):
    # Entra names the manager it removes, in the same list shape.
    manager = post_user(client)
    user = post_user(client, manager=reference_to(manager))
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body(
            {
                "op": "Remove",
                "path": MANAGER,
                "value": [{"$ref": None, "value": manager["id"]}],
            }
        ),
    )
    assert reply.status == 200, reply.json
    assert manager_of(client, user["id"]) is None


def test_remove_manager(client):
    # Entra also removes a manager with the path alone, no value.
    manager = post_user(client)
    user = post_user(client, manager=reference_to(manager))
    patch_user(client, user["id"], {"op": "Remove", "path": MANAGER})
    assert manager_of(client, user["id"]) is None
    assert read(client, f"/Users/{user['id']}")[ENTERPRISE]["department"] == "R&D"


def test_delete_user(client):
    user = post_user(client)
    reply = client.delete(f"/Users/{user['id']}")
    assert reply.status == 204
    assert reply.body == b""
    assert_error(client.get(f"/Users/{user['id']}"), 404)
    assert (
        filter_users(client, f'userName eq "{user["userName"]}"')["totalResults"] == 0
    )


# Groups


def test_get_group_excluding_members(client):
    user = post_user(client)
    group = post_group(client)
    patch_group(
        client,
        group["id"],
        {"op": "Add", "path": "members", "value": [{"value": user["id"]}]},
    )
    reply = client.get(
        f"/Groups/{group['id']}", params={"excludedAttributes": "members"}
    )
    assert reply.status == 200, reply.json
    assert "members" not in reply.json
    assert (reply.json["id"], reply.json["displayName"]) == (group["id"], "displayName")
    assert member_ids(read(client, f"/Groups/{group['id']}")) == [user["id"]]


def test_filter_groups_excluding_members(client):
    user = post_user(client)
    group = post_group(client)
    patch_group(
        client,
        group["id"],
        {"op": "Add", "path": "members", "value": [{"value": user["id"]}]},
    )
    listing = filter_groups(client, 'displayName eq "displayName"')
    assert listing["totalResults"] == 1
    [found] = listing["Resources"]
    assert found["id"] == group["id"]
    assert "members" not in found


def test_filter_existing_group(client):
    group = post_group(client, "Engineering")
    post_group(client, "Sales")
    listing = filter_groups(client, 'displayName eq "Engineering"')
    assert listing["totalResults"] == 1
    assert [found["id"] for found in listing["Resources"]] == [group["id"]]


def test_filter_non_existing_group(client):
    post_group(client, "Engineering")
    listing = filter_groups(client, f'displayName eq "{uuid.uuid4()}"')
    assert listing["totalResults"] == 0
    assert listing.get("Resources", []) == []


def test_filter_existing_group_with_different_case(client):
    # Group displayName is caseExact false (RFC 7643 §8.7.1).
    group = post_group(client, "Engineering")
    listing = filter_groups(client, 'displayName eq "ENGINEERING"')
    assert listing["totalResults"] == 1
    assert listing["Resources"][0]["id"] == group["id"]


def test_create_group(client):
    body = entra_group("displayName")
    reply = client.post("/Groups", body)
    assert reply.status == 201, reply.json
    assert reply.headers["content-type"].startswith(SCIM_JSON)
    created = reply.json
    assert reply.headers["location"].endswith(f"/Groups/{created['id']}")
    assert created["schemas"] == [GROUP_SCHEMA]
    assert (created["displayName"], created["externalId"]) == (
        "displayName",
        body["externalId"],
    )
    assert created.get("members", []) == []
    assert read(client, f"/Groups/{created['id']}") == created


def test_create_group_with_the_adscim_schema(client):
    # The tutorial's "Create Group" request lists Microsoft's ADSCIM Group
    # schema too: an attribute-less marker, which the server should not refuse.
    body = entra_group("displayName", ADSCIM_GROUP)
    reply = client.post("/Groups", body)
    assert reply.status == 201, reply.json
    assert reply.json["displayName"] == "displayName"
    assert (
        read(client, f"/Groups/{reply.json['id']}")["externalId"] == body["externalId"]
    )


def test_create_duplicate_group(client):
    # displayName need not be unique (RFC 7643 §4.2): the server creates a
    # second group, with an id of its own, as it does today.
    first = post_group(client, "Engineering")
    reply = client.post("/Groups", entra_group("Engineering"))
    assert reply.status == 201, reply.json
    assert reply.json["id"] != first["id"]
    listing = filter_groups(client, 'displayName eq "Engineering"')
    assert listing["totalResults"] == 2


def test_patch_group_replace_attributes(client):
    group = post_group(client)
    patch_group(
        client,
        group["id"],
        {
            "op": "Replace",
            "value": {"displayName": "Renamed", "externalId": "external-2"},
        },
    )
    current = read(client, f"/Groups/{group['id']}")
    assert (current["displayName"], current["externalId"]) == (
        "Renamed",
        "external-2",
    )


def test_update_group_display_name(client):
    group = post_group(client)
    new_name = f"{uuid.uuid4()}updatedDisplayName"
    patch_group(
        client,
        group["id"],
        {"op": "Replace", "path": "displayName", "value": new_name},
    )
    assert read(client, f"/Groups/{group['id']}")["displayName"] == new_name
    assert filter_groups(client, f'displayName eq "{new_name}"')["totalResults"] == 1
    assert filter_groups(client, 'displayName eq "displayName"')["totalResults"] == 0


def test_add_group_member(client):
    user = post_user(client)
    group = post_group(client)
    patch_group(
        client,
        group["id"],
        {"op": "Add", "path": "members", "value": [{"value": user["id"]}]},
    )
    assert member_ids(read(client, f"/Groups/{group['id']}")) == [user["id"]]
    assert group_ids(read(client, f"/Users/{user['id']}")) == [group["id"]]


def test_remove_group_member(client):
    # Entra names each member it removes, with a null `$ref`.
    leaving = post_user(client)
    staying = post_user(client)
    group = post_group(client)
    patch_group(
        client,
        group["id"],
        {
            "op": "Add",
            "path": "members",
            "value": [{"value": leaving["id"]}, {"value": staying["id"]}],
        },
    )
    patch_group(
        client,
        group["id"],
        {
            "op": "Remove",
            "path": "members",
            "value": [{"$ref": None, "value": leaving["id"]}],
        },
    )
    assert member_ids(read(client, f"/Groups/{group['id']}")) == [staying["id"]]
    assert group_ids(read(client, f"/Users/{leaving['id']}")) == []
    assert group_ids(read(client, f"/Users/{staying['id']}")) == [group["id"]]


def test_delete_group(client):
    user = post_user(client)
    group = post_group(client)
    patch_group(
        client,
        group["id"],
        {"op": "Add", "path": "members", "value": [{"value": user["id"]}]},
    )
    reply = client.delete(f"/Groups/{group['id']}")
    assert reply.status == 204
    assert_error(client.get(f"/Groups/{group['id']}"), 404)
    assert group_ids(read(client, f"/Users/{user['id']}")) == []


# Preview scenarios


def test_patch_user_add_then_replace_of_the_work_email(client):
    # Operations apply in order, each on what the one before left.
    user = post_user(client)
    patch_user(
        client,
        user["id"],
        {"op": "Add", "path": WORK_EMAIL, "value": "first@example.com"},
        {"op": "Replace", "path": WORK_EMAIL, "value": "second@example.com"},
    )
    [email] = read(client, f"/Users/{user['id']}")["emails"]
    assert (email["type"], email["value"]) == ("work", "second@example.com")


def test_patch_user_add_replace_and_remove_of_the_work_email(client):
    user = post_user(client)
    patch_user(
        client,
        user["id"],
        {"op": "Add", "path": WORK_EMAIL, "value": "first@example.com"},
        {"op": "Replace", "path": WORK_EMAIL, "value": "second@example.com"},
        {"op": "Remove", "path": WORK_EMAIL},
    )
    emails = read(client, f"/Users/{user['id']}").get("emails", [])
    assert [email["value"] for email in emails if "value" in email] == []


def test_patch_user_multiple_replaces_of_the_same_attribute(client):
    user = post_user(client)
    patch_user(
        client,
        user["id"],
        {"op": "Replace", "path": "displayName", "value": "First"},
        {"op": "Replace", "path": "displayName", "value": "Second"},
    )
    assert read(client, f"/Users/{user['id']}")["displayName"] == "Second"


def test_delete_non_existing_user(client):
    reply = client.delete(f"/Users/{uuid.uuid4()}")
    assert_error(reply, 404)
    assert reply.json["detail"]


def test_delete_non_existing_group(client):
    reply = client.delete(f"/Groups/{uuid.uuid4()}")
    assert_error(reply, 404)
    assert reply.json["detail"]


def test_delete_user_twice(client):
    user = post_user(client)
    assert client.delete(f"/Users/{user['id']}").status == 204
    assert_error(client.delete(f"/Users/{user['id']}"), 404)


def test_delete_group_twice(client):
    group = post_group(client)
    assert client.delete(f"/Groups/{group['id']}").status == 204
    assert_error(client.delete(f"/Groups/{group['id']}"), 404)
