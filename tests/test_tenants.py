"""Tenants: one server, many customers' identity providers, and no way across.

Each token belongs to a tenant (SCIM_TOKENS="tenant:token,..."), and a request
sees its tenant's resources only: another tenant's answer 404 exactly as one
that does not exist, on every framework and every storage backend.
"""

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from conftest import BULK_SCHEMA
from conftest import ENTERPRISE
from conftest import PREFIX
from conftest import SEARCH_SCHEMA
from conftest import USER_SCHEMA
from conftest import Reply
from conftest import ScimClient
from conftest import assert_error
from conftest import group_body
from conftest import patch_body
from conftest import user_body
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from scim2_models import Group
from scim2_models import InvalidValueException
from scim2_models import NotFoundException
from scim2_models import UniquenessException

from shared import auth
from shared import mapping
from shared import storage
from shared.discovery import UserResource
from shared.records import GROUP
from shared.records import USER
from shared.storage import MemoryStorage

TOKENS = "acme:acme-old,acme:acme-new,globex:globex-token"
HOST_TOKENS = {"host-key-1": "acme", "host-key-2": "globex"}


# --8<-- [start:host-lookup]
def host_tenant_of(token: str) -> str | None:
    """A host application's own token lookup (its API keys table, say)."""
    return HOST_TOKENS.get(token)


# --8<-- [end:host-lookup]


def tenant_app(framework: str, tokens: str | auth.TenantOfToken) -> Any:
    """A host app with SCIM at PREFIX, for the tenants `tokens` gives.

    `tokens` is SCIM_TOKENS' text, or a host's own lookup.
    """
    if isinstance(tokens, str):
        tokens = auth.TokenTable.parse(tokens)
    if framework == "flask":
        from flask import Flask

        from integrations.flask_app.app import create_blueprint

        host = Flask(__name__)
        host.register_blueprint(create_blueprint(tokens), url_prefix=PREFIX)
        return host
    if framework == "fastapi":
        from fastapi import FastAPI

        from integrations.fastapi_app.app import create_app

        host = FastAPI()
        host.mount(PREFIX, create_app(tokens))
        return host
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()  # tokens come from the settings, see below


def django_settings(tokens: str | auth.TenantOfToken) -> dict[str, Any]:
    if callable(tokens):
        return {"SCIM_TENANT_OF": f"{__name__}.host_tenant_of"}
    return {"SCIM_TOKENS": tokens}


@pytest.fixture
def tenants_client(framework: str, backend: str) -> Iterator[ScimClient]:
    """The app of every framework, on every backend, for the tenants of TOKENS."""
    with open_client(framework, TOKENS) as client:
        yield client


@contextmanager
def open_client(framework: str, tokens: Any) -> Iterator[ScimClient]:
    if framework != "django":
        yield ScimClient(framework, tenant_app(framework, tokens))
        return
    from django.test import override_settings

    with override_settings(**django_settings(tokens)):
        yield ScimClient(framework, tenant_app(framework, tokens))


class As:
    """A client that sends one token: one tenant's identity provider."""

    def __init__(self, client: ScimClient, token: str) -> None:
        self.client, self.token = client, token

    def __getattr__(self, method: str) -> Any:
        send = getattr(self.client, method)
        return lambda *args, **kwargs: send(*args, token=self.token, **kwargs)


def created(reply: Reply) -> dict[str, Any]:
    assert reply.status == 201, reply.body
    return reply.json


def like_missing(reply: Reply, missing: Reply, real_id: str, missing_id: str) -> None:
    """`reply` is `missing`'s answer, but for the id: nothing tells them apart."""
    assert reply.status == missing.status, reply.body
    assert reply.json == json.loads(
        missing.body.replace(missing_id.encode(), real_id.encode())
    )


def search_body(**fields: Any) -> dict[str, Any]:
    return {"schemas": [SEARCH_SCHEMA], **fields}


def test_a_tenant_cannot_reach_another_tenants_resources(tenants_client):
    acme, globex = As(tenants_client, "acme-old"), As(tenants_client, "globex-token")
    # The same userName and externalId, in two tenants: both are created.
    ours = created(acme.post("/Users", user_body("bjensen", externalId="e1")))
    theirs = created(globex.post("/Users", user_body("BJensen", externalId="e1")))
    admins = created(acme.post("/Groups", group_body("Admins", ours["id"])))
    nobody = uuid.uuid4().hex

    # Read, replace, patch, delete: 404, the body of a resource that never was.
    for path, kind_of in (
        (f"/Users/{ours['id']}", "Users"),
        (f"/Groups/{admins['id']}", "Groups"),
    ):
        real_id = path.rsplit("/", 1)[1]
        missing_path = f"/{kind_of}/{nobody}"
        body = user_body("bjensen") if kind_of == "Users" else group_body("Admins")
        patch = patch_body({"op": "replace", "path": "displayName", "value": "x"})
        for method, payload in (
            ("get", None),
            ("put", body),
            ("patch", patch),
            ("delete", None),
        ):
            send = getattr(globex, method)
            args = () if payload is None else (payload,)
            like_missing(send(path, *args), send(missing_path, *args), real_id, nobody)
    # An ETag of the other tenant's resource matches nothing either.
    etag = acme.get(f"/Users/{ours['id']}").headers["etag"]
    assert (
        globex.get(f"/Users/{ours['id']}", headers={"If-None-Match": etag}).status
        == 404
    )
    assert (
        acme.get(f"/Users/{ours['id']}", headers={"If-None-Match": etag}).status == 304
    )
    again = acme.get(f"/Groups/{admins['id']}").json
    assert (again["displayName"], again["members"][0]["value"]) == (
        "Admins",
        ours["id"],
    )

    # Filters, lists and searches count and show this tenant's resources only.
    listed = globex.get("/Users", params={"filter": 'userName eq "bjensen"'}).json
    assert [user["id"] for user in listed["Resources"]] == [theirs["id"]]
    by_id = globex.get("/Users", params={"filter": f'id eq "{ours["id"]}"'}).json
    assert by_id["totalResults"] == 0
    assert globex.get("/Groups").json["totalResults"] == 0
    member_of = {"filter": f'members[value eq "{ours["id"]}"]'}
    assert globex.get("/Groups", params=member_of).json["totalResults"] == 0
    found = globex.post("/Users/.search", search_body(filter='externalId eq "e1"')).json
    assert [user["id"] for user in found["Resources"]] == [theirs["id"]]
    everything = globex.post("/.search", search_body()).json
    assert [r["id"] for r in everything["Resources"]] == [theirs["id"]]
    assert acme.post("/.search", search_body()).json["totalResults"] == 2

    # Membership: another tenant's user is a member that does not exist.
    like_missing(
        globex.post("/Groups", group_body("Staff", ours["id"])),
        globex.post("/Groups", group_body("Staff", nobody)),
        ours["id"],
        nobody,
    )
    staff = created(globex.post("/Groups", group_body("Staff", theirs["id"])))
    add = lambda member_id: patch_body(  # noqa: E731
        {"op": "add", "path": "members", "value": [{"value": member_id}]}
    )
    like_missing(
        globex.patch(f"/Groups/{staff['id']}", add(ours["id"])),
        globex.patch(f"/Groups/{staff['id']}", add(nobody)),
        ours["id"],
        nobody,
    )

    # A manager is a reference the server does not follow: naming another
    # tenant's user shows nothing of it (no displayName), as a made-up id.
    def manager(value: str) -> dict[str, Any]:
        extension = {ENTERPRISE: {"manager": {"value": value}}}
        body = user_body(f"report-{value[:6]}", **extension)
        return {**body, "schemas": [USER_SCHEMA, ENTERPRISE]}

    for value in (ours["id"], nobody):
        shown = created(globex.post("/Users", manager(value)))[ENTERPRISE]["manager"]
        assert set(shown) == {"value", "$ref"}

    # Bulk: the same rules, operation by operation; bulkIds stay in the request.
    reply = globex.post(
        "/Bulk",
        {
            "schemas": [BULK_SCHEMA],
            "Operations": [
                {
                    "method": "PATCH",
                    "path": f"/Users/{ours['id']}",
                    "data": patch_body(
                        {"op": "replace", "path": "title", "value": "x"}
                    ),
                },
                {"method": "DELETE", "path": f"/Groups/{admins['id']}"},
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": "u",
                    "data": user_body("carol"),
                },
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "team",
                    "data": group_body("Team", "bulkId:u"),
                },
                {
                    "method": "POST",
                    "path": "/Groups",
                    "bulkId": "spies",
                    "data": group_body("Spies", ours["id"]),
                },
            ],
        },
    )
    statuses = [operation["status"] for operation in reply.json["Operations"]]
    assert statuses == ["404", "404", "201", "201", "400"]
    assert acme.get(f"/Groups/{admins['id']}").status == 200
    assert acme.get("/Users").json["totalResults"] == 1

    # A cursor is its tenant's: another's is invalid, even for the same query.
    created(acme.post("/Users", user_body("alice")))
    first = acme.get("/Users", params={"cursor": "", "count": "1"}).json
    page = {"cursor": first["nextCursor"], "count": "1"}
    assert acme.get("/Users", params=page).status == 200
    assert_error(globex.get("/Users", params=page), 400, "invalidCursor")


@pytest.mark.parametrize("framework", ["flask", "fastapi", "django"])
def test_tokens_rotate_without_a_gap_and_unknown_ones_get_401(framework):
    with open_client(framework, TOKENS) as client:
        before = As(client, "acme-old")
        user = created(before.post("/Users", user_body("bjensen")))
        # Both of acme's tokens work while the identity provider moves over.
        after = As(client, "acme-new")
        assert after.get(f"/Users/{user['id']}").json["userName"] == "bjensen"
        for token in ("acme-ol", "acme-old2", "globex", "", "default"):
            assert_error(client.get("/Users", token=token), 401)
        assert_error(client.get("/Users", token=None), 401)
        basic = {"Authorization": "Basic acme-old"}
        assert_error(client.get("/Users", headers=basic, token=None), 401)
    # Then the old token goes, and the new one goes on seeing the same users.
    with open_client(framework, "acme:acme-new,globex:globex-token") as client:
        assert_error(client.get("/Users", token="acme-old"), 401)
        assert client.get(f"/Users/{user['id']}", token="acme-new").status == 200


@pytest.mark.parametrize("framework", ["flask", "fastapi", "django"])
def test_a_host_can_look_tenants_up_itself(framework):
    with open_client(framework, host_tenant_of) as client:
        reply = client.post("/Users", user_body("bjensen"), token="host-key-1")
        user = created(reply)
        assert client.get(f"/Users/{user['id']}", token="host-key-1").status == 200
        assert client.get(f"/Users/{user['id']}", token="host-key-2").status == 404
        assert_error(client.get("/Users", token="host-key-3"), 401)


def test_token_table():
    table = auth.TokenTable.parse(
        "acme:s3cret:with:colons, globex:sha256:"
        + "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
    )
    assert table.tenants == {"acme", "globex"}
    assert table("s3cret:with:colons") == "acme"
    assert table("secret") == "globex"  # given by its SHA-256 digest only
    assert (
        table("sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b")
        is None
    )
    assert table("") is None
    for bad in ("acme", ":token", "acme:", "a b:token", "acme: spaced", ""):
        with pytest.raises(ValueError):
            auth.TokenTable.parse(bad)
    single = auth.tokens_from_environment({"SCIM_TOKEN": "only"})
    assert (single.tenants, single("only")) == ({"default"}, "default")
    with pytest.raises(KeyError):
        auth.tokens_from_environment({})


def test_every_token_is_compared_whichever_matches(monkeypatch):
    """No early exit: the time taken tells nothing of which token was close."""
    table = auth.TokenTable.parse("a:one,a:two,b:three")
    compared = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(
        auth.hmac, "compare_digest", lambda x, y: compared.append(1) or real(x, y)
    )
    for token in ("one", "three", "none"):
        compared.clear()
        table(token)
        assert len(compared) == 3


class OneTenantStorage(MemoryStorage):
    """A storage that cannot keep tenants apart (an app's own users table, say)."""

    for_tenant = None  # it says so by having no for_tenant


def test_a_storage_of_one_tenant_serves_the_default_tenant_only(monkeypatch):
    from integrations.fastapi_app.app import create_app
    from integrations.flask_app.app import create_blueprint

    monkeypatch.setattr(storage, "_backend", OneTenantStorage())
    storage.check_tenants({"default"})
    two = auth.TokenTable.parse("default:a,acme:b")
    for refused in (lambda: create_blueprint(two), lambda: create_app(two)):
        with pytest.raises(storage.TenancyError):
            refused()
    # Looked up by the host's own function, tenants are known only per request.
    client = ScimClient("flask", tenant_app("flask", {"a": "default", "b": "acme"}.get))
    assert client.get("/Users", token="a").status == 200
    refused = client.get("/Users", token="b")
    assert refused.status == 500 and b"acme" not in refused.body


def test_django_checks_scim_tokens(monkeypatch):
    from django.test import override_settings

    from integrations.django_app.apps import check_tenants

    with override_settings(SCIM_TOKENS="acme:x,globex:"):
        assert [error.id for error in check_tenants(None)] == ["scim.E001"]
    with override_settings(SCIM_TOKENS="acme:x,globex:y"):
        assert check_tenants(None) == []
        monkeypatch.setattr(storage, "_backend", OneTenantStorage())
        assert [error.id for error in check_tenants(None)] == ["scim.E001"]


# A property: whatever one tenant does, with any ids it can name (its own, the
# other tenant's, made-up ones), what the other tenant sees never changes.

OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["create", "rename", "delete", "group", "join", "leave"]),
        st.sampled_from(["bjensen", "alice", "carol"]),
        st.integers(min_value=0, max_value=5),  # which id: see `pick`
    ),
    max_size=12,
)


def snapshot(store: Any) -> Any:
    """All that a tenant can see, groups with their members."""
    return store.list_records(USER), store.list_records(GROUP)


@pytest.mark.parametrize("backend_id", ["memory", "sqlite"])
@settings(
    max_examples=20,
    derandomize=True,  # the same examples on every run of `make test`
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=OPERATIONS)
def test_one_tenant_never_changes_what_another_sees(
    backend_id, property_roots, operations
):
    root = property_roots[backend_id]
    root.reset()
    acme, globex = root.for_tenant("acme"), root.for_tenant("globex")
    theirs = globex.save_record(USER, user_record("bjensen"))
    their_group = globex.save_record(
        GROUP, group_record("Staff", [{"value": theirs["id"], "type": USER}])
    )
    before = snapshot(globex)
    ours: list[dict[str, Any]] = []

    def pick(index: int) -> dict[str, Any]:
        """One of ours, one of theirs, or an id nobody has."""
        candidates = [*ours, theirs, their_group, {"id": "0" * 32, "user_name": "x"}]
        return candidates[index % len(candidates)]

    for operation, name, index in operations:
        target = pick(index)
        kind = USER if "user_name" in target else GROUP
        member = {"value": target["id"], "type": kind}
        try:
            if operation == "create":
                ours.append(acme.save_record(USER, user_record(name)))
            elif operation == "rename" and kind == USER:
                acme.save_record(USER, {**user_record(name), "id": target["id"]})
            elif operation == "delete":
                acme.delete_record(kind, target["id"])
            elif operation == "group":
                ours.append(acme.save_record(GROUP, group_record(name, [member])))
            elif operation in ("join", "leave") and ours:
                group_id = pick(index + 1)["id"]
                add, remove = (
                    ([member], []) if operation == "join" else ([], [member["value"]])
                )
                acme.update_group(group_id, None, add, remove)
        except (NotFoundException, InvalidValueException, UniquenessException):
            pass
        assert snapshot(globex) == before


@pytest.fixture(scope="module")
def property_roots(tmp_path_factory: Any) -> Iterator[dict[str, Any]]:
    """The backends of the property, opened once: each example empties one."""
    from shared.sql_storage import SqlStorage

    where = tmp_path_factory.mktemp("tenants")
    sqlite = SqlStorage(f"sqlite:///{where}/property.sqlite3")
    yield {"memory": MemoryStorage(), "sqlite": sqlite}
    sqlite.engine.dispose()


def user_record(user_name: str) -> dict[str, Any]:
    return mapping.from_scim_user(UserResource(user_name=user_name))


def group_record(display_name: str, members: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        **mapping.from_scim_group(Group(display_name=display_name)),
        "members": members,
    }
