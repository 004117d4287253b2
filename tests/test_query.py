"""Filter, sort, page and project (RFC 7644 §3.4.2, §3.4.3, §3.9)."""

import pytest
from conftest import ENTERPRISE
from conftest import SEARCH_SCHEMA
from conftest import assert_error
from conftest import create_group
from conftest import create_user

from shared import discovery


@pytest.fixture
def people(client):
    """Four users and two groups, created in this order."""
    users = [
        create_user(
            client,
            "bjensen",
            displayName="Barbara Jensen",
            title="Engineer",
            active=True,
            emails=[{"value": "bjensen@example.com", "type": "work"}],
            **{ENTERPRISE: {"department": "R&D", "employeeNumber": "7"}},
        ),
        create_user(
            client,
            "jsmith",
            displayName="John Smith",
            title="Manager",
            active=False,
            emails=[{"value": "jsmith@corp.example.org", "type": "home"}],
        ),
        create_user(
            client,
            "achen",
            displayName="Alice Chen",
            active=True,
            emails=[{"value": "achen@example.com", "type": "work"}],
            **{ENTERPRISE: {"department": "Sales"}},
        ),
        create_user(client, "zed", active=True),
    ]
    create_group(client, "Admins", users[0]["id"])
    create_group(client, "Everyone", *(user["id"] for user in users))
    return users


def user_names(reply) -> list[str]:
    assert reply.status == 200, reply.json
    return [user["userName"] for user in reply.json.get("Resources", [])]


def search(client, filter_):
    return user_names(client.get("/Users", params={"filter": filter_}))


FILTERS = [
    ('userName eq "bjensen"', ["bjensen"]),
    ('userName eq "BJENSEN"', ["bjensen"]),  # caseExact false
    ('userName ne "bjensen"', ["jsmith", "achen", "zed"]),
    ('userName co "e"', ["bjensen", "achen", "zed"]),
    ('userName sw "J"', ["jsmith"]),
    ('userName ew "en"', ["bjensen", "achen"]),
    ('displayName gt "John"', ["jsmith"]),
    ('displayName ge "John Smith"', ["jsmith"]),
    ('displayName lt "Alice D"', ["achen"]),
    ('displayName le "Alice Chen"', ["achen"]),
    ("title pr", ["bjensen", "jsmith"]),
    ("not (title pr)", ["achen", "zed"]),
    ("active eq false", ["jsmith"]),
    ('title eq "Engineer" or title eq "Manager"', ["bjensen", "jsmith"]),
    ('active eq true and emails.type eq "work"', ["bjensen", "achen"]),
    ('(title pr or userName eq "zed") and active eq true', ["bjensen", "zed"]),
    ('emails[type eq "work" and value ew "example.com"]', ["bjensen", "achen"]),
    ('emails.value co "corp"', ["jsmith"]),
    (f'{ENTERPRISE}:department eq "Sales"', ["achen"]),
    (f"{ENTERPRISE}:employeeNumber pr", ["bjensen"]),
    ('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "zed"', ["zed"]),
    ('meta.resourceType eq "User"', ["bjensen", "jsmith", "achen", "zed"]),
]


def test_filters(client, people):
    """Each filter of FILTERS over HTTP, on one set of people.

    One test for all of them: creating the people is most of the cost, and a
    failure lists every filter that went wrong. The storage contract suite
    (test_storage_contract.py) asks some 300 more of every backend.
    """
    answers = {filter_: search(client, filter_) for filter_, _ in FILTERS}
    assert answers == dict(FILTERS)


def test_filter_on_meta_dates(client, people):
    created = people[2]["meta"]["created"]
    assert search(client, f'meta.created ge "{created}"') == ["achen", "zed"]
    assert search(client, f'meta.created lt "{created}"') == ["bjensen", "jsmith"]
    client.patch(
        f"/Users/{people[0]['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": "Lead"}],
        },
    )
    modified = client.get(f"/Users/{people[0]['id']}").json["meta"]["lastModified"]
    assert search(client, f'meta.lastModified ge "{modified}"') == ["bjensen"]


def test_filter_on_groups(client, people):
    reply = client.get("/Groups", params={"filter": 'displayName eq "admins"'})
    assert [g["displayName"] for g in reply.json["Resources"]] == ["Admins"]
    member = people[1]["id"]
    reply = client.get("/Groups", params={"filter": f'members.value eq "{member}"'})
    assert [g["displayName"] for g in reply.json["Resources"]] == ["Everyone"]


def test_filter_on_user_groups(client, people):
    admins = client.get("/Groups", params={"filter": 'displayName eq "Admins"'})
    admins_id = admins.json["Resources"][0]["id"]
    assert search(client, f'groups.value eq "{admins_id}"') == ["bjensen"]


@pytest.mark.parametrize(
    "filter_",
    [
        "userName eq",
        'userName zz "x"',
        "nope eq 1",
        '(userName eq "x"',
        'active eq "x"',
    ],
)
def test_bad_filter_is_400_invalid_filter(client, people, filter_):
    assert_error(client.get("/Users", params={"filter": filter_}), 400, "invalidFilter")


def test_sort_ascending_and_descending(client, people):
    reply = client.get("/Users", params={"sortBy": "userName"})
    assert user_names(reply) == ["achen", "bjensen", "jsmith", "zed"]
    reply = client.get(
        "/Users", params={"sortBy": "userName", "sortOrder": "descending"}
    )
    assert user_names(reply) == ["zed", "jsmith", "bjensen", "achen"]


def test_sort_puts_missing_values_last_ascending(client, people):
    reply = client.get("/Users", params={"sortBy": "title"})
    assert user_names(reply)[:2] == ["bjensen", "jsmith"]
    assert set(user_names(reply)[2:]) == {"achen", "zed"}


def test_sort_by_unknown_attribute_is_400(client, people):
    reply = client.get("/Users", params={"sortBy": "nope"})
    assert_error(reply, 400, "invalidPath")


def test_sorted_pages_are_disjoint_and_complete(client):
    for index in range(23):
        create_user(client, f"user{index:02d}", title=["a", "b", "c"][index % 3])
    seen = []
    for start in range(1, 24, 5):
        reply = client.get(
            "/Users", params={"sortBy": "title", "startIndex": start, "count": 5}
        )
        assert reply.json["totalResults"] == 23
        assert reply.json["startIndex"] == start
        seen += user_names(reply)
    assert len(seen) == 23
    assert len(set(seen)) == 23


def test_paging(client, people):
    reply = client.get("/Users", params={"startIndex": 2, "count": 2})
    body = reply.json
    assert (body["totalResults"], body["startIndex"], body["itemsPerPage"]) == (4, 2, 2)
    assert user_names(reply) == ["jsmith", "achen"]


@pytest.mark.parametrize("start", ["0", "-5"])
def test_start_index_below_one_counts_as_one(client, people, start):
    reply = client.get("/Users", params={"startIndex": start, "count": 1})
    assert reply.json["startIndex"] == 1
    assert user_names(reply) == ["bjensen"]


@pytest.mark.parametrize("count", ["0", "-3"])
def test_count_zero_or_negative_returns_only_total(client, people, count):
    body = client.get("/Users", params={"count": count}).json
    assert body["totalResults"] == 4
    assert body["itemsPerPage"] == 0
    assert "Resources" not in body


def test_start_index_past_the_end(client, people):
    body = client.get("/Users", params={"startIndex": 10}).json
    assert body["totalResults"] == 4
    assert "Resources" not in body


def test_non_numeric_paging_is_400(client, people):
    assert_error(client.get("/Users", params={"count": "ten"}), 400, "invalidValue")


@pytest.mark.minimal
def test_count_is_capped_at_max_results(client, monkeypatch):
    monkeypatch.setattr(discovery, "MAX_RESULTS", 3)
    for index in range(5):
        create_user(client, f"user{index}")
    body = client.get("/Users", params={"count": 1000}).json
    assert (body["totalResults"], body["itemsPerPage"]) == (5, 3)
    body = client.get("/Users", params={"count": 1000, "sortBy": "userName"}).json
    assert (body["totalResults"], body["itemsPerPage"]) == (5, 3)


@pytest.mark.minimal
def test_default_page_size(client, monkeypatch):
    monkeypatch.setattr(discovery, "DEFAULT_PAGE_SIZE", 2)
    for index in range(3):
        create_user(client, f"user{index}")
    body = client.get("/Users").json
    assert (body["totalResults"], body["itemsPerPage"]) == (3, 2)


def test_attributes_keeps_id_and_schemas(client, people):
    reply = client.get(f"/Users/{people[0]['id']}", params={"attributes": "userName"})
    assert reply.json == {
        "schemas": reply.json["schemas"],
        "id": people[0]["id"],
        "userName": "bjensen",
    }
    reply = client.get("/Users", params={"attributes": "displayName,emails.value"})
    first = reply.json["Resources"][0]
    assert set(first) == {"schemas", "id", "displayName", "emails"}
    assert first["emails"] == [{"value": "bjensen@example.com"}]


def test_excluded_attributes(client, people):
    reply = client.get(
        f"/Users/{people[0]['id']}", params={"excludedAttributes": "emails,title"}
    )
    assert "emails" not in reply.json
    assert "title" not in reply.json
    assert reply.json["userName"] == "bjensen"


def test_attributes_on_create_and_replace(client):
    reply = client.post(
        "/Users",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a"},
        params={"attributes": "userName"},
    )
    assert set(reply.json) == {"schemas", "id", "userName"}
    reply = client.put(
        f"/Users/{reply.json['id']}",
        {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b"},
        params={"excludedAttributes": "meta"},
    )
    assert "meta" not in reply.json
    assert reply.json["userName"] == "b"


def test_post_search_on_users(client, people):
    reply = client.post(
        "/Users/.search",
        {
            "schemas": [SEARCH_SCHEMA],
            "filter": "active eq true",
            "sortBy": "userName",
            "startIndex": 2,
            "count": 2,
            "attributes": ["userName"],
        },
    )
    assert reply.status == 200
    body = reply.json
    assert body["totalResults"] == 3
    assert [r["userName"] for r in body["Resources"]] == ["bjensen", "zed"]
    assert set(body["Resources"][0]) == {"schemas", "id", "userName"}


def test_post_search_on_groups(client, people):
    reply = client.post(
        "/Groups/.search",
        {"schemas": [SEARCH_SCHEMA], "filter": 'displayName sw "Ev"'},
    )
    assert [g["displayName"] for g in reply.json["Resources"]] == ["Everyone"]


def test_root_search_covers_both_types(client, people):
    reply = client.post(
        "/.search",
        {"schemas": [SEARCH_SCHEMA], "filter": 'displayName co "e"'},
    )
    assert reply.status == 200
    found = {
        (r["meta"]["resourceType"], r["displayName"]) for r in reply.json["Resources"]
    }
    assert found == {
        ("User", "Barbara Jensen"),
        ("User", "Alice Chen"),
        ("Group", "Everyone"),
    }
    everything = client.post("/.search", {"schemas": [SEARCH_SCHEMA]}).json
    assert everything["totalResults"] == 6


def test_root_search_pages_across_types(client, people):
    reply = client.post(
        "/.search", {"schemas": [SEARCH_SCHEMA], "startIndex": 4, "count": 2}
    )
    resources = reply.json["Resources"]
    assert [r["meta"]["resourceType"] for r in resources] == ["User", "Group"]
    assert resources[0]["userName"] == "zed"


def test_bad_search_bodies(client, people):
    reply = client.post(
        "/Users/.search", {"schemas": [SEARCH_SCHEMA], "filter": "x eq"}
    )
    assert_error(reply, 400, "invalidFilter")
    assert_error(client.post("/Users/.search", body=b"{"), 400, "invalidSyntax")
