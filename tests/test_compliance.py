"""scim2-tester, the external compliance checker, against each app in process."""

import pytest
from conftest import BASE
from conftest import POSTGRES_URL
from conftest import TOKEN
from fastapi.testclient import TestClient
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_client.engines.wsgi import WSGISCIMClient
from scim2_models import NotImplementedException
from scim2_tester import Status
from scim2_tester import check_server

from shared import resources

HEADERS = {"Authorization": f"Bearer {TOKEN}"}


def scim_client(framework, app):
    """A scim2-client that calls the app directly: WSGI, or ASGI through TestClient."""
    if framework == "fastapi":
        # TestClient is an httpx client: scim2-client's httpx2 engine drives it.
        return SyncSCIMClient(TestClient(app, base_url=BASE, headers=HEADERS))
    return WSGISCIMClient(app, base_url=BASE, headers=HEADERS)


# Every framework on memory, and every storage backend once: the storage
# contract suite (test_storage_contract.py) already holds the backends to one
# another, query for query, so the whole matrix would check nothing more.
PAIRS = [
    ("flask", "memory"),
    ("fastapi", "memory"),
    ("django", "memory"),
    ("flask", "sqlite"),
    ("django", "django-sqlite"),
]
if POSTGRES_URL:
    PAIRS += [("fastapi", "postgres"), ("django", "django-postgres")]


@pytest.mark.parametrize(("framework", "backend"), PAIRS, indirect=["backend"])
def test_scim2_tester_reports_only_success(framework, app):
    results = check_server(scim_client(framework, app))
    failures = [
        f"{result.title}: {result.reason}"
        for result in results
        if result.status != Status.SUCCESS
    ]
    assert failures == []
    # The whole battery ran: discovery, CRUD, PATCH and query checks on both types.
    assert len(results) >= 135


@pytest.mark.parametrize(
    ("framework", "backend"), [("flask", "memory")], indirect=["backend"]
)
def test_scim2_tester_notices_a_broken_server(framework, app, monkeypatch):
    """The check above can fail: break PATCH, and scim2-tester says so."""

    def broken_patch(*args, **kwargs):
        raise NotImplementedException()

    monkeypatch.setattr(resources, "patch_resource", broken_patch)
    results = check_server(scim_client(framework, app))
    assert any(result.status != Status.SUCCESS for result in results)
