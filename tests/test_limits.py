"""Resource exhaustion is a SCIM 400 that names the limit, and changes nothing."""

import json

import pytest
from conftest import BULK_SCHEMA
from conftest import SEARCH_SCHEMA
from conftest import USER_SCHEMA
from conftest import assert_error
from conftest import create_group
from conftest import create_user
from conftest import patch_body
from conftest import user_body
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from scim2_models import InvalidSyntaxException

from shared import discovery
from shared import limits


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def wide_filter(terms: int) -> str:
    return " or ".join(f'userName eq "user{number}"' for number in range(terms))


def test_a_hundred_thousand_nested_arrays_in_bulk_are_a_400(client):
    # The hostile-input run found this one: a RecursionError, then a 500.
    body = f'{{"schemas": ["{BULK_SCHEMA}"], "Operations": {nested(100_000)}}}'
    reply = client.post("/Bulk", body=body.encode())
    assert_error(reply, 400, "invalidSyntax")
    assert str(discovery.MAX_JSON_DEPTH) in reply.json["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/Users"), ("PUT", "/Users/{id}"), ("PATCH", "/Users/{id}")],
)
def test_deep_json_is_refused_before_anything_is_written(client, method, path):
    user = create_user(client, "bjensen")
    before = client.get("/Users").json
    body = user_body("tlee", title=json.loads(nested(discovery.MAX_JSON_DEPTH)))
    reply = client.request(method, path.format(id=user["id"]), body)
    assert_error(reply, 400, "invalidSyntax")
    assert client.get("/Users").json == before


def test_json_at_the_depth_limit_is_parsed():
    body = nested(discovery.MAX_JSON_DEPTH).encode()
    assert limits.read_json(body) is not None
    with pytest.raises(InvalidSyntaxException):
        limits.read_json(nested(discovery.MAX_JSON_DEPTH + 1).encode())


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}',  # brackets in a string
        b'{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\""}',  # escaped quotes
    ],
)
def test_brackets_inside_strings_do_not_count(body):
    assert isinstance(limits.read_json(body), dict)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    return 0


# Text with what could fool a count that does not parse: brackets, quotes,
# backslashes, and escapes of each.
TRICKY_TEXT = st.text(st.sampled_from('[]{}"\\/\\n\u00e9\u2028\x00ab'), max_size=8)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TRICKY_TEXT,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, st.integers(0, discovery.MAX_JSON_DEPTH + 3), st.booleans())
def test_the_depth_counted_is_the_depth_parsed(value, wrappers, ascii_only):
    for level in range(wrappers):  # around the limit, in arrays and objects
        value = [value] if level % 2 else {'[\\"': value}
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    if depth(value) <= discovery.MAX_JSON_DEPTH:
        assert limits.read_json(body) == value
    else:
        with pytest.raises(InvalidSyntaxException):
            limits.read_json(body)


@pytest.mark.parametrize("body", [b"[}", b'{"a": [}', b'"unterminated', b"\xff\xfe"])
def test_malformed_bodies_are_invalid_syntax(body):
    with pytest.raises(InvalidSyntaxException):
        limits.read_json(body)


@pytest.mark.parametrize("endpoint", ["/Users", "/Groups"])
def test_wide_filters_are_invalid_filter_on_get(client, endpoint):
    # Thousands of `or` terms used to be a 500 on SQLite and PostgreSQL
    # ("Expression tree is too large").
    reply = client.get(endpoint, params={"filter": wide_filter(1500)})
    assert_error(reply, 400, "invalidFilter")
    # 1,500 terms are also longer than the length limit, checked first.
    assert str(discovery.MAX_FILTER_LENGTH) in reply.json["detail"]
    terms = discovery.MAX_FILTER_TERMS + 1
    reply = client.get(endpoint, params={"filter": wide_filter(terms)})
    assert_error(reply, 400, "invalidFilter")


@pytest.mark.parametrize("endpoint", ["/Users/.search", "/.search"])
def test_filters_over_the_term_limit_are_invalid_filter_on_search(client, endpoint):
    terms = discovery.MAX_FILTER_TERMS + 1
    text = " or ".join(f'id eq "{number}"' for number in range(terms))
    assert len(text) <= discovery.MAX_FILTER_LENGTH
    reply = client.post(endpoint, {"schemas": [SEARCH_SCHEMA], "filter": text})
    assert_error(reply, 400, "invalidFilter")
    assert f"{terms} terms" in reply.json["detail"]
    assert str(discovery.MAX_FILTER_TERMS) in reply.json["detail"]


def test_a_filter_at_the_term_limit_is_answered_on_every_backend(client):
    for number in (0, 7, discovery.MAX_FILTER_TERMS - 1):
        create_user(client, f"user{number}")
    create_user(client, "someone-else")
    text = " or ".join(
        f'userName eq "USER{number}"' for number in range(discovery.MAX_FILTER_TERMS)
    )
    assert len(text) <= discovery.MAX_FILTER_LENGTH
    reply = client.post("/.search", {"schemas": [SEARCH_SCHEMA], "filter": text})
    assert reply.status == 200, reply.json
    found = sorted(user["userName"] for user in reply.json["Resources"])
    assert found == ["user0", "user7", f"user{discovery.MAX_FILTER_TERMS - 1}"]


def test_patch_paths_get_the_filter_limits(client):
    alice = create_user(client, "alice")
    group = create_group(client, "Admins", alice["id"])
    terms = discovery.MAX_FILTER_TERMS + 1
    selection = " or ".join(f'value eq "{number}"' for number in range(terms))
    reply = client.patch(
        f"/Groups/{group['id']}",
        patch_body({"op": "remove", "path": f"members[{selection}]"}),
    )
    assert_error(reply, 400, "invalidPath")
    long_path = f'members[value eq "{"x" * discovery.MAX_FILTER_LENGTH}"]'
    reply = client.patch(
        f"/Groups/{group['id']}", patch_body({"op": "remove", "path": long_path})
    )
    assert_error(reply, 400, "invalidPath")
    after = client.get(f"/Groups/{group['id']}").json
    assert [member["value"] for member in after["members"]] == [alice["id"]]
    assert after["meta"]["version"] == group["meta"]["version"]


@pytest.mark.parametrize(
    "user_name",
    [b'"\\ud800"', b'"\xed\xa0\x80"', b'"a\\udfffb"'],
    ids=["escaped", "raw-bytes", "low-surrogate"],
)
def test_lone_surrogates_are_not_text(client, user_name):
    # JSON can spell them, Unicode has no such character: SQLite and
    # PostgreSQL cannot store one, so every backend refuses it the same way.
    body = (
        b'{"schemas": ["'
        + USER_SCHEMA.encode()
        + b'"], "userName": '
        + user_name
        + b"}"
    )
    assert_error(client.post("/Users", body=body), 400, "invalidSyntax")
    assert client.get("/Users").json["totalResults"] == 0


def test_a_surrogate_pair_is_one_character(client):
    body = f'{{"schemas": ["{USER_SCHEMA}"], "userName": "\\ud83d\\ude00"}}'
    reply = client.post("/Users", body=body.encode())
    assert reply.status == 201, reply.json
    assert reply.json["userName"] == "\U0001f600"


def test_a_filter_on_a_lone_surrogate_is_invalid(client):
    reply = client.get("/Users", params={"filter": 'userName eq "\\ud800"'})
    assert_error(reply, 400, "invalidFilter")


def test_a_start_index_beyond_any_integer_column_is_past_the_end(client):
    # 2**64 overflowed SQLite's OFFSET: a 500 found by the hostile-input run.
    create_user(client, "bjensen")
    reply = client.get("/Users", params={"startIndex": str(10**20)})
    assert reply.status == 200, reply.json
    assert (reply.json["totalResults"], reply.json["itemsPerPage"]) == (1, 0)
    search = {"schemas": [SEARCH_SCHEMA], "startIndex": 10**20, "filter": "userName pr"}
    reply = client.post("/Users/.search", search)
    assert reply.status == 200, reply.json
    assert reply.json["itemsPerPage"] == 0


def test_a_bulk_version_that_is_not_an_etag_is_that_operations_400(client):
    user = create_user(client, "bjensen")
    operation = {"method": "DELETE", "path": f"/Users/{user['id']}", "version": 1}
    reply = client.post("/Bulk", {"schemas": [BULK_SCHEMA], "Operations": [operation]})
    [result] = reply.json["Operations"]
    assert result["status"] == "400"
    assert client.get(f"/Users/{user['id']}").status == 200
