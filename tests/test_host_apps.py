"""SCIM as a guest: the host app is exactly as it was, and SCIM keeps to its prefix.

Each framework's stock host (tests/hosts/) is built with and without SCIM; the
host's own routes, error pages and settings must not tell the difference.
Under the prefix, every error is a SCIM Error, and every URL SCIM gives out
carries the prefix it is mounted at, whatever that prefix is.
"""

from typing import Any

import pytest
from conftest import TOKEN
from conftest import Reply
from conftest import ScimClient
from conftest import assert_error
from conftest import create_user
from conftest import make_app
from conftest import user_body
from hosts.flask_host import HOST_MAX_CONTENT_LENGTH

from shared import discovery
from shared import search

FORM = "application/x-www-form-urlencoded"
# Requests to the host's own URLs, and what they prove, per framework.
HOST_REQUESTS: dict[str, list[tuple[str, str, bytes | None, str]]] = {
    "flask": [
        ("GET", "/", None, ""),  # its own route
        ("GET", "/nope", None, ""),  # its own 404 page
        ("GET", "/api/scim", None, ""),  # next to the prefix: still the host's
        ("GET", "/api/scim/v2x", None, ""),
        ("DELETE", "/", None, ""),  # Flask's own 405 page
        ("POST", "/notes", b"hello", "text/plain"),
        # Over the host's MAX_CONTENT_LENGTH: its own 413 page.
        ("POST", "/notes", b"x" * (HOST_MAX_CONTENT_LENGTH + 1), "text/plain"),
    ],
    "fastapi": [
        ("GET", "/", None, ""),
        ("GET", "/nope", None, ""),  # FastAPI's JSON 404
        ("GET", "/api/scim", None, ""),
        ("GET", "/api/scim/v2x", None, ""),
        ("DELETE", "/", None, ""),  # FastAPI's JSON 405
        ("POST", "/items", b'{"name": "pen", "price": 2}', "application/json"),
        ("POST", "/items", b'{"name": 1}', "application/json"),  # FastAPI's 422
        ("POST", "/items", b"{not json", "application/json"),
    ],
    "django": [
        ("GET", "/", None, ""),
        ("GET", "/nope/", None, ""),  # Django's 404 page
        ("GET", "/notes", None, ""),  # APPEND_SLASH redirects the host's URLs
        ("GET", "/api/scim", None, ""),
        ("GET", "/api/scim/v2x/", None, ""),
        ("POST", "/notes/", b"note=hi", FORM),  # no CSRF token: Django's 403
        ("GET", "/admin/", None, ""),  # startproject's admin, to its login page
    ],
}


def host_client(framework: str, app: Any) -> ScimClient:
    """A client of the host's own URLs, from the root."""
    return ScimClient(framework, app, prefix="")


def send(client: ScimClient, method: str, path: str, body: Any, content_type: str):
    return client.request(
        method, path, body=body, token=None, content_type=content_type or "text/plain"
    )


def comparable(reply: Reply) -> tuple[int, dict[str, str], bytes]:
    # Date and Django admin's Expires are the time of the answer, to the second.
    headers = {k: v for k, v in reply.headers.items() if k not in ("date", "expires")}
    return reply.status, headers, reply.body


def without_scim(framework: str) -> Any:
    if framework == "flask":
        from hosts.flask_host import create_host

        return create_host(None)
    from hosts.fastapi_host import create_host

    return create_host(None)


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_host_routes_and_error_pages_are_as_without_scim(framework):
    with_scim = host_client(framework, make_app(framework))
    alone = host_client(framework, without_scim(framework))
    for method, path, body, content_type in HOST_REQUESTS[framework]:
        expected = comparable(send(alone, method, path, body, content_type))
        actual = comparable(send(with_scim, method, path, body, content_type))
        assert actual == expected, (method, path)


def test_django_host_urls_and_error_pages_are_as_without_scim():
    from django.test import override_settings

    with_scim = host_client("django", make_app("django"))
    expected = []
    with override_settings(ROOT_URLCONF="hosts.django_views"):  # no SCIM
        alone = host_client("django", make_app("django"))
        for method, path, body, content_type in HOST_REQUESTS["django"]:
            expected.append(comparable(send(alone, method, path, body, content_type)))
    for request, before in zip(HOST_REQUESTS["django"], expected, strict=True):
        assert comparable(send(with_scim, *request)) == before, request[:2]


def test_the_host_pages_are_the_hosts_own():
    """What the comparisons above compare: the host's pages, not SCIM's."""
    flask = host_client("flask", make_app("flask"))
    assert flask.get("/nope").body == b"<h1>The host's own 404 page</h1>"
    big = send(flask, "POST", "/notes", b"x" * 2000, "text/plain")
    assert (big.status, big.body) == (413, b"<h1>The host's own 413 page</h1>")
    fastapi = host_client("fastapi", make_app("fastapi"))
    assert fastapi.get("/nope").json == {"detail": "Not Found"}
    invalid = send(fastapi, "POST", "/items", b'{"name": 1}', "application/json")
    assert invalid.status == 422
    assert invalid.headers["content-type"] == "application/json"
    assert [error["loc"] for error in invalid.json["detail"]] == [
        ["body", "name"],
        ["body", "price"],
    ]
    django = host_client("django", make_app("django"))
    missing = django.get("/nope/")
    assert missing.status == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert b"<h1>Not Found</h1>" in missing.body
    assert send(django, "POST", "/notes/", b"note=hi", FORM).status == 403
    assert django.get("/notes").status == 301


def test_flask_host_keeps_its_config_and_handlers():
    from hosts.flask_host import create_host

    alone, host = create_host(None), create_host(TOKEN)
    assert dict(host.config) == dict(alone.config)
    assert host.config["MAX_CONTENT_LENGTH"] == HOST_MAX_CONTENT_LENGTH
    # App-wide handlers and hooks (the None key) are the host's alone.
    assert host.error_handler_spec[None].keys() == alone.error_handler_spec[None].keys()
    for hooks in ("before_request_funcs", "after_request_funcs"):
        assert getattr(host, hooks).get(None) == getattr(alone, hooks).get(None)


def test_fastapi_host_keeps_its_exception_handlers():
    from hosts.fastapi_host import create_host

    alone, host = create_host(None), create_host(TOKEN)
    assert host.exception_handlers == alone.exception_handlers


def test_django_project_is_startproject_defaults():
    from django.conf import global_settings
    from django.conf import settings

    assert settings.ROOT_URLCONF == "hosts.django_urls"
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE
    assert "django.middleware.common.CommonMiddleware" in settings.MIDDLEWARE
    assert settings.APPEND_SLASH
    assert (
        settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        == global_settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        > discovery.MAX_PAYLOAD_SIZE
    )
    import hosts.django_urls

    assert not hasattr(hosts.django_urls, "handler404")
    assert not hasattr(hosts.django_urls, "handler500")


# Under the prefix: SCIM's, whatever the host's own pages are.


@pytest.mark.parametrize("path", ["/Nope", "/", "/Users/a/b", "/x/"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE", "FOO"])
def test_unknown_urls_under_the_prefix_are_scim_404s(client, method, path):
    assert_error(client.request(method, path, body=b"{}"), 404)


# Starlette's Mount matches its prefix with `/(?P<path>.*)$`, whose `.` stops
# at a newline: under FastAPI, such a URL never reaches the SCIM app.
@pytest.mark.parametrize("framework", ["flask", "django"])
@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/a%0Ab", 404),
        ("GET", "/Users/a%0Ab/c", 404),
        ("POST", "/Users/%0A", 405),
    ],
)
def test_newlines_in_urls_under_the_prefix_are_scim_errors(
    client, method, path, status
):
    assert_error(client.request(method, path, body=b"{}"), status)


@pytest.mark.parametrize("framework", ["fastapi"])
@pytest.mark.parametrize("path", ["/a%0Ab", "/Users/%0A0"])
def test_fastapi_hosts_answer_newlines_under_the_prefix_themselves(client, path):
    # The limit of mounting in Starlette: such a URL is the host's 404, and the
    # SCIM app never sees it, so it can change nothing.
    create_user(client, "bjensen")
    for method in ("GET", "POST", "PATCH", "DELETE"):
        reply = client.request(method, path, body=b"{}")
        assert (reply.status, reply.json) == (404, {"detail": "Not Found"})
    assert client.get("/Users").json["totalResults"] == 1


@pytest.mark.parametrize("method", ["PUT", "DELETE", "OPTIONS", "TRACE", "FOO"])
def test_wrong_methods_under_the_prefix_are_scim_405s(client, method):
    reply = client.request(method, "/Users", body=b"{}")
    if method == "OPTIONS" and reply.status < 400:
        return  # Flask answers OPTIONS on its own, with the Allow header
    assert_error(reply, 405)


def test_bodies_over_the_scim_limit_are_scim_413s(client):
    body = user_body("bjensen", displayName="x" * discovery.MAX_PAYLOAD_SIZE)
    assert_error(client.post("/Users", body), 413)
    assert client.get("/Users").json["totalResults"] == 0


def test_scim_has_its_own_body_limit_not_the_hosts(client):
    """The Flask host allows 1 KiB, Django 2.5 MB: SCIM allows MAX_PAYLOAD_SIZE."""
    padding = "x" * (discovery.MAX_PAYLOAD_SIZE - 200)
    reply = client.post("/Users", user_body("bjensen", displayName=padding))
    assert reply.status == 201


def test_unexpected_exceptions_are_scim_500s(framework, app, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(search, "list_resources", broken)
    client = ScimClient(framework, app)
    if framework == "fastapi":
        # Starlette re-raises the exception for the server to log, once the
        # SCIM 500 is sent; the test client would raise it here.
        from fastapi.testclient import TestClient

        client._client = TestClient(app, raise_server_exceptions=False)
    assert_error(client.get("/Users"), 500)


@pytest.mark.parametrize("framework", ["django"])
def test_django_scim_urls_are_never_redirected_nor_csrf_checked(client):
    """APPEND_SLASH and CsrfViewMiddleware are on; SCIM URLs get neither."""
    assert client.get("/Users").status == 200
    assert client.post("/Users", user_body("bjensen")).status == 201
    assert_error(client.get("/Users/"), 404)


# Any prefix, and several at once, each with its own token.


def test_flask_blueprint_at_two_prefixes():
    from flask import Flask

    from integrations.flask_app.app import create_blueprint

    host = Flask(__name__)
    host.register_blueprint(create_blueprint(TOKEN), url_prefix="/tenants/acme/scim")
    host.register_blueprint(
        create_blueprint("other"), url_prefix="/v2", name="scim_other"
    )
    check_two_prefixes("flask", host, "other")


def test_fastapi_app_at_two_prefixes():
    from fastapi import FastAPI

    from integrations.fastapi_app.app import create_app

    host = FastAPI()
    host.mount("/tenants/acme/scim", create_app(TOKEN))
    host.mount("/v2", create_app("other"))
    check_two_prefixes("fastapi", host, "other")


def test_django_urls_at_two_prefixes():
    from django.test import override_settings

    with override_settings(ROOT_URLCONF="hosts.django_two_prefixes"):
        # One project, one SCIM_TOKEN setting.
        check_two_prefixes("django", make_app("django"), TOKEN)


def check_two_prefixes(framework: str, app: Any, other_token: str) -> None:
    acme = ScimClient(framework, app, prefix="/tenants/acme/scim")
    other = ScimClient(framework, app, prefix="/v2")
    root = "http://testserver/tenants/acme/scim"
    created = acme.post("/Users", user_body("bjensen"))
    assert created.headers["location"] == f"{root}/Users/{created.json['id']}"
    assert created.json["meta"]["location"] == created.headers["location"]
    group = acme.post(
        "/Groups",
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Admins",
            "members": [{"value": created.json["id"]}],
        },
    ).json
    assert group["members"][0]["$ref"] == f"{root}/Users/{created.json['id']}"
    config = acme.get("/ServiceProviderConfig").json
    assert config["meta"]["location"] == f"{root}/ServiceProviderConfig"
    listed = other.get("/Users", token=other_token).json["Resources"][0]
    assert listed["meta"]["location"].startswith("http://testserver/v2/Users/")
    if other_token != TOKEN:  # each mount checks its own token
        assert_error(other.get("/Users"), 401)
        assert_error(acme.get("/Users", token=other_token), 401)
    assert_error(acme.get("/Nope"), 404)
