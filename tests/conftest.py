"""One uniform in-process client per framework, so every test runs against all three.

Each framework's app is a stock host application (tests/hosts/) with SCIM
mounted at PREFIX, as a reader's own application would have it.
"""

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

TOKEN = "test-token"
os.environ["SCIM_TOKEN"] = TOKEN
# The host project's settings, plus the ORM recipe's app and test databases.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "django_orm_settings")

import django  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

django.setup()
# What Django's test runner does: DEBUG off, "testserver" an allowed host.
setup_test_environment(debug=False)

from hosts import MINIMAL_PREFIX  # noqa: E402
from hosts import PREFIX  # noqa: E402

from shared import storage  # noqa: E402

FRAMEWORKS = ("flask", "fastapi", "django")
BASE = "http://testserver" + PREFIX  # the SCIM root of the apps make_app builds
SCIM_JSON = "application/scim+json"


@dataclass
class Reply:
    """What a test sees of a response, whatever the framework."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class ScimClient:
    """Sends requests to one framework's app through its own test client.

    Paths are relative to `prefix`, where the app serves SCIM: "/Users".
    """

    def __init__(self, framework: str, app: Any, prefix: str = PREFIX) -> None:
        self.framework = framework
        self.app = app
        self.prefix = prefix
        self.base = "http://testserver" + prefix  # the SCIM root, as URLs show it
        if framework == "flask":
            self._client = app.test_client()
        elif framework == "fastapi":
            from fastapi.testclient import TestClient

            self._client = TestClient(app, base_url="http://testserver")
        else:
            from django.test import Client

            # As a real client: no CSRF token, and the check not skipped.
            self._client = Client(enforce_csrf_checks=True)

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        body: bytes | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = TOKEN,
        content_type: str = SCIM_JSON,
    ) -> Reply:
        url = self.prefix + path
        if params:
            url += "?" + urlencode(params)
        if json_body is not None:
            body = json.dumps(json_body).encode()
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if body is not None:
            headers["Content-Type"] = content_type
        if self.framework == "flask":
            response = self._client.open(
                url,
                method=method,
                data=body,
                headers=headers,
                base_url="http://testserver",
            )
            return Reply(
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                response.get_data(),
            )
        if self.framework == "fastapi":
            response = self._client.request(method, url, content=body, headers=headers)
            return Reply(
                response.status_code,
                {k.lower(): v for k, v in response.headers.items()},
                response.content,
            )
        content_type_header = headers.pop("Content-Type", None)
        response = self._client.generic(
            method,
            url,
            body or b"",
            content_type=content_type_header or "",
            headers=headers,
        )
        return Reply(
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, json_body, **kwargs)

    def put(self, path: str, json_body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PUT", path, json_body, **kwargs)

    def patch(self, path: str, json_body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PATCH", path, json_body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)


def make_app(framework: str) -> Any:
    """The framework's host app, with SCIM at PREFIX (Django's is in the settings)."""
    if framework == "flask":
        from hosts.flask_host import create_host

        return create_host(TOKEN)
    if framework == "fastapi":
        from hosts.fastapi_host import create_host

        return create_host(TOKEN)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


BACKENDS = [
    "memory",
    "sqlite",
    "django-sqlite",
    "django-auth-sqlite",
    "existing-sqlite",
]
POSTGRES_URL = os.environ.get("SCIM_TEST_POSTGRES_URL")
if POSTGRES_URL:
    BACKENDS += ["postgres", "django-postgres", "django-auth-postgres"]
    BACKENDS += ["existing-postgres"]


def pytest_configure(config: pytest.Config) -> None:
    """Under CI=true, PostgreSQL is required; elsewhere its absence is printed."""
    if os.environ.get("CI") == "true" and not POSTGRES_URL:
        raise pytest.UsageError("CI=true: set SCIM_TEST_POSTGRES_URL (see .ci/run)")


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return "storage backends: " + ", ".join(BACKENDS)
    return (
        "storage backends: " + ", ".join(BACKENDS) + " (PostgreSQL skipped: "
        "set SCIM_TEST_POSTGRES_URL to run every suite on it too)"
    )


# The Django ORM backend (integrations/django_app/orm_storage.py): the
# DATABASES alias of each, in tests/django_orm_settings.py.
DJANGO_DATABASES = {"django-sqlite": "default", "django-postgres": "postgres"}
# The recipes that provision into a user model of the application's own:
# Django's auth.User (integrations/django_app/auth_storage.py), and an
# existing `users` table through SQLAlchemy (shared/existing_users.py).
DJANGO_AUTH_DATABASES = {
    "django-auth-sqlite": "default",
    "django-auth-postgres": "postgres",
}
EXISTING_TABLE = ("existing-sqlite", "existing-postgres")
OWN_MODEL_BACKENDS = (*DJANGO_AUTH_DATABASES, *EXISTING_TABLE)
# They run the behaviour suites of these modules: users, groups, PATCH and
# queries, what an identity provider does. The other suites hold the
# integrations to protocol details that do not depend on where users are
# kept, and the contract suite compares the SCIM-shaped backends; running
# them on four more backends would cost a minute of `make test` for nothing new;
# so would the first recipe (minimal.py), which calls the same storage. On
# PostgreSQL, PATCH is left out too: a PATCH reaches the storage as the same
# save_record that the users suite's PUTs make there.
OWN_MODEL_MODULES = {
    "test_users.py",
    "test_groups.py",
    "test_patch.py",
    "test_query.py",
}
# What these recipes do not keep, and why. A test of such a behaviour is
# marked `@pytest.mark.keeps("nested-groups")`, and skips on them, saying why.
NOT_KEPT = {
    "nested-groups": "auth.Group and the users table hold users, not groups",
}


# Which frameworks each backend runs the behaviour suites behind. Memory runs
# behind all three: that proves the frameworks alike, request for request.
# Each database runs behind one: every backend answers the Storage calls
# exactly as memory does (tests/test_storage_contract.py proves it), so a
# database behind a second framework would prove nothing new, at the cost of
# a third of `make test`. The Django ORM serves the Django integration only.
SERVED_BY = {
    "memory": FRAMEWORKS,
    "sqlite": ("flask",),
    "postgres": ("fastapi",),
    "django-sqlite": ("django",),
    "django-postgres": ("django",),
    "django-auth-sqlite": ("django",),
    "django-auth-postgres": ("django",),
    "existing-sqlite": ("flask",),
    "existing-postgres": ("fastapi",),
}


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Each backend behind the frameworks SERVED_BY names."""
    kept, dropped = [], []
    for item in items:
        params = item.callspec.params if hasattr(item, "callspec") else {}
        backend, framework = params.get("backend"), params.get("framework")
        elsewhere = backend and framework and framework not in SERVED_BY[backend]
        unrun = backend in OWN_MODEL_BACKENDS and (
            item.path.name not in OWN_MODEL_MODULES
            or params.get("recipe") == "minimal"
            or (backend.endswith("postgres") and item.path.name == "test_patch.py")
        )
        if elsewhere or unrun:
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(autouse=True)
def empty_storage() -> Iterator[None]:
    storage.reset()
    yield
    storage.reset()


def postgres_url(schema: str) -> str:
    """The test database URL, confined to a schema of its own, created empty.

    The schema is dropped first: tables an older checkout created there (before
    a column was added, say) would otherwise outlive it, as create_all() never
    alters a table that exists.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    engine.dispose()
    url = make_url(POSTGRES_URL).update_query_dict(
        {"options": f"-csearch_path={schema}"}
    )
    return url.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_storage(worker_id: str) -> Iterator[Any]:
    """One schema per pytest-xdist worker, so parallel workers never collide."""
    from shared.sql_storage import SqlStorage

    backend = SqlStorage(postgres_url(f"scim_test_{worker_id}"))
    yield backend
    backend.engine.dispose()


@pytest.fixture(scope="session")
def existing_postgres_storage(worker_id: str) -> Iterator[Any]:
    """The existing-table recipe in a schema of its own per worker."""
    from shared.existing_users import ExistingUsersStorage

    backend = ExistingUsersStorage(postgres_url(f"scim_existing_{worker_id}"))
    yield backend
    backend.engine.dispose()


@pytest.fixture(scope="session")
def django_databases() -> Iterator[None]:
    """Migrate the Django test databases once; remove the SQLite file at the end."""
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    for alias in settings.DATABASES:
        if connections[alias].vendor == "postgresql":
            schema = settings.SCIM_TEST_POSTGRES_SCHEMA
            # Empty, as in postgres_url(): migrations of an older checkout
            # recorded there would leave its tables as they were.
            with connections[alias].cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                cursor.execute(f"CREATE SCHEMA {schema}")
        call_command("migrate", database=alias, verbosity=0)
    yield
    connections.close_all()
    sqlite_file = settings.DATABASES["default"]["NAME"]
    for suffix in ("", "-wal", "-shm"):
        Path(sqlite_file + suffix).unlink(missing_ok=True)


@pytest.fixture
def thread_connections_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Close the connections Django opens in the threads a test starts, as they end.

    Django closes a connection when a request finishes, but neither its test
    client nor a direct storage call does: psycopg would warn, at garbage
    collection, about a connection left open.
    """
    from django.db import connections

    run = threading.Thread.run

    def run_then_close(thread: threading.Thread) -> None:
        try:
            run(thread)
        finally:
            connections.close_all()

    monkeypatch.setattr(threading.Thread, "run", run_then_close)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """Run the test on each storage backend: memory, SQLite, PostgreSQL if set.

    The Django integration also runs on the Django ORM, on the same databases.
    """
    from shared.sql_storage import SqlStorage

    if request.param in OWN_MODEL_BACKENDS:
        for marker in request.node.iter_markers("keeps"):
            for behaviour in marker.args:
                pytest.skip(f"{request.param} recipe: {NOT_KEPT[behaviour]}")
    if request.param == "memory":
        chosen = storage.MemoryStorage()
    elif request.param == "sqlite":
        chosen = SqlStorage(f"sqlite:///{tmp_path}/scim.sqlite3")
    elif request.param in DJANGO_AUTH_DATABASES:
        from integrations.django_app.auth_storage import AuthUserStorage

        request.getfixturevalue("django_databases")
        request.getfixturevalue("thread_connections_closed")
        chosen = AuthUserStorage(using=DJANGO_AUTH_DATABASES[request.param])
    elif request.param == "existing-sqlite":
        from shared.existing_users import ExistingUsersStorage

        chosen = ExistingUsersStorage(f"sqlite:///{tmp_path}/app.sqlite3")
    elif request.param == "existing-postgres":
        chosen = request.getfixturevalue("existing_postgres_storage")
    elif request.param in DJANGO_DATABASES:
        from integrations.django_app.orm_storage import DjangoOrmStorage

        request.getfixturevalue("django_databases")
        request.getfixturevalue("thread_connections_closed")
        chosen = DjangoOrmStorage(using=DJANGO_DATABASES[request.param])
    else:
        chosen = request.getfixturevalue("postgres_storage")
    chosen.reset()
    previous = storage.unscoped()  # every tenant's, not the default's view
    storage.use(chosen)
    yield request.param
    storage.use(previous)
    if request.param in ("sqlite", "existing-sqlite"):
        chosen.engine.dispose()


@pytest.fixture(params=FRAMEWORKS)
def framework(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def app(framework: str, backend: str) -> Any:
    return make_app(framework)


RECIPE_PREFIXES = {"full": PREFIX, "minimal": MINIMAL_PREFIX}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `minimal` also run against the first recipe (minimal.py)."""
    marked = metafunc.definition.get_closest_marker("minimal") is not None
    if marked and "client" in metafunc.fixturenames:
        metafunc.parametrize("recipe", ["full", "minimal"], indirect=True)


@pytest.fixture
def recipe(request: pytest.FixtureRequest) -> str:
    """Which integration a test talks to: the full one, or the first recipe."""
    return getattr(request, "param", "full")


@pytest.fixture
def client(framework: str, app: Any, recipe: str) -> ScimClient:
    return ScimClient(framework, app, RECIPE_PREFIXES[recipe])


USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def user_body(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}


def group_body(display_name: str, *member_ids: str, **attrs: Any) -> dict[str, Any]:
    members = [{"value": member_id} for member_id in member_ids]
    body = {"schemas": [GROUP_SCHEMA], "displayName": display_name, **attrs}
    if members:
        body["members"] = members
    return body


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": list(operations)}


def create_user(client: ScimClient, user_name: str, **attributes: Any) -> dict:
    reply = client.post("/Users", user_body(user_name, **attributes))
    assert reply.status == 201, reply.json
    return reply.json


def create_group(client: ScimClient, display_name: str, *member_ids: str) -> dict:
    reply = client.post("/Groups", group_body(display_name, *member_ids))
    assert reply.status == 201, reply.json
    return reply.json


def assert_error(reply: Reply, status: int, scim_type: str | None = None) -> None:
    """A SCIM Error body (RFC 7644 §3.12), with status as a JSON string."""
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["content-type"].startswith(SCIM_JSON)
    body = reply.json
    assert body["schemas"] == [ERROR_SCHEMA]
    assert body["status"] == str(status)
    assert body.get("scimType") == scim_type
    assert b"Traceback" not in reply.body


def password_matches(password: str, hashed: str) -> bool:
    """Whether a record's password hash is that of `password`: the cookbook's
    scrypt, or, for the auth.User recipe, whatever set_password() made."""
    from shared import mapping

    if hashed.startswith("scrypt$"):
        return mapping.check_password(password, hashed)
    from django.contrib.auth.hashers import check_password

    return check_password(password, hashed)
