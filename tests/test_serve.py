"""`make serve` for real: each integration under gunicorn or uvicorn, on loopback."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest


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
            return response.status, headers, json.loads(response.read())
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
