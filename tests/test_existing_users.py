"""The existing-table existing (shared/existing_users.py), served by Flask and FastAPI.

SCIM requests go to each framework's host app; each test then reads the
application's own `users` table with SQLAlchemy, as the application would.
"""

from collections.abc import Iterator
from datetime import UTC
from datetime import datetime

import pytest
from conftest import ScimClient
from conftest import assert_error
from conftest import create_user
from conftest import group_body
from conftest import make_app
from conftest import patch_body
from conftest import user_body
from hosts import fastapi_host
from hosts import flask_host
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from shared import storage
from shared.existing_users import ExistingUsersStorage
from shared.existing_users import user_data
from shared.existing_users import users


@pytest.fixture(params=["flask", "fastapi"])
def framework(request) -> str:
    return request.param


@pytest.fixture
def existing(tmp_path, framework) -> Iterator[ExistingUsersStorage]:
    """The host's start-up, as the docs show it for each framework."""
    host = flask_host if framework == "flask" else fastapi_host
    previous = storage.backend()
    chosen = host.provision_into_users_table(f"sqlite:///{tmp_path}/app.sqlite3")
    yield chosen
    storage.use(previous)
    chosen.engine.dispose()


@pytest.fixture
def client(framework, existing) -> ScimClient:
    return ScimClient(framework, make_app(framework))


def row(existing, email):
    with existing.engine.connect() as conn:
        return conn.execute(select(users).where(users.c.email == email)).one()


def test_scim_writes_land_in_the_users_table(client, existing):
    user = create_user(
        client,
        "bjensen@example.com",
        displayName="Babs Jensen",
        externalId="e-1",
        title="Guide",
    )
    found = row(existing, "bjensen@example.com")
    assert user["id"] == str(found.id)  # the table's own key
    assert (found.display_name, found.is_active) == ("Babs Jensen", True)
    with existing.engine.connect() as conn:
        side = conn.execute(select(user_data)).one()
    assert (side.external_id, side.attributes["title"]) == ("e-1", "Guide")

    deactivate = {"op": "replace", "path": "active", "value": False}
    reply = client.patch(f"/Users/{user['id']}", patch_body(deactivate))
    assert reply.status == 200
    assert row(existing, "bjensen@example.com").is_active is False
    assert client.delete(f"/Users/{user['id']}").status == 204
    with existing.engine.connect() as conn:
        assert conn.execute(select(users)).all() == []


def test_the_applications_other_users_stay_out_of_reach(client, existing):
    with existing.engine.begin() as conn:
        conn.execute(
            insert(users).values(
                email="Admin@example.com",
                display_name="Admin",
                is_active=True,
                created_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )
    assert client.get("/Users").json["totalResults"] == 0
    reply = client.post("/Users", user_body("admin@EXAMPLE.com"))
    assert_error(reply, 409, "uniqueness")  # the table's email, in any case

    existing.adopt_users([row(existing, "Admin@example.com").id])
    query = {"filter": 'userName eq "admin@example.com"'}
    [adopted] = client.get("/Users", params=query).json["Resources"]
    assert adopted["displayName"] == "Admin"


def test_the_application_edits_then_touches(client, existing):
    user = create_user(client, "b@example.com", displayName="Babs")
    etag = client.get(f"/Users/{user['id']}").headers["etag"]
    with existing.engine.begin() as conn:
        conn.execute(update(users).values(display_name="Barbara"))
    existing.touch_users([int(user["id"])])
    reply = client.get(f"/Users/{user['id']}")
    assert (reply.json["displayName"], reply.headers["etag"] != etag) == (
        "Barbara",
        True,
    )


def test_groups_hold_rows_of_the_users_table(client, existing):
    alice = create_user(client, "alice@example.com")
    group = client.post("/Groups", group_body("Admins", alice["id"])).json
    nested = group_body("Outer")
    nested["members"] = [{"value": group["id"], "type": "Group"}]
    assert_error(client.post("/Groups", nested), 400, "invalidValue")
    query = {"filter": f'members[value eq "{alice["id"]}"]'}
    assert client.get("/Groups", params=query).json["totalResults"] == 1
    assert client.get("/Users", params={"sortBy": "emails.value"}).status == 400
    assert client.get("/Users/012").status == 404  # "12" is the id, not "012"
