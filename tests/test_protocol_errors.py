"""Auth, routing, limits and discovery: every error a SCIM Error, never HTML."""

import pytest
from conftest import BASE
from conftest import SCIM_JSON
from conftest import ScimClient
from conftest import assert_error
from conftest import user_body

from shared import discovery

ALL_ROUTES = [
    ("GET", "/ServiceProviderConfig"),
    ("GET", "/Schemas"),
    ("GET", "/ResourceTypes"),
    ("GET", "/Users"),
    ("POST", "/Users"),
    ("GET", "/Users/some-id"),
    ("PUT", "/Users/some-id"),
    ("PATCH", "/Users/some-id"),
    ("DELETE", "/Users/some-id"),
    ("GET", "/Groups"),
    ("POST", "/Users/.search"),
    ("POST", "/.search"),
    ("POST", "/Bulk"),
    ("GET", "/Me"),
]


@pytest.mark.parametrize(("method", "path"), ALL_ROUTES)
def test_missing_token_is_401_with_www_authenticate(client, method, path):
    reply = client.request(method, path, body=b"{}", token=None)
    assert_error(reply, 401)
    assert reply.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.minimal
@pytest.mark.parametrize("authorization", ["Bearer wrong", "Basic dGVzdA==", "Bearer"])
def test_wrong_credentials_are_401(client, authorization):
    reply = client.get("/Users", token=None, headers={"Authorization": authorization})
    assert_error(reply, 401)
    assert "www-authenticate" in reply.headers


@pytest.mark.minimal
def test_token_prefix_is_not_enough(client):
    reply = client.get("/Users", token="test-tok")
    assert_error(reply, 401)


@pytest.mark.minimal
def test_nothing_is_written_without_the_token(client):
    client.post("/Users", user_body("bjensen"), token=None)
    assert client.get("/Users").json["totalResults"] == 0


@pytest.mark.parametrize(
    "path", ["/Nope", "/Users/a/b", "/ResourceTypes/Nope", "/Schemas/urn:nope"]
)
def test_unknown_route_is_404_scim_error(client, path):
    assert_error(client.get(path), 404)


def test_the_prefix_itself_is_a_scim_404(client):
    assert_error(client.get("/"), 404)


def test_unknown_route_outside_scim_is_the_hosts_own(client):
    """SCIM is a guest under its prefix: elsewhere, the host app answers."""
    reply = ScimClient(client.framework, client.app, prefix="").get("/elsewhere")
    assert reply.status == 404
    assert not reply.headers["content-type"].startswith(SCIM_JSON)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/ServiceProviderConfig"),
        ("DELETE", "/Schemas"),
        ("PUT", "/Users"),
        ("POST", "/Users/some-id"),
        ("GET", "/Bulk"),
        ("GET", "/.search"),
    ],
)
def test_wrong_method_is_405_scim_error(client, method, path):
    assert_error(client.request(method, path, body=b"{}"), 405)


def test_body_over_the_announced_maximum_is_413(client):
    size = discovery.MAX_PAYLOAD_SIZE + 1
    padding = "x" * size
    reply = client.post("/Users", user_body("bjensen", displayName=padding))
    assert_error(reply, 413)
    assert client.get("/Users").json["totalResults"] == 0


def test_body_just_under_the_maximum_is_accepted(client):
    padding = "x" * (discovery.MAX_PAYLOAD_SIZE - 200)
    reply = client.post("/Users", user_body("bjensen", displayName=padding))
    assert reply.status == 201


def test_me_is_501_not_implemented(client):
    assert_error(client.get("/Me"), 501)


def test_service_provider_config_announces_what_the_server_does(client):
    reply = client.get("/ServiceProviderConfig")
    assert reply.status == 200
    assert reply.headers["content-type"] == SCIM_JSON
    config = reply.json
    assert config["patch"] == {"supported": True}
    assert config["bulk"] == {
        "supported": True,
        "maxOperations": discovery.MAX_BULK_OPERATIONS,
        "maxPayloadSize": discovery.MAX_PAYLOAD_SIZE,
    }
    assert config["filter"] == {
        "supported": True,
        "maxResults": discovery.MAX_RESULTS,
    }
    assert config["sort"] == {"supported": True}
    assert config["etag"] == {"supported": True}
    assert config["changePassword"] == {"supported": True}
    [scheme] = config["authenticationSchemes"]
    assert scheme["type"] == "oauthbearertoken"
    assert config["meta"]["location"] == f"{BASE}/ServiceProviderConfig"


def test_schemas_list_user_both_extensions_and_group(client):
    body = client.get("/Schemas").json
    ids = {schema["id"] for schema in body["Resources"]}
    assert ids == {
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
        "urn:example:params:scim:schemas:extension:acme:2.0:User",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    }
    assert body["totalResults"] == 4


def test_one_schema_by_id(client):
    urn = "urn:ietf:params:scim:schemas:core:2.0:User"
    body = client.get(f"/Schemas/{urn}").json
    assert body["id"] == urn
    names = {attribute["name"] for attribute in body["attributes"]}
    assert {"userName", "emails", "groups", "password"} <= names
    assert body["meta"]["location"] == f"{BASE}/Schemas/{urn}"


def test_resource_types(client):
    body = client.get("/ResourceTypes").json
    by_name = {rt["name"]: rt for rt in body["Resources"]}
    assert by_name["User"]["endpoint"] == "/Users"
    assert by_name["User"]["schemaExtensions"] == [
        {
            "schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
            "required": False,
        },
        {
            "schema": "urn:example:params:scim:schemas:extension:acme:2.0:User",
            "required": False,
        },
    ]
    assert by_name["Group"]["endpoint"] == "/Groups"
    assert client.get("/ResourceTypes/Group").json["id"] == "Group"
