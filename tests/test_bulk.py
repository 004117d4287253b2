"""POST /Bulk (RFC 7644 §3.7): bulkId references, failOnErrors and the limits."""

import json

from conftest import BASE
from conftest import BULK_SCHEMA
from conftest import GROUP_SCHEMA
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import create_user

from shared import discovery


def bulk(*operations, **fields):
    return {"schemas": [BULK_SCHEMA], "Operations": list(operations), **fields}


def post_user(bulk_id, user_name):
    return {
        "method": "POST",
        "path": "/Users",
        "bulkId": bulk_id,
        "data": {"schemas": [USER_SCHEMA], "userName": user_name},
    }


def test_bulk_with_bulk_id_references(client):
    reply = client.post(
        "/Bulk",
        bulk(
            post_user("alice", "alice"),
            post_user("bob", "bob"),
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "admins",
                "data": {
                    "schemas": [GROUP_SCHEMA],
                    "displayName": "Admins",
                    "members": [{"value": "bulkId:alice"}, {"value": "bulkId:bob"}],
                },
            },
        ),
    )
    assert reply.status == 200
    body = reply.json
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:BulkResponse"]
    results = body["Operations"]
    assert [r["status"] for r in results] == ["201", "201", "201"]
    assert [r["bulkId"] for r in results] == ["alice", "bob", "admins"]
    group = client.get(results[2]["location"].removeprefix(BASE)).json
    user_ids = {r["location"].rsplit("/", 1)[1] for r in results[:2]}
    assert {member["value"] for member in group["members"]} == user_ids
    assert results[2]["version"] == group["meta"]["version"]


def test_bulk_put_patch_delete(client):
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    path = f"/Users/{alice['id']}"
    reply = client.post(
        "/Bulk",
        bulk(
            {
                "method": "PUT",
                "path": path,
                "data": {"schemas": [USER_SCHEMA], "userName": "alice", "title": "A"},
            },
            {
                "method": "PATCH",
                "path": path,
                "data": {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "nickName", "value": "Al"}],
                },
            },
            {"method": "DELETE", "path": f"/Users/{bob['id']}"},
        ),
    )
    results = reply.json["Operations"]
    assert [r["status"] for r in results] == ["200", "200", "204"]
    assert results[2]["location"] == f"{BASE}/Users/{bob['id']}"
    user = client.get(path).json
    assert (user["title"], user["nickName"]) == ("A", "Al")
    assert client.get(f"/Users/{bob['id']}").status == 404


def test_bulk_version_is_an_if_match(client):
    alice = create_user(client, "alice")
    reply = client.post(
        "/Bulk",
        bulk(
            {"method": "DELETE", "path": f"/Users/{alice['id']}", "version": 'W/"99"'}
        ),
    )
    [result] = reply.json["Operations"]
    assert result["status"] == "412"
    assert result["response"]["status"] == "412"
    assert client.get(f"/Users/{alice['id']}").status == 200


def test_each_operation_fails_alone(client):
    create_user(client, "taken")
    reply = client.post("/Bulk", bulk(post_user("a", "taken"), post_user("b", "free")))
    results = reply.json["Operations"]
    assert [r["status"] for r in results] == ["409", "201"]
    assert results[0]["response"]["scimType"] == "uniqueness"


def test_fail_on_errors_stops_processing(client):
    create_user(client, "taken")
    reply = client.post(
        "/Bulk",
        bulk(
            post_user("a", "taken"),
            post_user("b", "TAKEN"),
            post_user("c", "never-created"),
            failOnErrors=2,
        ),
    )
    assert [r["status"] for r in reply.json["Operations"]] == ["409", "409"]
    listed = client.get("/Users", params={"filter": 'userName eq "never-created"'})
    assert listed.json["totalResults"] == 0


def test_unknown_bulk_id_is_an_error_of_that_operation(client):
    reply = client.post(
        "/Bulk",
        bulk(
            {
                "method": "POST",
                "path": "/Groups",
                "bulkId": "g",
                "data": {
                    "schemas": [GROUP_SCHEMA],
                    "displayName": "G",
                    "members": [{"value": "bulkId:nobody"}],
                },
            }
        ),
    )
    [result] = reply.json["Operations"]
    assert result["status"] == "409"
    assert client.get("/Groups").json["totalResults"] == 0


def test_forward_bulk_id_references_wait_for_their_post(client):
    # RFC 7644 §3.7.1: the server MUST try to resolve a reference to a POST
    # that comes later in the request.
    group = {
        "method": "POST",
        "path": "/Groups",
        "bulkId": "admins",
        "data": {
            "schemas": [GROUP_SCHEMA],
            "displayName": "Admins",
            "members": [{"value": "bulkId:alice"}],
        },
    }
    title = {
        "method": "PATCH",
        "path": "/Users/bulkId:alice",
        "data": {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Lead"}],
        },
    }
    reply = client.post("/Bulk", bulk(group, title, post_user("alice", "alice")))
    results = reply.json["Operations"]
    assert [r["status"] for r in results] == ["201", "200", "201"]
    assert [r.get("bulkId") for r in results] == ["admins", None, "alice"]
    alice = client.get(results[2]["location"].removeprefix(BASE)).json
    admins = client.get(results[0]["location"].removeprefix(BASE)).json
    assert [member["value"] for member in admins["members"]] == [alice["id"]]
    assert alice["title"] == "Lead"


def test_circular_bulk_id_references_are_409(client):
    def group(bulk_id, member):
        return {
            "method": "POST",
            "path": "/Groups",
            "bulkId": bulk_id,
            "data": {
                "schemas": [GROUP_SCHEMA],
                "displayName": bulk_id,
                "members": [{"type": "Group", "value": f"bulkId:{member}"}],
            },
        }

    reply = client.post("/Bulk", bulk(group("a", "b"), group("b", "a")))
    assert [r["status"] for r in reply.json["Operations"]] == ["409", "409"]
    assert client.get("/Groups").json["totalResults"] == 0


def test_a_reference_to_a_post_that_failed_is_409(client):
    create_user(client, "alice")
    member = {
        "method": "POST",
        "path": "/Groups",
        "bulkId": "g",
        "data": {
            "schemas": [GROUP_SCHEMA],
            "displayName": "G",
            "members": [{"value": "bulkId:dup"}],
        },
    }
    reply = client.post("/Bulk", bulk(member, post_user("dup", "alice")))
    assert [r["status"] for r in reply.json["Operations"]] == ["409", "409"]
    assert client.get("/Groups").json["totalResults"] == 0


def test_bad_operations(client):
    reply = client.post(
        "/Bulk",
        bulk(
            {"method": "GET", "path": "/Users"},
            {"method": "POST", "path": "/Users", "data": {"userName": "no-bulk-id"}},
            {"method": "PUT", "path": "/Users", "data": {}},
            {"method": "POST", "path": "/Nope", "bulkId": "x", "data": {}},
        ),
    )
    statuses = [r["status"] for r in reply.json["Operations"]]
    assert statuses == ["400", "400", "400", "400"]
    # scim2-models reads each operation against the endpoints the provider serves.
    assert reply.json["Operations"][3]["response"]["scimType"] == "invalidPath"
    assert client.get("/Users").json["totalResults"] == 0


def test_too_many_operations_is_413(client, monkeypatch):
    operations = [
        post_user(f"u{i}", f"u{i}") for i in range(discovery.MAX_BULK_OPERATIONS + 1)
    ]
    assert_error(client.post("/Bulk", bulk(*operations)), 413)
    assert client.get("/Users").json["totalResults"] == 0


def test_payload_over_max_payload_size_is_413(client):
    padding = "x" * discovery.MAX_PAYLOAD_SIZE
    operation = post_user("a", "a")
    operation["data"]["displayName"] = padding
    assert_error(client.post("/Bulk", bulk(operation)), 413)


def test_malformed_bulk_requests(client):
    assert_error(client.post("/Bulk", body=b"{"), 400, "invalidSyntax")
    # scim2-models' BulkRequest: Operations is required and may not be empty,
    # and a schemas list must name the BulkRequest schema.
    assert_error(client.post("/Bulk", {"Operations": []}), 400, "invalidValue")
    assert_error(client.post("/Bulk", {"schemas": [BULK_SCHEMA]}), 400, "invalidValue")
    wrong = {"schemas": ["urn:example:wrong"], "Operations": [post_user("a", "a")]}
    assert_error(client.post("/Bulk", wrong), 400, "invalidSyntax")
    assert client.get("/Users").json["totalResults"] == 0
    reply = client.post("/Bulk", bulk(failOnErrors=0))
    assert_error(reply, 400, "invalidValue")
    assert json.loads(reply.body)["status"] == "400"


def test_keys_in_any_case(client):
    """Attribute names are case-insensitive (RFC 7643 §2.1), the envelope's too.

    Found by the fuzzer: "OPERATIONS" validated, then the data as sent was
    looked up under "Operations" and the request answered 500.
    """
    operation = {
        "METHOD": "POST",
        "Path": "/Users",
        "bulkid": "u1",
        "DATA": {"schemas": [USER_SCHEMA], "userName": "bjensen"},
    }
    reply = client.post("/Bulk", {"schemas": [BULK_SCHEMA], "OPERATIONS": [operation]})
    assert reply.status == 200, reply.body
    [result] = reply.json["Operations"]
    assert (result["status"], result["bulkId"]) == ("201", "u1")
    assert client.get("/Users").json["Resources"][0]["userName"] == "bjensen"


def test_a_key_given_twice_in_two_cases_is_400(client):
    twice = {**bulk(post_user("u1", "a")), "operations": [post_user("u2", "b")]}
    assert_error(client.post("/Bulk", twice), 400, "invalidSyntax")
    twice = bulk({**post_user("u1", "a"), "Data": {"userName": "b"}})
    assert_error(client.post("/Bulk", twice), 400, "invalidSyntax")
    assert client.get("/Users").json["totalResults"] == 0
