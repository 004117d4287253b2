"""Users: create, read, list, replace, delete (RFC 7644 §3.3-§3.6), in every app."""

import pytest
from conftest import ENTERPRISE
from conftest import SCIM_JSON
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import create_user
from conftest import password_matches
from conftest import user_body


@pytest.mark.minimal
def test_create_user_answers_201_with_location_and_etag(client):
    reply = client.post(
        "/Users",
        user_body(
            "bjensen",
            name={"givenName": "Barbara", "familyName": "Jensen"},
            emails=[{"value": "bjensen@example.com", "type": "work", "primary": True}],
            phoneNumbers=[{"value": "+1 555 0100", "type": "work"}],
            active=True,
            title="Engineer",
            externalId="ext-1",
            password="s3cret-Passw0rd",
            **{ENTERPRISE: {"department": "R&D", "employeeNumber": "42"}},
        ),
    )
    assert reply.status == 201
    assert reply.headers["content-type"] == SCIM_JSON
    body = reply.json
    assert body["userName"] == "bjensen"
    assert body["name"] == {"givenName": "Barbara", "familyName": "Jensen"}
    assert body["emails"][0]["value"] == "bjensen@example.com"
    assert body["phoneNumbers"] == [{"value": "+1 555 0100", "type": "work"}]
    assert body["title"] == "Engineer"
    assert body["externalId"] == "ext-1"
    assert body[ENTERPRISE] == {"department": "R&D", "employeeNumber": "42"}
    assert "password" not in body
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["location"] == f"{client.base}/Users/{body['id']}"
    assert reply.headers["location"] == body["meta"]["location"]
    assert reply.headers["etag"] == body["meta"]["version"]
    assert reply.headers["etag"].startswith('W/"')
    assert set(body["schemas"]) == {USER_SCHEMA, ENTERPRISE}


@pytest.mark.minimal
def test_password_is_never_returned(client):
    user = create_user(client, "bjensen", password="s3cret-Passw0rd")
    assert "password" not in client.get(f"/Users/{user['id']}").json
    listed = client.get("/Users", params={"attributes": "password,userName"}).json
    assert "password" not in listed["Resources"][0]


def test_plain_json_content_type_is_accepted(client):
    reply = client.post("/Users", user_body("bjensen"), content_type="application/json")
    assert reply.status == 201


def test_other_content_types_are_refused(client):
    reply = client.post("/Users", user_body("bjensen"), content_type="text/plain")
    assert_error(reply, 400, "invalidSyntax")
    assert client.get("/Users").json["totalResults"] == 0


@pytest.mark.minimal
def test_get_user_returns_the_created_user(client):
    user = create_user(client, "bjensen", displayName="Babs")
    reply = client.get(f"/Users/{user['id']}")
    assert reply.status == 200
    assert reply.headers["content-type"] == SCIM_JSON
    assert reply.headers["etag"] == user["meta"]["version"]
    assert reply.json == user


@pytest.mark.minimal
def test_unknown_user_is_404(client):
    assert_error(client.get("/Users/does-not-exist"), 404)
    assert_error(client.put("/Users/does-not-exist", user_body("x")), 404)
    assert_error(client.delete("/Users/does-not-exist"), 404)


@pytest.mark.minimal
def test_duplicate_user_name_in_any_case_is_409_uniqueness(client):
    create_user(client, "bjensen")
    for user_name in ("bjensen", "BJensen", "BJENSEN"):
        assert_error(client.post("/Users", user_body(user_name)), 409, "uniqueness")
    assert client.get("/Users").json["totalResults"] == 1


@pytest.mark.minimal
def test_renaming_onto_a_taken_user_name_is_409(client):
    create_user(client, "bjensen")
    other = create_user(client, "jsmith")
    reply = client.put(f"/Users/{other['id']}", user_body("BJensen"))
    assert_error(reply, 409, "uniqueness")
    assert client.get(f"/Users/{other['id']}").json["userName"] == "jsmith"


@pytest.mark.minimal
def test_changing_only_the_case_of_ones_own_user_name_is_allowed(client):
    user = create_user(client, "bjensen")
    reply = client.put(f"/Users/{user['id']}", user_body("BJensen"))
    assert reply.status == 200
    assert reply.json["userName"] == "BJensen"


@pytest.mark.minimal
def test_malformed_json_is_400_invalid_syntax(client):
    assert_error(client.post("/Users", body=b'{"userName": '), 400, "invalidSyntax")
    assert_error(client.post("/Users", body=b""), 400, "invalidSyntax")


@pytest.mark.minimal
def test_invalid_payload_is_400_invalid_value(client):
    assert_error(client.post("/Users", {"schemas": [USER_SCHEMA]}), 400, "invalidValue")
    reply = client.post("/Users", user_body("bjensen", emails=[{"value": "not-email"}]))
    assert_error(reply, 400, "invalidValue")
    reply = client.post("/Users", user_body("bjensen", active="maybe"))
    assert_error(reply, 400, "invalidValue")
    assert client.get("/Users").json["totalResults"] == 0


@pytest.mark.minimal
def test_a_client_cannot_choose_the_id(client):
    reply = client.post("/Users", user_body("bjensen", id="chosen-by-client"))
    assert reply.status == 201
    assert reply.json["id"] != "chosen-by-client"


@pytest.mark.minimal
def test_list_users_is_a_list_response(client):
    for user_name in ("a", "b", "c"):
        create_user(client, user_name)
    reply = client.get("/Users")
    assert reply.status == 200
    body = reply.json
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert body["totalResults"] == 3
    assert body["startIndex"] == 1
    assert body["itemsPerPage"] == 3
    assert [user["userName"] for user in body["Resources"]] == ["a", "b", "c"]


@pytest.mark.minimal
def test_empty_list_has_total_zero_and_no_resources(client):
    body = client.get("/Users").json
    assert body["totalResults"] == 0
    assert body.get("Resources", []) == []


@pytest.mark.minimal
def test_put_replaces_and_clears_what_is_left_out(client):
    user = create_user(
        client, "bjensen", displayName="Babs", title="Engineer", nickName="B"
    )
    reply = client.put(f"/Users/{user['id']}", user_body("bjensen", title="Manager"))
    assert reply.status == 200
    body = reply.json
    assert body["title"] == "Manager"
    assert "displayName" not in body
    assert "nickName" not in body
    assert body["id"] == user["id"]
    assert body["meta"]["created"] == user["meta"]["created"]
    assert reply.headers["etag"] != user["meta"]["version"]
    assert client.get(f"/Users/{user['id']}").json == body


@pytest.mark.minimal
def test_put_never_creates(client):
    assert_error(client.put("/Users/new-id", user_body("bjensen")), 404)
    assert client.get("/Users").json["totalResults"] == 0


@pytest.mark.minimal
def test_put_keeps_the_password_when_left_out(client):
    from shared import storage

    user = create_user(client, "bjensen", password="first-Passw0rd")
    client.put(f"/Users/{user['id']}", user_body("bjensen", title="x"))
    record = storage.get_record(storage.USER, user["id"])
    assert password_matches("first-Passw0rd", record["password_hash"])


@pytest.mark.minimal
def test_delete_answers_204_then_the_user_is_gone(client):
    user = create_user(client, "bjensen")
    reply = client.delete(f"/Users/{user['id']}")
    assert reply.status == 204
    assert reply.body == b""
    assert "content-type" not in reply.headers
    assert_error(client.get(f"/Users/{user['id']}"), 404)
    # The userName is free again.
    assert client.post("/Users", user_body("bjensen")).status == 201
