"""Okta's "SCIM 2.0 Spec Test", replayed request by request, then Okta's lifecycle.

Okta publishes the spec test as a Runscope (BlazeMeter) suite that a SCIM 2.0
app submitted to Okta must pass. Its 12 requests, in order: list one user
(`count=1&startIndex=1`) and read it by id; look up a userName and an id that
do not exist, and a random userName; create a user, sent as
`Content-Type: application/json` (not scim+json); read it back; create it
again, expecting a 409; find it by its userName in capitals; list the groups;
expect SCIM Errors for a bad Authorization header (401) and an unknown id
(404). Its GETs carry the Accept and User-Agent headers below. The create body
is the richer one of Okta's SCIM 2.0 guide (locale, externalId, `groups: []`,
password). The last tests are what Okta sends once the app is live: a PUT of
the whole user it read, and a path-less PATCH to deactivate or reactivate.
"""

import uuid

import pytest
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import patch_body

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
OKTA_HEADERS = {
    "Accept": "application/scim+json",
    "Accept-Charset": "utf-8",
    "User-Agent": "OKTA SCIM Integration",
}
# What Okta's requests after the create (PUT, PATCH) declare their body as.
OKTA_CONTENT_TYPE = "application/scim+json; charset=utf-8"


def okta_user(user_name: str) -> dict:
    """The body Okta POSTs to create a user (its SCIM 2.0 guide's shape)."""
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Test", "familyName": "User"},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": "Test User",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def okta_get(client, path: str, **params: str):
    return client.get(path, params=params or None, headers=OKTA_HEADERS)


def okta_post(client, user_name: str):
    # Okta's create request is the one that says application/json.
    return client.post(
        "/Users",
        okta_user(user_name),
        headers=OKTA_HEADERS,
        content_type="application/json",
    )


def random_user_name() -> str:
    return f"{uuid.uuid4()}@example.com"


def find_by_user_name(client, user_name: str) -> dict:
    reply = okta_get(client, "/Users", filter=f'userName eq "{user_name}"')
    assert reply.status == 200, reply.json
    assert LIST_RESPONSE in reply.json["schemas"]
    return reply.json


@pytest.fixture
def existing_user(client) -> dict:
    """The user the spec test expects to find on the server before it starts."""
    reply = okta_post(client, random_user_name())
    assert reply.status == 201, reply.json
    return reply.json


# The spec test's 12 requests, in its order


def test_users_endpoint(client, existing_user):
    reply = okta_get(client, "/Users", count="1", startIndex="1")
    assert reply.status == 200, reply.json
    assert reply.headers["content-type"].startswith("application/scim+json")
    listing = reply.json
    assert LIST_RESPONSE in listing["schemas"]
    assert listing["totalResults"] == 1
    assert listing["itemsPerPage"] == 1
    assert listing["startIndex"] == 1
    [user] = listing["Resources"]
    assert user["id"] == existing_user["id"]
    assert user["name"] == {"givenName": "Test", "familyName": "User"}
    assert user["userName"] == existing_user["userName"]
    assert user["active"] is True
    assert user["emails"][0]["value"] == existing_user["userName"]


def test_users_endpoint_pages_one_user_at_a_time(client, existing_user):
    second = okta_post(client, random_user_name()).json
    first_page = okta_get(client, "/Users", count="1", startIndex="1").json
    second_page = okta_get(client, "/Users", count="1", startIndex="2").json
    assert first_page["totalResults"] == second_page["totalResults"] == 2
    assert second_page["startIndex"] == 2
    assert [user["id"] for user in first_page["Resources"]] == [existing_user["id"]]
    assert [user["id"] for user in second_page["Resources"]] == [second["id"]]


def test_get_user_by_id(client, existing_user):
    reply = okta_get(client, f"/Users/{existing_user['id']}")
    assert reply.status == 200, reply.json
    user = reply.json
    assert user["id"] == existing_user["id"]
    assert (user["name"]["givenName"], user["name"]["familyName"]) == ("Test", "User")
    assert user["userName"] == existing_user["userName"]
    assert user["active"] is True
    assert user["emails"][0]["value"] == existing_user["userName"]


def test_invalid_user_by_user_name(client, existing_user):
    assert find_by_user_name(client, random_user_name())["totalResults"] == 0


def test_invalid_user_by_id(client, existing_user):
    reply = okta_get(client, f"/Users/{uuid.uuid4()}")
    assert_error(reply, 404)
    assert reply.json["detail"]


def test_random_user_does_not_exist(client, existing_user):
    listing = find_by_user_name(client, random_user_name())
    assert listing["totalResults"] == 0
    assert listing.get("Resources", []) == []


def test_create_user_with_realistic_values(client):
    user_name = random_user_name()
    reply = okta_post(client, user_name)
    assert reply.status == 201, reply.json
    assert reply.headers["content-type"].startswith("application/scim+json")
    created = reply.json
    assert reply.headers["location"].endswith(f"/Users/{created['id']}")
    assert USER_SCHEMA in created["schemas"]
    assert created["userName"] == user_name
    assert created["name"] == {"givenName": "Test", "familyName": "User"}
    assert created["emails"] == [{"value": user_name, "type": "work", "primary": True}]
    assert (created["displayName"], created["locale"]) == ("Test User", "en-US")
    assert created["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert created["active"] is True
    assert "password" not in created
    assert "groups" not in created


def test_verify_that_user_was_created(client):
    user_name = random_user_name()
    created = okta_post(client, user_name).json
    reply = okta_get(client, f"/Users/{created['id']}")
    assert reply.status == 200, reply.json
    assert reply.json == created
    assert reply.json["userName"] == user_name


def test_recreating_user_with_same_values_fails(client):
    user_name = random_user_name()
    created = okta_post(client, user_name).json
    reply = okta_post(client, user_name)
    assert_error(reply, 409, "uniqueness")
    assert reply.json["detail"]
    assert find_by_user_name(client, user_name)["Resources"] == [
        okta_get(client, f"/Users/{created['id']}").json
    ]


def test_user_name_case_sensitivity_check(client):
    # Okta looks the user up with its userName in capitals.
    user_name = random_user_name()
    created = okta_post(client, user_name).json
    listing = find_by_user_name(client, user_name.upper())
    assert listing["totalResults"] == 1
    assert listing["Resources"][0]["id"] == created["id"]


def test_find_created_user_by_user_name(client):
    user_name = random_user_name()
    created = okta_post(client, user_name).json
    listing = find_by_user_name(client, user_name)
    assert listing["totalResults"] == 1
    assert [user["id"] for user in listing["Resources"]] == [created["id"]]


def test_groups_endpoint(client):
    # Optional in the spec test: a list, even when there are no groups.
    reply = okta_get(client, "/Groups")
    assert reply.status == 200, reply.json
    assert LIST_RESPONSE in reply.json["schemas"]
    assert reply.json["totalResults"] == 0


def test_check_status_401_with_a_wrong_bearer_token(client, existing_user):
    reply = client.get(
        "/Users",
        params={"filter": f'userName eq "{existing_user["userName"].upper()}"'},
        headers=OKTA_HEADERS,
        token="not-the-token",
    )
    assert_error(reply, 401)
    assert reply.json["detail"]
    assert reply.headers["www-authenticate"].lower().startswith("bearer")


def test_check_status_401_with_no_bearer_scheme(client, existing_user):
    # The spec test's own request: an Authorization header of "non-token".
    reply = client.get(
        "/Users",
        params={"filter": f'userName eq "{existing_user["userName"].upper()}"'},
        headers={**OKTA_HEADERS, "Authorization": "non-token"},
        token=None,
    )
    assert_error(reply, 401)
    assert reply.json["detail"]
    assert "www-authenticate" in reply.headers


def test_check_status_404(client, existing_user):
    reply = okta_get(client, "/Users/00919288221112222")
    assert_error(reply, 404)
    assert reply.json["detail"]


# Okta's lifecycle, once the app is live


def test_put_of_the_whole_user_read_changes_a_name(client, existing_user):
    # Okta PUTs back the user it read (id, meta, groups and all) plus the password.
    current = okta_get(client, f"/Users/{existing_user['id']}").json
    body = {
        **current,
        "name": {**current["name"], "givenName": "Another"},
        "groups": [],
        "password": "N3w-Passw0rd",
    }
    reply = client.put(
        f"/Users/{existing_user['id']}",
        body,
        headers=OKTA_HEADERS,
        content_type=OKTA_CONTENT_TYPE,
    )
    assert reply.status == 200, reply.json
    assert reply.json["name"] == {"givenName": "Another", "familyName": "User"}
    assert "password" not in reply.json
    after = okta_get(client, f"/Users/{existing_user['id']}").json
    assert after["name"]["givenName"] == "Another"
    assert after["meta"]["created"] == current["meta"]["created"]
    unchanged = ("id", "userName", "emails", "displayName", "locale", "externalId")
    assert {key: after[key] for key in unchanged} == {
        key: current[key] for key in unchanged
    }


def test_patch_deactivates_the_user(client, existing_user):
    # Okta deactivates (never deletes) with a path-less replace.
    reply = client.patch(
        f"/Users/{existing_user['id']}",
        patch_body({"op": "replace", "value": {"active": False}}),
        headers=OKTA_HEADERS,
        content_type=OKTA_CONTENT_TYPE,
    )
    assert reply.status == 200, reply.json
    assert reply.json["active"] is False
    assert okta_get(client, f"/Users/{existing_user['id']}").json["active"] is False
    [found] = find_by_user_name(client, existing_user["userName"])["Resources"]
    assert found["active"] is False


def test_patch_reactivates_the_user(client, existing_user):
    # Okta reactivates the same way, when the user is assigned to the app again.
    for active in (False, True):
        reply = client.patch(
            f"/Users/{existing_user['id']}",
            patch_body({"op": "replace", "value": {"active": active}}),
            headers=OKTA_HEADERS,
            content_type=OKTA_CONTENT_TYPE,
        )
        assert reply.status == 200, reply.json
    assert okta_get(client, f"/Users/{existing_user['id']}").json["active"] is True
