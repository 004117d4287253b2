"""The application's own extension schema (shared/extension.py), end to end.

Declared once, it must be announced by discovery, accepted and kept by every
write, refused when its values have the wrong type, and usable in filters and
sorts like a core attribute, on every framework and storage backend.
"""

import pytest
from conftest import ENTERPRISE
from conftest import SEARCH_SCHEMA
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import create_user
from conftest import patch_body
from conftest import user_body

# Spelled out rather than imported: clients have the URN in their configuration,
# so changing it is a breaking change this suite should notice.
ACME = "urn:example:params:scim:schemas:extension:acme:2.0:User"


def acme(**values):
    """A user body's extension part: {ACME: {...}}."""
    return {ACME: values}


# Discovery


@pytest.mark.minimal
def test_schemas_lists_the_extension(client):
    body = client.get("/Schemas").json
    by_id = {schema["id"]: schema for schema in body["Resources"]}
    assert ACME in by_id
    attributes = {a["name"]: a for a in by_id[ACME]["attributes"]}
    assert set(attributes) == {"badgeNumber", "clearanceLevel"}
    assert attributes["badgeNumber"]["type"] == "string"
    assert attributes["badgeNumber"]["caseExact"] is False
    assert attributes["clearanceLevel"]["type"] == "integer"
    for attribute in attributes.values():
        assert attribute["multiValued"] is False
        assert attribute["required"] is False
        assert attribute["mutability"] == "readWrite"


def test_the_extension_schema_by_its_urn(client):
    reply = client.get(f"/Schemas/{ACME}")
    assert reply.status == 200
    body = reply.json
    assert body["id"] == ACME
    assert body["name"] == "AcmeUser"
    assert [a["name"] for a in body["attributes"]] == ["badgeNumber", "clearanceLevel"]
    assert body["meta"] == {
        "resourceType": "Schema",
        "location": f"{client.base}/Schemas/{ACME}",
    }


@pytest.mark.minimal
def test_the_user_resource_type_lists_it_as_optional(client):
    [user_type] = [
        rt
        for rt in client.get("/ResourceTypes").json["Resources"]
        if rt["id"] == "User"
    ]
    assert user_type["schemaExtensions"] == [
        {"schema": ENTERPRISE, "required": False},
        {"schema": ACME, "required": False},
    ]


def test_the_user_resource_type_by_id_lists_it(client):
    body = client.get("/ResourceTypes/User").json
    assert {"schema": ACME, "required": False} in body["schemaExtensions"]


# Writes and reads


@pytest.mark.minimal
def test_post_stores_it_and_get_returns_it(client):
    reply = client.post(
        "/Users",
        user_body(
            "bjensen",
            schemas=[USER_SCHEMA, ACME],
            **acme(badgeNumber="B-1001", clearanceLevel=3),
        ),
    )
    assert reply.status == 201, reply.json
    created = reply.json
    assert created[ACME] == {"badgeNumber": "B-1001", "clearanceLevel": 3}
    assert set(created["schemas"]) == {USER_SCHEMA, ACME}
    assert client.get(f"/Users/{created['id']}").json == created


@pytest.mark.minimal
def test_a_user_without_it_does_not_announce_it(client):
    user = create_user(client, "bjensen")
    assert ACME not in user
    assert ACME not in user["schemas"]


@pytest.mark.minimal
def test_put_replaces_it_and_a_put_without_it_removes_it(client):
    user = create_user(client, "bjensen", **acme(badgeNumber="B-1001"))
    path = f"/Users/{user['id']}"

    reply = client.put(path, user_body("bjensen", **acme(clearanceLevel=4)))
    assert reply.status == 200, reply.json
    # PUT replaces the whole resource: the badge number not sent is gone.
    assert reply.json[ACME] == {"clearanceLevel": 4}
    assert client.get(path).json == reply.json

    reply = client.put(path, user_body("bjensen"))
    assert reply.status == 200, reply.json
    assert ACME not in reply.json
    assert ACME not in client.get(path).json


def test_patch_by_urn_path(client):
    user = create_user(client, "bjensen", **acme(badgeNumber="B-1001"))
    path = f"/Users/{user['id']}"

    reply = client.patch(
        path,
        patch_body(
            {"op": "replace", "path": f"{ACME}:badgeNumber", "value": "B-2002"},
            {"op": "add", "path": f"{ACME}:clearanceLevel", "value": 5},
        ),
    )
    assert reply.status == 200, reply.json
    assert reply.json[ACME] == {"badgeNumber": "B-2002", "clearanceLevel": 5}
    assert client.get(path).json == reply.json

    reply = client.patch(
        path, patch_body({"op": "remove", "path": f"{ACME}:badgeNumber"})
    )
    assert reply.status == 200, reply.json
    assert reply.json[ACME] == {"clearanceLevel": 5}
    assert client.get(path).json == reply.json


def test_patch_without_path_sets_it_on_a_user_that_had_none(client):
    user = create_user(client, "bjensen")
    reply = client.patch(
        f"/Users/{user['id']}",
        patch_body({"op": "add", "value": {ACME: {"badgeNumber": "B-3003"}}}),
    )
    assert reply.status == 200, reply.json
    assert reply.json[ACME] == {"badgeNumber": "B-3003"}
    assert ACME in reply.json["schemas"]
    assert client.get(f"/Users/{user['id']}").json == reply.json


def test_attributes_can_select_one_of_its_attributes(client):
    user = create_user(client, "bjensen", **acme(badgeNumber="B-1", clearanceLevel=2))
    reply = client.get(
        f"/Users/{user['id']}", params={"attributes": f"{ACME}:badgeNumber"}
    )
    assert reply.status == 200
    assert reply.json[ACME] == {"badgeNumber": "B-1"}
    assert "userName" not in reply.json


# What the schema does not allow


@pytest.mark.minimal
def test_a_wrong_type_in_post_is_400_and_creates_nothing(client):
    reply = client.post("/Users", user_body("bjensen", **acme(clearanceLevel="high")))
    assert_error(reply, 400, "invalidValue")
    assert client.get("/Users").json["totalResults"] == 0


@pytest.mark.minimal
def test_a_wrong_type_in_put_is_400_and_changes_nothing(client):
    user = create_user(client, "bjensen", **acme(clearanceLevel=2))
    path = f"/Users/{user['id']}"
    reply = client.put(path, user_body("bjensen", **acme(clearanceLevel="high")))
    assert_error(reply, 400, "invalidValue")
    assert client.get(path).json == user


def test_a_wrong_type_in_patch_is_400_and_changes_nothing(client):
    user = create_user(client, "bjensen", **acme(clearanceLevel=2))
    path = f"/Users/{user['id']}"
    reply = client.patch(
        path,
        patch_body(
            {"op": "replace", "path": f"{ACME}:clearanceLevel", "value": "high"}
        ),
    )
    assert_error(reply, 400, "invalidValue")
    assert client.get(path).json == user


@pytest.mark.minimal
def test_an_attribute_the_schema_does_not_declare_is_400(client):
    # The policy's `unknown` stays strict: a misspelt mapping shows at once.
    reply = client.post("/Users", user_body("bjensen", **acme(badgeNumbr="B-1")))
    assert_error(reply, 400, "invalidSyntax")
    assert client.get("/Users").json["totalResults"] == 0


# Filters and sorts


@pytest.fixture
def badges(client):
    """Four users. Clearance 10 sorts before 2 as text, after it as a number;
    "B-2002" sorts before "b-1001" case-sensitively, after it otherwise."""
    create_user(client, "bjensen", **acme(badgeNumber="b-1001", clearanceLevel=2))
    create_user(client, "jsmith", **acme(badgeNumber="B-2002", clearanceLevel=10))
    create_user(client, "achen", **acme(clearanceLevel=3))
    create_user(client, "zed")


def user_names(reply) -> list[str]:
    assert reply.status == 200, reply.json
    return [user["userName"] for user in reply.json.get("Resources", [])]


def get_users(client, **params) -> list[str]:
    return user_names(client.get("/Users", params=params))


def search_users(client, **body) -> list[str]:
    return user_names(
        client.post("/Users/.search", {"schemas": [SEARCH_SCHEMA], **body})
    )


FILTERS = [
    (f'{ACME}:badgeNumber eq "b-1001"', {"bjensen"}),
    # badgeNumber is caseExact false, as the schema says.
    (f'{ACME}:badgeNumber eq "B-1001"', {"bjensen"}),
    (f'{ACME}:badgeNumber eq "b-2002"', {"jsmith"}),
    (f'{ACME}:badgeNumber sw "b-"', {"bjensen", "jsmith"}),
    (f"{ACME}:badgeNumber pr", {"bjensen", "jsmith"}),
    (f"not ({ACME}:badgeNumber pr)", {"achen", "zed"}),
    (f"{ACME}:clearanceLevel pr", {"bjensen", "jsmith", "achen"}),
    (f"{ACME}:clearanceLevel eq 10", {"jsmith"}),
    # Numbers compare as numbers: 10 >= 3, where "10" < "3" as text.
    (f"{ACME}:clearanceLevel ge 3", {"jsmith", "achen"}),
    (f"{ACME}:clearanceLevel lt 3", {"bjensen"}),
    (f"{ACME}:clearanceLevel gt 2 and {ACME}:clearanceLevel lt 10", {"achen"}),
    (f'{ACME}:badgeNumber pr and userName eq "jsmith"', {"jsmith"}),
]


def test_filter_on_the_extension(client, badges):
    """Every filter of FILTERS, by GET and by .search, on one set of users."""
    expected = {filter_.replace(ACME, "acme"): names for filter_, names in FILTERS}
    by_get = {
        filter_.replace(ACME, "acme"): set(get_users(client, filter=filter_))
        for filter_, _ in FILTERS
    }
    by_search = {
        filter_.replace(ACME, "acme"): set(search_users(client, filter=filter_))
        for filter_, _ in FILTERS
    }
    assert by_get == expected
    assert by_search == expected


def test_sort_by_clearance_level_is_numeric(client, badges):
    sort_by = f"{ACME}:clearanceLevel"
    # Users without a value come last in ascending order (RFC 7644 §3.4.2.3).
    ascending = ["bjensen", "achen", "jsmith", "zed"]
    assert get_users(client, sortBy=sort_by) == ascending
    assert search_users(client, sortBy=sort_by) == ascending
    # And first in descending order.
    descending = ["zed", "jsmith", "achen", "bjensen"]
    assert get_users(client, sortBy=sort_by, sortOrder="descending") == descending
    assert search_users(client, sortBy=sort_by, sortOrder="descending") == descending


def test_sort_by_badge_number_ignores_case(client, badges):
    # caseExact false: "b-1001" before "B-2002" (RFC 7644 §3.4.2.3).
    sort_by = f"{ACME}:badgeNumber"
    names = get_users(client, sortBy=sort_by)
    assert names[:2] == ["bjensen", "jsmith"]
    assert set(names[2:]) == {"achen", "zed"}
    assert search_users(client, sortBy=sort_by)[:2] == ["bjensen", "jsmith"]


def test_filter_or_sort_on_an_undeclared_attribute_is_400(client, badges):
    reply = client.get("/Users", params={"filter": f'{ACME}:badge eq "b-1001"'})
    assert_error(reply, 400, "invalidFilter")
    reply = client.get("/Users", params={"sortBy": f"{ACME}:badge"})
    assert_error(reply, 400, "invalidPath")


def test_filter_sort_and_page_together(client, badges):
    body = {
        "filter": f"{ACME}:clearanceLevel pr",
        "sortBy": f"{ACME}:clearanceLevel",
        "sortOrder": "descending",
        "startIndex": 2,
        "count": 1,
    }
    assert search_users(client, **body) == ["achen"]
    assert get_users(client, **body) == ["achen"]
