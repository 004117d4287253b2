"""The auth.User recipe, checked through the ORM of a startproject-default project.

SCIM requests go to the host project of tests/hosts/ (django.contrib.auth
installed, SCIM included at /api/scim/v2/), served from
integrations/django_app/auth_storage.py; each test then reads what they left
in auth.User and auth.Group, with Django's own API: the user model, groups,
authenticate() and the test client's login().
"""

from collections.abc import Iterator

import pytest
from conftest import BACKENDS
from conftest import DJANGO_AUTH_DATABASES
from conftest import ENTERPRISE
from conftest import ScimClient
from conftest import assert_error
from conftest import create_user
from conftest import group_body
from conftest import make_app
from conftest import patch_body
from conftest import user_body
from django.contrib.auth import authenticate
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client

from integrations.django_app.auth_storage import AuthUserStorage
from shared import storage

User = get_user_model()
CUSTOM = "urn:example:params:scim:schemas:extension:django:2.0:User"


@pytest.fixture(
    params=[DJANGO_AUTH_DATABASES[name] for name in BACKENDS if "auth" in name]
)
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """The DATABASES alias SCIM writes to: SQLite, and PostgreSQL when set."""
    request.getfixturevalue("django_databases")
    request.getfixturevalue("thread_connections_closed")
    chosen = AuthUserStorage(using=request.param)
    chosen.reset()
    previous = storage.backend()
    storage.use(chosen)
    yield request.param
    storage.use(previous)
    chosen.reset()
    User.objects.using(request.param).all().delete()  # the unmanaged ones too
    Group.objects.using(request.param).all().delete()


@pytest.fixture
def client(alias: str) -> ScimClient:
    return ScimClient("django", make_app("django"))


def orm_user(alias: str, username: str):
    return User.objects.using(alias).get(username=username)


def patch_user(client, user, *operations):
    return client.patch(f"/Users/{user['id']}", patch_body(*operations))


def test_a_provisioned_user_is_an_auth_user(client, alias):
    create_user(
        client,
        "bjensen",
        name={"givenName": "Barbara", "familyName": "Jensen"},
        emails=[
            {"value": "home@example.org", "type": "home", "primary": True},
            {"value": "bjensen@example.com", "type": "work"},
        ],
        title="Tour Guide",
    )
    user = orm_user(alias, "bjensen")
    assert (user.first_name, user.last_name) == ("Barbara", "Jensen")
    assert user.email == "bjensen@example.com"  # the work email, not the primary
    assert user.is_active
    assert not user.has_usable_password()  # provisioned for SSO: no password
    assert (user.is_staff, user.is_superuser) == (False, False)
    assert user.scim_identity.attributes["title"] == "Tour Guide"


def test_attributes_the_model_keeps_come_back_from_it(client, alias):
    """The project's own edits of its columns are what SCIM reads."""
    user = create_user(client, "bjensen", name={"givenName": "Barbara"})
    etag = client.get(f"/Users/{user['id']}").headers["etag"]
    edited = orm_user(alias, "bjensen")
    edited.first_name, edited.is_active = "Babs", False
    edited.save()  # as the admin, or a profile form, would
    got = client.get(f"/Users/{user['id']}")
    assert (got.json["name"]["givenName"], got.json["active"]) == ("Babs", False)
    assert got.headers["etag"] != etag  # clients see it changed

    group = client.post("/Groups", group_body("Staff")).json
    Group.objects.using(alias).get(name="Staff").user_set.add(edited)
    assert client.get(f"/Users/{user['id']}").json["groups"][0]["display"] == "Staff"
    assert (
        client.get(f"/Groups/{group['id']}").json["members"][0]["value"] == (user["id"])
    )


@pytest.mark.parametrize(
    "deactivate",
    [
        {"op": "replace", "path": "active", "value": False},
        {"op": "Replace", "value": {"active": "False"}},  # Entra ID's shape
    ],
)
def test_a_deactivated_user_cannot_log_in(client, alias, deactivate):
    if alias != "default":
        pytest.skip("authenticate() and login() read the default database")
    user = create_user(client, "bjensen", password="Tr0ub4dor&3")
    assert authenticate(username="bjensen", password="Tr0ub4dor&3") is not None
    assert Client().login(username="bjensen", password="Tr0ub4dor&3")
    assert patch_user(client, user, deactivate).status == 200
    assert not orm_user(alias, "bjensen").is_active
    assert authenticate(username="bjensen", password="Tr0ub4dor&3") is None
    assert not Client().login(username="bjensen", password="Tr0ub4dor&3")


def test_the_password_goes_through_set_password(client, alias):
    user = create_user(client, "bjensen", password="first-Passw0rd")
    assert orm_user(alias, "bjensen").check_password("first-Passw0rd")
    patch_user(client, user, {"op": "replace", "path": "password", "value": "N3w"})
    assert orm_user(alias, "bjensen").check_password("N3w")
    client.put(f"/Users/{user['id']}", user_body("bjensen", title="x"))
    assert orm_user(alias, "bjensen").check_password("N3w")  # kept by a PUT


def test_groups_and_memberships_are_auth_groups(client, alias):
    alice = create_user(client, "alice")
    bob = create_user(client, "bob")
    reply = client.post("/Groups", group_body("Admins", alice["id"], bob["id"]))
    assert reply.status == 201
    group = Group.objects.using(alias).get(name="Admins")
    assert set(group.user_set.values_list("username", flat=True)) == {"alice", "bob"}

    remove = {"op": "remove", "path": f'members[value eq "{alice["id"]}"]'}
    assert client.patch(f"/Groups/{reply.json['id']}", patch_body(remove)).status == 204
    # Gone from user.groups as soon as the request has been answered.
    assert not orm_user(alias, "alice").groups.filter(name="Admins").exists()
    assert orm_user(alias, "bob").groups.filter(name="Admins").exists()

    rename = {"op": "replace", "path": "displayName", "value": "Operators"}
    client.patch(f"/Groups/{reply.json['id']}", patch_body(rename))
    assert list(orm_user(alias, "bob").groups.values_list("name", flat=True)) == [
        "Operators"
    ]
    assert client.delete(f"/Groups/{reply.json['id']}").status == 204
    assert not orm_user(alias, "bob").groups.exists()


ESCALATIONS = [
    ("POST", None, user_body("mallory", is_staff=True, is_superuser=True)),
    ("POST", None, user_body("mallory", isStaff=True, isSuperuser=True)),
    ("PATCH", "bjensen", patch_body({"op": "add", "path": "is_staff", "value": True})),
    (
        "PATCH",
        "bjensen",
        patch_body({"op": "replace", "path": "isSuperuser", "value": True}),
    ),
    (
        "PATCH",
        "bjensen",
        patch_body(
            {"op": "replace", "value": {"is_staff": True, "is_superuser": True}}
        ),
    ),
    (
        "PATCH",
        "bjensen",
        patch_body({"op": "add", "path": f"{ENTERPRISE}:is_superuser", "value": True}),
    ),
    (
        "PUT",
        "bjensen",
        user_body("bjensen", is_staff=True, is_superuser=True, active=True),
    ),
    (
        "PUT",
        "bjensen",
        {
            **user_body("bjensen", **{ENTERPRISE: {"is_staff": True}}),
            "schemas": [user_body("x")["schemas"][0], ENTERPRISE],
        },
    ),
    (
        "POST",
        None,
        {
            **user_body("mallory", **{CUSTOM: {"is_superuser": True, "isStaff": True}}),
            "schemas": [user_body("x")["schemas"][0], CUSTOM],
        },
    ),
]


@pytest.mark.parametrize(("method", "target", "body"), ESCALATIONS)
def test_no_scim_request_makes_staff_or_superusers(client, alias, method, target, body):
    """Whatever shape a request gives them, the flags stay the project's."""
    user = create_user(client, "bjensen")
    path = "/Users" if target is None else f"/Users/{user['id']}"
    reply = client.request(method, path, body)
    assert reply.status < 500, reply.body  # refused, or kept as SCIM data only
    for account in User.objects.using(alias).all():
        assert (account.username, account.is_staff, account.is_superuser) == (
            account.username,
            False,
            False,
        )


def test_scim_never_writes_the_flags_of_an_adopted_staff_account(client, alias):
    """A SCIM write names the fields it writes: is_staff is not one of them."""
    admin = User.objects.db_manager(alias).create_user("ops", is_staff=True)
    AuthUserStorage(using=alias).adopt_users([admin])
    [found] = client.get("/Users", params={"filter": 'userName eq "OPS"'}).json[
        "Resources"
    ]
    assert client.put(f"/Users/{found['id']}", user_body("ops")).status == 200
    patch_user(client, found, {"op": "replace", "path": "active", "value": False})
    admin.refresh_from_db()
    assert (admin.is_staff, admin.is_active) == (True, False)


def test_scim_sees_only_the_accounts_it_manages(client, alias):
    User.objects.db_manager(alias).create_superuser("root", "root@example.com", "x")
    assert client.get("/Users").json["totalResults"] == 0
    # Django's username is case-sensitive; SCIM's userName is not: "ROOT"
    # would be another account to Django, and is the same one to SCIM.
    assert_error(client.post("/Users", user_body("ROOT")), 409, "uniqueness")
    create_user(client, "Alice")
    assert_error(client.post("/Users", user_body("alice")), 409, "uniqueness")
    assert orm_user(alias, "Alice").username == "Alice"  # kept as sent


@pytest.mark.parametrize(
    ("body", "scim_type"),
    [
        (user_body("has space"), "invalidValue"),  # Django's username characters
        (user_body("x" * 151), "invalidValue"),  # max_length 150
        (user_body("bjensen", name={"givenName": "g" * 151}), "invalidValue"),
        (user_body("bjensen", emails=[{"value": "not-an-email"}]), "invalidValue"),
    ],
)
def test_django_field_rules_are_400s(client, alias, body, scim_type):
    assert_error(client.post("/Users", body), 400, scim_type)
    assert not User.objects.using(alias).exists()


def test_group_rules_of_auth_group(client, alias):
    first = client.post("/Groups", group_body("Admins")).json
    assert_error(client.post("/Groups", group_body("Admins")), 409, "uniqueness")
    nested = group_body("Outer")
    nested["members"] = [{"value": first["id"], "type": "Group"}]
    assert_error(client.post("/Groups", nested), 400, "invalidValue")
    assert_error(client.post("/Groups", group_body("g" * 151)), 400, "invalidValue")
    assert list(Group.objects.using(alias).values_list("name", flat=True)) == ["Admins"]


def test_filters_read_the_project_columns_and_the_identity_row(client, alias):
    create_user(
        client,
        "bjensen",
        name={"givenName": "Barbara"},
        emails=[{"value": "b@example.com", "type": "work"}],
        title="Guide",
    )
    create_user(client, "jsmith", active=False)

    def names(expression):
        reply = client.get("/Users", params={"filter": expression})
        assert reply.status == 200, reply.json
        return sorted(user["userName"] for user in reply.json["Resources"])

    assert names('name.givenName eq "barbara"') == ["bjensen"]  # caseExact false
    assert names('name.givenName sw "Bar"') == ["bjensen"]
    assert names("name.givenName pr") == ["bjensen"]
    assert names("active eq false") == ["jsmith"]
    assert names('emails[type eq "work"].value ew "@example.com"') == ["bjensen"]
    assert names('title eq "Guide" and userName eq "BJENSEN"') == ["bjensen"]
    reply = client.get("/Users", params={"sortBy": "emails.value"})
    assert_error(reply, 400, "invalidFilter")


CUSTOM_USER_SCRIPT = """
import json
import django

django.setup()
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
from custom_user.models import Person

client = Client()
headers = {"Authorization": "Bearer custom-user-token"}
body = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": "bjensen",
    "name": {"givenName": "Barbara"},
    "emails": [{"value": "b@example.com", "type": "work"}],
    "password": "s3cret-Passw0rd",
}
created = client.post(
    "/scim/v2/Users", json.dumps(body), "application/scim+json", headers=headers
)
patch = {
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{"op": "replace", "path": "active", "value": False}],
}
user_id = created.json()["id"]
patched = client.patch(
    f"/scim/v2/Users/{user_id}", json.dumps(patch), "application/scim+json",
    headers=headers,
)
person = Person.objects.get(username="bjensen")
print(json.dumps([
    created.status_code, patched.status_code, person.first_name, person.email,
    person.is_active, person.check_password("s3cret-Passw0rd"),
]))
"""


def test_a_custom_auth_user_model_works_through_get_user_model(tmp_path):
    """AUTH_USER_MODEL = "custom_user.Person": the same recipe, another model.

    Django fixes the user model at start-up, so this runs in a process of its own.
    """
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "custom_user_settings",
        "CUSTOM_USER_DATABASE_URL": f"sqlite:///{tmp_path}/custom.sqlite3",
        "PYTHONPATH": str(tests),
    }
    ran = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", CUSTOM_USER_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == [201, 200, "Barbara", "b@example.com", False, True]
