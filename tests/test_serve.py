"""`make serve` for real: each integration under gunicorn or uvicorn, on loopback."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import FRAMEWORKS
from conftest import postgres_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def call(url: str, token: str | None = None, method: str = "GET", body=None):
    request = urllib.request.Request(url, method=method, data=body)  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/scim+json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            headers = {k.lower(): v for k, v in response.headers.items()}
            data = response.read()  # empty for a 204
            return response.status, headers, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        headers = {k.lower(): v for k, v in error.headers.items()}
        body = json.loads(error.read())
        error.close()
        return error.code, headers, body


@pytest.fixture
def server(framework):
    """Start `python -m integrations.serve` without SCIM_TOKEN, as a newcomer would."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "SCIM_TOKEN"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "integrations.serve", "--framework", framework,
         "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    banner = ""
    while "curl" not in banner:
        line = process.stdout.readline()
        assert line, f"server exited early:\n{banner}"
        banner += line
    token = re.search(r"Bearer ([\w-]+)", banner).group(1)
    # Keep reading the access log, or the pipe fills and the server blocks.
    drain = threading.Thread(target=process.stdout.read, daemon=True)
    drain.start()
    url = f"http://127.0.0.1:{port}/scim/v2"
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield url, token
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    assert process.wait(timeout=15) == 0
    drain.join(timeout=5)
    process.stdout.close()


def test_served_app_answers_like_the_in_process_one(server):
    url, token = server
    status, headers, body = call(f"{url}/Users", token)
    assert status == 200
    assert headers["content-type"] == "application/scim+json"
    assert body["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    # The demo data is loaded at start.
    assert body["totalResults"] == 3
    status, headers, body = call(f"{url}/Users")
    assert status == 401
    assert headers["www-authenticate"].startswith("Bearer")
    assert body["status"] == "401"
    payload = json.dumps({"userName": "new.user"}).encode()
    status, headers, body = call(f"{url}/Users", token, "POST", payload)
    assert status == 201
    assert headers["location"] == f"{url}/Users/{body['id']}"
    status, _, body = call(f"{url}/Users", token, "POST", payload)
    assert (status, body["scimType"]) == (409, "uniqueness")
    status, _, body = call(f"{url}/Groups", token)
    assert body["Resources"][0]["displayName"] == "Engineering"


def test_scim2_tester_passes_against_the_served_app(server):
    """The live check the docs show, run against the real server."""
    url, token = server
    checked = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "integrations.check_live", url],
        env={**os.environ, "SCIM_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    passed, total = re.search(r"(\d+)/(\d+) checks passed", checked.stdout).groups()
    assert passed == total
    assert int(total) >= 135


def start(framework, port, env, workers=1):
    # The access log goes to a file: a pipe nobody reads would fill and block.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by stop()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "integrations.serve", "--framework", framework,
         "--port", str(port), "--workers", str(workers)],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    process.log = log
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(log.read()) from None
            time.sleep(0.1)
    raise AssertionError("the server did not start")


def stop(process):
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=20) == 0
    process.log.close()


# Each framework's server on SQLite; on PostgreSQL, what keeps the guarantees
# is the database's (a unique index, a compare-and-swap), the same behind any
# framework, so one framework there is enough.
SERVED_DATABASES = [(framework, "sqlite") for framework in FRAMEWORKS]
if os.environ.get("SCIM_TEST_POSTGRES_URL"):
    SERVED_DATABASES.append(("fastapi", "postgres"))


def open_database(database, tmp_path, framework):
    """The URL of an empty database of that kind."""
    if database == "sqlite":
        return f"sqlite:///{tmp_path}/scim.sqlite3"
    from shared.sql_storage import SqlStorage

    url = postgres_url(f"scim_serve_{framework}")
    backend = SqlStorage(url)
    backend.reset()  # each run starts from an empty database
    backend.engine.dispose()
    return url


@pytest.mark.parametrize(("framework", "database"), SERVED_DATABASES)
def test_four_workers_on_one_database_keep_every_guarantee(
    framework, database, tmp_path
):
    from concurrent.futures import ThreadPoolExecutor

    port = free_port()
    token = "workers-token"
    database_url = open_database(database, tmp_path, framework)
    env = {**os.environ, "SCIM_TOKEN": token, "SCIM_DATABASE_URL": database_url}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = start(framework, port, env, workers=4)
    url = f"http://127.0.0.1:{port}/scim/v2"
    try:
        # The demo data was loaded once, not once per worker.
        assert call(f"{url}/Users", token)[2]["totalResults"] == 3
        assert call(f"{url}/Groups", token)[2]["totalResults"] == 1

        def create(index):
            name = "Racer" if index % 2 else "racer"
            body = json.dumps({"userName": name}).encode()
            return call(f"{url}/Users", token, "POST", body)[0]

        with ThreadPoolExecutor(16) as pool:
            statuses = sorted(pool.map(create, range(16)))
        assert statuses == [201] + [409] * 15

        ids = [
            call(
                f"{url}/Users",
                token,
                "POST",
                json.dumps({"userName": f"m{i}"}).encode(),
            )[2]["id"]
            for i in range(12)
        ]
        group = call(
            f"{url}/Groups", token, "POST", json.dumps({"displayName": "G"}).encode()
        )[2]

        def add(user_id):
            patch = {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [
                    {"op": "add", "path": "members", "value": [{"value": user_id}]}
                ],
            }
            body = json.dumps(patch).encode()
            return call(f"{url}/Groups/{group['id']}", token, "PATCH", body)[0]

        with ThreadPoolExecutor(12) as pool:
            assert set(pool.map(add, ids)) == {204}
        members = call(f"{url}/Groups/{group['id']}", token)[2]["members"]
        assert {member["value"] for member in members} == set(ids)
    finally:
        stop(process)

    # A restart keeps the data.
    process = start(framework, port, env)
    try:
        reply = call(f"{url}/Users?filter=userName%20eq%20%22racer%22", token)
        assert reply[2]["totalResults"] == 1
    finally:
        stop(process)
