"""ETags (RFC 7644 §3.14) and what many clients writing at once must not break."""

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ScimClient
from conftest import assert_error
from conftest import create_group
from conftest import create_user
from conftest import patch_body
from conftest import user_body

THREADS = 8


def in_parallel(app, framework, requests):
    """Run `requests` (callables taking a client) on THREADS threads at once."""

    def run(request):
        return request(ScimClient(framework, app))

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(run, requests))


def test_every_single_resource_response_has_an_etag(client):
    user = create_user(client, "bjensen")
    path = f"/Users/{user['id']}"
    replies = [
        client.get(path),
        client.put(path, user_body("bjensen", title="x")),
        client.patch(path, patch_body({"op": "add", "path": "nickName", "value": "B"})),
    ]
    for reply in replies:
        assert reply.headers["etag"] == reply.json["meta"]["version"]
    group = create_group(client, "Admins")
    assert client.get(f"/Groups/{group['id']}").headers["etag"].startswith('W/"')


def test_if_none_match_with_the_current_tag_is_304(client):
    user = create_user(client, "bjensen")
    etag = user["meta"]["version"]
    reply = client.get(f"/Users/{user['id']}", headers={"If-None-Match": etag})
    assert reply.status == 304
    assert reply.body == b""
    assert reply.headers["etag"] == etag
    assert "content-type" not in reply.headers


def test_if_none_match_with_an_old_tag_is_200(client):
    user = create_user(client, "bjensen")
    old = user["meta"]["version"]
    client.put(f"/Users/{user['id']}", user_body("bjensen", title="new"))
    reply = client.get(f"/Users/{user['id']}", headers={"If-None-Match": old})
    assert reply.status == 200
    assert reply.json["title"] == "new"


UPDATES = {
    "PUT": lambda client, path, headers: client.put(
        path, user_body("bjensen", title="x"), headers=headers
    ),
    "PATCH": lambda client, path, headers: client.patch(
        path, patch_body({"op": "add", "path": "title", "value": "x"}), headers=headers
    ),
    "DELETE": lambda client, path, headers: client.delete(path, headers=headers),
}


@pytest.mark.parametrize("method", UPDATES)
def test_stale_if_match_is_412_and_changes_nothing(client, method):
    user = create_user(client, "bjensen")
    path = f"/Users/{user['id']}"
    stale = user["meta"]["version"]
    client.patch(path, patch_body({"op": "add", "path": "nickName", "value": "B"}))
    current = client.get(path).json
    reply = UPDATES[method](client, path, {"If-Match": stale})
    assert_error(reply, 412)
    assert client.get(path).json == current


@pytest.mark.parametrize("method", UPDATES)
def test_current_if_match_succeeds(client, method):
    user = create_user(client, "bjensen")
    path = f"/Users/{user['id']}"
    reply = UPDATES[method](client, path, {"If-Match": user["meta"]["version"]})
    assert reply.status in (200, 204)


def test_if_match_star_and_lists(client):
    user = create_user(client, "bjensen")
    path = f"/Users/{user['id']}"
    patch = patch_body({"op": "add", "path": "title", "value": "x"})
    assert client.patch(path, patch, headers={"If-Match": "*"}).status == 200
    current = client.get(path).headers["etag"]
    listed = f'W/"nope", {current}'
    assert client.patch(path, patch, headers={"If-Match": listed}).status == 200


def test_one_winner_among_writers_holding_the_same_if_match(app, framework):
    client = ScimClient(framework, app)
    user = create_user(client, "bjensen")
    path = f"/Users/{user['id']}"
    etag = user["meta"]["version"]

    def write(index):
        operation = {"op": "replace", "path": "title", "value": f"writer {index}"}
        return lambda c: c.patch(
            path, patch_body(operation), headers={"If-Match": etag}
        )

    replies = in_parallel(app, framework, [write(index) for index in range(THREADS)])
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [200] + [412] * (THREADS - 1)
    [winner] = [reply for reply in replies if reply.status == 200]
    assert client.get(path).json["title"] == winner.json["title"]


def test_parallel_member_adds_all_survive(app, framework):
    client = ScimClient(framework, app)
    users = [create_user(client, f"user{index}") for index in range(THREADS * 2)]
    group = create_group(client, "Everyone")
    path = f"/Groups/{group['id']}"

    def add(user):
        operation = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        return lambda c: c.patch(path, patch_body(operation))

    replies = in_parallel(app, framework, [add(user) for user in users])
    assert {reply.status for reply in replies} == {204}
    members = {member["value"] for member in client.get(path).json["members"]}
    assert members == {user["id"] for user in users}


def test_parallel_creates_of_one_user_name_give_one_201(app, framework):
    def create(index):
        return lambda c: c.post(
            "/Users", user_body("BJensen" if index % 2 else "bjensen")
        )

    replies = in_parallel(app, framework, [create(index) for index in range(THREADS)])
    statuses = sorted(reply.status for reply in replies)
    assert statuses == [201] + [409] * (THREADS - 1)
    for reply in replies:
        if reply.status == 409:
            assert reply.json["scimType"] == "uniqueness"
    assert ScimClient(framework, app).get("/Users").json["totalResults"] == 1


def test_parallel_deletes_and_member_adds_never_500(app, framework):
    client = ScimClient(framework, app)
    users = [create_user(client, f"user{index}") for index in range(THREADS)]
    group = create_group(client, "Everyone")
    path = f"/Groups/{group['id']}"

    def add(user):
        operation = {"op": "add", "path": "members", "value": [{"value": user["id"]}]}
        return lambda c: c.patch(path, patch_body(operation))

    def delete(user):
        return lambda c: c.delete(f"/Users/{user['id']}")

    requests = [add(user) for user in users] + [delete(user) for user in users]
    replies = in_parallel(app, framework, requests)
    assert all(reply.status < 500 for reply in replies)
    # Whatever the interleaving, no group keeps a deleted user.
    assert "members" not in client.get(path).json
