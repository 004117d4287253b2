"""Cursor paging (RFC 9865), on every framework and every storage backend.

Responses are read as a client would read them, with scim2-models'
`ListResponse`: `next_cursor`, `previous_cursor`, `total_results`.
"""

import time
from typing import Any

import pytest
from conftest import SEARCH_SCHEMA
from conftest import assert_error
from conftest import create_group
from conftest import create_user
from scim2_models import Context
from scim2_models import Group
from scim2_models import ListResponse
from scim2_models import ServiceProviderConfig

from shared import discovery
from shared.discovery import UserResource

USERS = ListResponse[UserResource]
EVERYTHING = ListResponse[UserResource | Group]


def listing(reply: Any, model: Any = USERS) -> Any:
    """The response as a client reads it: a ListResponse, validated."""
    assert reply.status == 200, reply.json
    return model.model_validate(reply.json, scim_ctx=Context.SEARCH_RESPONSE)


def names(page: Any) -> list[str]:
    return [
        getattr(resource, "user_name", None) or resource.display_name
        for resource in page.resources or []
    ]


def get_page(client: Any, cursor: str, count: int = 3, **params: str) -> Any:
    query = {"cursor": cursor, "count": str(count), "attributes": "userName"}
    return client.get("/Users", params={**query, **params})


def walk(client: Any, count: int = 3, between: Any = None, **params: str) -> list:
    """Every page of a forward walk, from the empty cursor to the last page."""
    pages = [listing(get_page(client, "", count, **params))]
    assert pages[0].previous_cursor is None  # RFC 9865 §2: not on the first page
    while pages[-1].next_cursor is not None:
        if between is not None:
            between(pages)
        pages.append(listing(get_page(client, pages[-1].next_cursor, count, **params)))
    return pages


@pytest.fixture
def seven(client):
    """Seven users, created in this order."""
    return [create_user(client, f"user{i}", title=f"t{i % 2}") for i in range(7)]


def test_a_walk_forward_then_back_meets_every_user_once(client, seven):
    pages = walk(client)
    assert [names(page) for page in pages] == [
        ["user0", "user1", "user2"],
        ["user3", "user4", "user5"],
        ["user6"],
    ]
    assert {(page.total_results, page.start_index) for page in pages} == {(7, None)}
    assert [page.items_per_page for page in pages] == [3, 3, 1]
    assert all(page.previous_cursor for page in pages[1:])

    back = [pages[-1]]
    while back[-1].previous_cursor is not None:
        back.append(listing(get_page(client, back[-1].previous_cursor)))
    assert [names(page) for page in back] == [names(page) for page in pages[::-1]]
    # Back at the first page: no way further back, the same way on.
    assert back[-1].next_cursor is not None


def test_a_walk_meets_every_survivor_once_while_users_come_and_go(client, seven):
    ids = {user["userName"]: user["id"] for user in seven}
    deleted, unmet, created = [], [], []

    def meanwhile(pages: list) -> None:
        """Between two pages, one user not met yet and one met already leave, and
        two newcomers arrive: at the end, past the walk, and they may be met."""
        met = {name for page in pages for name in names(page)}
        there = [name for name in ids if name not in deleted]
        ahead = [name for name in there if name not in met]
        behind = [name for name in there if name in met]
        for name, left_unmet in [(n, True) for n in ahead[-1:]] + [
            (n, False) for n in behind[:1]
        ]:
            assert client.delete(f"/Users/{ids[name]}").status == 204
            deleted.append(name)
            if left_unmet:
                unmet.append(name)
        for _ in range(2):
            created.append(create_user(client, f"new{len(created)}")["userName"])

    met = [name for page in walk(client, between=meanwhile) for name in names(page)]
    assert unmet and created  # the walk did run while users came and went
    assert len(met) == len(set(met))
    survivors = [name for name in ids if name not in unmet]
    assert [name for name in met if name in ids] == survivors


def test_count_is_the_page_size_for_the_whole_walk(client, seven):
    pages = walk(client, count=5)
    assert [len(names(page)) for page in pages] == [5, 2]
    # Without count, DEFAULT_PAGE_SIZE: one page here.
    first = listing(client.get("/Users", params={"cursor": ""}))
    assert (len(names(first)), first.next_cursor) == (7, None)
    # RFC 9865 §2.1: the count of the first page, all the way.
    reply = get_page(client, pages[0].next_cursor, count=4)
    assert_error(reply, 400, "invalidCount")


def test_count_zero_counts_without_a_cursor(client, seven):
    reply = get_page(client, "", count=0)
    # As with startIndex, count=0 leaves Resources out, which scim2-models
    # refuses in a response context: read it without one.
    page = USERS.model_validate(reply.json)
    assert (page.total_results, page.resources) == (7, None)
    assert (page.next_cursor, page.previous_cursor) == (None, None)


def test_a_filtered_walk_meets_the_matches_only(client, seven):
    pages = walk(client, count=2, filter='title eq "t1"')
    assert [names(page) for page in pages] == [["user1", "user3"], ["user5"]]
    assert {page.total_results for page in pages} == {3}
    # The cursor belongs to its filter (RFC 9865 §2: the same query each time).
    reply = get_page(client, pages[0].next_cursor, count=2, filter='title eq "t0"')
    assert_error(reply, 400, "invalidCursor")
    assert_error(get_page(client, pages[0].next_cursor, count=2), 400, "invalidCursor")


def tampered(cursor: str) -> str:
    """The cursor with its position one further: what a forger would try."""
    fields, signature = cursor.split(".")
    position = int(fields[16:], 16) + 1
    return f"{fields[:16]}{position:016x}.{signature}"


BAD_CURSORS = {
    "garbage": lambda cursor: "garbage",
    "tampered": tampered,
    "other-signature": lambda cursor: cursor[:-1] + ("0" if cursor[-1] != "0" else "1"),
    "upper-case": str.upper,
    "truncated": lambda cursor: cursor[:-2],
    "huge": lambda cursor: cursor * 200,
    "non-ascii": lambda cursor: "é" + cursor,
    "space": lambda cursor: cursor.replace(".", " "),
}


def test_a_cursor_that_is_not_ours_is_an_invalid_cursor(client, seven):
    cursor = listing(get_page(client, "")).next_cursor
    for name, spoil in BAD_CURSORS.items():
        reply = get_page(client, spoil(cursor))
        assert (name, reply.status) == (name, 400)
        assert_error(reply, 400, "invalidCursor")
    # A parameter given twice is read once, the framework's way: still no 500.
    repeated = client.get(f"/Users?cursor=garbage&cursor={cursor[:-1]}&count=3")
    assert_error(repeated, 400, "invalidCursor")


def test_a_cursor_belongs_to_its_endpoint(client, seven):
    create_group(client, "Admins")
    cursor = listing(get_page(client, "", count=1)).next_cursor
    assert_error(
        client.get("/Groups", params={"cursor": cursor, "count": "1"}),
        400,
        "invalidCursor",
    )
    body = {"schemas": [SEARCH_SCHEMA], "cursor": cursor, "count": 1}
    assert_error(client.post("/.search", body), 400, "invalidCursor")
    # /Users/.search pages the same query as GET /Users.
    assert client.post("/Users/.search", body).status == 200


def test_an_old_cursor_is_an_expired_cursor(client, seven, monkeypatch):
    cursor = listing(get_page(client, "")).next_cursor
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + discovery.CURSOR_TIMEOUT - 5)
    assert get_page(client, cursor).status == 200
    monkeypatch.setattr(time, "time", lambda: now + discovery.CURSOR_TIMEOUT + 5)
    assert_error(get_page(client, cursor), 400, "expiredCursor")
    # A forged cursor is invalid, however old.
    assert_error(get_page(client, tampered(cursor)), 400, "invalidCursor")


def test_sort_by_and_start_index_do_not_mix_with_a_cursor(client, seven):
    assert_error(get_page(client, "", sortBy="userName"), 400, "invalidValue")
    assert_error(get_page(client, "", startIndex="2"), 400, "invalidValue")


def test_an_empty_cursor_starts_a_walk_and_no_cursor_pages_by_index(client, seven):
    page = listing(client.get("/Users?cursor&count=2"))
    assert (names(page)[0], page.start_index, page.total_results) == ("user0", None, 7)
    assert page.next_cursor is not None
    indexed = listing(client.get("/Users", params={"startIndex": "2", "count": "2"}))
    assert (names(indexed), indexed.start_index) == (["user1", "user2"], 2)
    assert (indexed.next_cursor, indexed.previous_cursor) == (None, None)


def test_post_search_walks_with_the_cursor_in_the_body(client, seven):
    body = {"schemas": [SEARCH_SCHEMA], "filter": 'title eq "t0"', "count": 3}
    met, cursor = [], ""
    while cursor is not None:
        page = listing(client.post("/Users/.search", {**body, "cursor": cursor}))
        met += names(page)
        cursor = page.next_cursor
    assert met == ["user0", "user2", "user4", "user6"]


def test_the_root_search_walks_users_then_groups(client):
    users = [create_user(client, name) for name in ("ann", "bob", "cy")]
    create_group(client, "Admins", users[0]["id"])
    create_group(client, "Staff")
    body = {"schemas": [SEARCH_SCHEMA], "count": 2, "attributes": ["displayName"]}

    def page(cursor: str) -> Any:
        return listing(client.post("/.search", {**body, "cursor": cursor}), EVERYTHING)

    pages = [page("")]
    while pages[-1].next_cursor:
        pages.append(page(pages[-1].next_cursor))
    kinds = [
        ["Group" if isinstance(r, Group) else "User" for r in p.resources]
        for p in pages
    ]
    assert kinds == [["User", "User"], ["User", "Group"], ["Group"]]
    assert [r.display_name for r in pages[-1].resources] == ["Staff"]
    assert {p.total_results for p in pages} == {5}
    back = [pages[-1]]
    while back[-1].previous_cursor:
        back.append(page(back[-1].previous_cursor))
    assert [[r.id for r in p.resources] for p in back] == [
        [r.id for r in p.resources] for p in pages[::-1]
    ]


def test_the_service_provider_config_announces_cursors(client):
    reply = client.get("/ServiceProviderConfig")
    config = ServiceProviderConfig.model_validate(
        reply.json, scim_ctx=Context.RESOURCE_QUERY_RESPONSE
    )
    pagination = config.pagination
    assert (pagination.cursor, pagination.index) == (True, True)
    assert pagination.default_pagination_method == "index"
    assert pagination.default_page_size == discovery.DEFAULT_PAGE_SIZE
    assert pagination.max_page_size == discovery.MAX_RESULTS
    assert pagination.cursor_timeout == discovery.CURSOR_TIMEOUT
