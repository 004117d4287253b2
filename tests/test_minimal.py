"""The first recipe, integrations/<framework>_app/minimal.py: small, and honest.

The behaviour it shares with the full integration is held by the tests marked
`minimal` in the behaviour suite; this module checks what is its own.
"""

from pathlib import Path

import pytest
from conftest import MINIMAL_PREFIX
from conftest import ScimClient
from conftest import assert_error
from conftest import create_user

ROOT = Path(__file__).resolve().parent.parent
MINIMAL_FILES = sorted(ROOT.glob("integrations/*_app/minimal.py"))


@pytest.fixture
def minimal(framework, app):
    return ScimClient(framework, app, MINIMAL_PREFIX)


def test_one_minimal_file_per_framework_under_200_lines():
    assert [path.parent.name for path in MINIMAL_FILES] == [
        "django_app",
        "fastapi_app",
        "flask_app",
    ]
    for path in MINIMAL_FILES:
        assert len(path.read_text().splitlines()) <= 200, path


def test_it_announces_users_only_and_none_of_the_options(minimal):
    config = minimal.get("/ServiceProviderConfig").json
    for option in ("patch", "bulk", "filter", "sort", "etag"):
        assert config[option]["supported"] is False, option
    assert config["meta"]["location"] == f"{minimal.base}/ServiceProviderConfig"
    types = minimal.get("/ResourceTypes").json["Resources"]
    assert [resource_type["id"] for resource_type in types] == ["User"]
    schemas = minimal.get("/Schemas").json["Resources"]
    assert "urn:ietf:params:scim:schemas:core:2.0:Group" not in {
        s["id"] for s in schemas
    }


def test_its_users_are_the_full_integrations_users(client, minimal):
    # Both recipes stand on the same shared storage and mapping.
    user = create_user(minimal, "bjensen", title="Lead")
    seen = client.get(f"/Users/{user['id']}").json
    assert (seen["userName"], seen["title"]) == ("bjensen", "Lead")
    assert user["meta"]["location"].startswith(minimal.base)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/Groups", 404), ("GET", "/Nope", 404), ("PATCH", "/Users", 405)],
)
def test_what_it_does_not_serve_is_a_scim_error(minimal, method, path, status):
    if minimal.framework == "flask" and status == 405:
        status = 404  # Flask's catch-all route takes every method
    assert_error(minimal.request(method, path, body=b"{}"), status)


def test_it_needs_the_token(minimal):
    reply = minimal.get("/Users", token="wrong")
    assert_error(reply, 401)
    assert reply.headers["www-authenticate"].startswith("Bearer")
