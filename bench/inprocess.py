"""A small `make bench` in one process, for the performance notebook.

The six operations of `bench/run.py`, sent to the same applications, but
through each framework's own test client instead of a socket and a server:
Flask's `app.test_client()`, Starlette's `TestClient` for FastAPI, Django's
`django.test.Client`, and Werkzeug's test `Client` for the peer (scim2-server,
a WSGI app). Each server is built once per store size, with an in-memory
store of its own, seeded through POST /Bulk in batches of 100.

    from bench.inprocess import run
    rates = run(sizes=(200, 2000), seconds=0.2)
    rates["flask"][2000]["page"]  # requests per second

There is no HTTP server, socket or HTTP client in the way, so the rates are
not those of `make bench`; and they move with whatever else the machine does.
To expose every server and size to the same noise, they take turns: each
operation is measured on every server at every size, one after the other, in a
few short rounds, and the best round counts. As with timeit, the garbage
collector stays off while the clock runs.
"""

import gc
import itertools
import json
import os
import random
import time
from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from bench.run import BULK
from bench.run import OPERATIONS
from bench.run import PATCH_OP
from bench.run import TOKEN
from bench.run import user_payload
from shared import storage

NAMES = ("flask", "fastapi", "django", "peer")
SCIM_JSON = "application/scim+json"

# (method, path, JSON body or None) -> (status, JSON body or None)
Call = Callable[[str, str, Any], tuple[int, Any]]
Rates = dict[str, dict[int, dict[str, float]]]


def _encoded(body: Any) -> bytes | None:
    return json.dumps(body).encode() if body is not None else None


def _decoded(status: int, data: bytes) -> tuple[int, Any]:
    return status, json.loads(data) if data else None


def _flask(token: str) -> tuple[Call, Callable[[], None]]:
    from integrations.flask_app import create_app

    client = create_app(token).test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def call(method: str, path: str, body: Any) -> tuple[int, Any]:
        url = "/scim/v2" + path
        response = client.open(url, method=method, data=_encoded(body), headers=headers)
        return _decoded(response.status_code, response.get_data())

    return call, lambda: None


def _fastapi(token: str) -> tuple[Call, Callable[[], None]]:
    from fastapi.testclient import TestClient

    from integrations.fastapi_app import create_app

    # Entered once, so that the app runs on one event loop for all requests
    # (as under uvicorn), instead of on a new one for each.
    client = TestClient(create_app(token), base_url="http://testserver")
    client.__enter__()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def call(method: str, path: str, body: Any) -> tuple[int, Any]:
        url = "/scim/v2" + path
        response = client.request(method, url, content=_encoded(body), headers=headers)
        return _decoded(response.status_code, response.content)

    return call, lambda: client.__exit__(None, None, None)


def _django(token: str) -> tuple[Call, Callable[[], None]]:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations.django_app.settings")
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.test import Client

    get_wsgi_application()  # django.setup(), if nothing did it before
    client = Client()
    # The settings read SCIM_TOKEN once: if Django was set up earlier in this
    # process, its token is the one to send.
    headers = {"Authorization": f"Bearer {settings.SCIM_TOKEN}"}

    def call(method: str, path: str, body: Any) -> tuple[int, Any]:
        response = client.generic(
            method,
            "/scim/v2" + path,
            _encoded(body) or b"",
            content_type=SCIM_JSON if body is not None else "",
            headers=headers,
        )
        return _decoded(response.status_code, response.content)

    return call, lambda: None


def _peer(token: str) -> tuple[Call, Callable[[], None]]:
    from werkzeug.test import Client

    from bench.apps import make_peer

    client = Client(make_peer())  # its token: SCIM_TOKEN, which run() sets
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def call(method: str, path: str, body: Any) -> tuple[int, Any]:
        url = "/v2" + path
        response = client.open(url, method=method, data=_encoded(body), headers=headers)
        return _decoded(response.status_code, response.get_data())

    return call, lambda: None


CLIENTS = {"flask": _flask, "fastapi": _fastapi, "django": _django, "peer": _peer}


class Server:
    """One application at one store size: its test client and its own store."""

    def __init__(self, name: str, size: int, token: str) -> None:
        self.name, self.size = name, size
        # The three integrations serve whatever shared.storage holds: this one
        # gets a store of its own, swapped in on its turn. The peer keeps its
        # store in its app, and each Server builds a new app.
        self.store = storage.MemoryStorage()
        self.activate()
        self.call, self.close = CLIENTS[name](token)
        self.posted = itertools.count(10_000_000)  # userNames no seed uses
        self.ids = self.seed()

    def activate(self) -> None:
        storage.use(self.store)

    def seed(self) -> list[str]:
        """Create `size` users through POST /Bulk; return their ids."""
        _, config = self.call("GET", "/ServiceProviderConfig", None)
        batch = min(100, config["bulk"]["maxOperations"])
        ids = []
        for first in range(0, self.size, batch):
            operations = [
                {
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": f"u{index}",
                    "data": user_payload(index),
                }
                for index in range(first, min(first + batch, self.size))
            ]
            bulk = {"schemas": [BULK], "Operations": operations}
            status, body = self.call("POST", "/Bulk", bulk)
            assert status == 200, (self.name, status, body)
            for operation in body["Operations"]:
                assert operation["status"] == "201", (self.name, operation)
                ids.append(operation["location"].rsplit("/", 1)[1])
        return ids

    def measure(self, operation: str, seconds: float) -> float:
        """Requests per second of one operation, for `seconds` (3 requests at least).

        The requests are those of `bench/run.py`'s `measure`.
        """
        self.activate()
        rng = random.Random(42)  # noqa: S311 - the same requests for every server
        call, ids, size = self.call, self.ids, self.size

        def request() -> None:
            if operation == "post":
                body = user_payload(next(self.posted))
                status, _ = call("POST", "/Users", body)
                assert status == 201, status
            elif operation == "get":
                status, _ = call("GET", f"/Users/{rng.choice(ids)}", None)
                assert status == 200, status
            elif operation == "filter_eq":
                name = f"user{rng.randrange(size):06d}"
                query = f"filter=userName%20eq%20%22{name}%22"
                status, body = call("GET", f"/Users?{query}", None)
                assert status == 200 and body["totalResults"] == 1, (status, body)
            elif operation == "page":
                start = rng.randrange(1, size - 10)
                status, body = call("GET", f"/Users?startIndex={start}&count=10", None)
                assert status == 200 and len(body["Resources"]) == 10, (status, body)
            elif operation == "scan":
                fragment = f"{rng.randrange(size):06d}@"
                query = f"filter=emails.value%20co%20%22{fragment}%22&count=10"
                status, body = call("GET", f"/Users?{query}", None)
                assert status == 200 and body["totalResults"] >= 1, (status, body)
            elif operation == "patch":
                value = f"n{rng.random()}"
                replace = {"op": "replace", "path": "displayName", "value": value}
                body = {"schemas": [PATCH_OP], "Operations": [replace]}
                status, _ = call("PATCH", f"/Users/{rng.choice(ids)}", body)
                # RFC 7644 §3.5.2: 200 with the resource, or 204 (scim2-server).
                assert status in (200, 204), status
            else:
                raise ValueError(f"unknown operation {operation!r}")

        request()  # warm up the code path
        # As timeit does, keep the garbage collector out of the timing: this
        # process holds the stores of every server, and a full collection
        # walks all of them, a cost no server pays on its own.
        collecting = gc.isenabled()
        gc.disable()
        try:
            done, started = 0, time.perf_counter()
            while True:
                request()
                done += 1
                elapsed = time.perf_counter() - started
                if elapsed >= seconds and done >= 3:
                    return done / elapsed
        finally:
            if collecting:
                gc.enable()


def run(
    sizes: Iterable[int] = (200, 2000),
    seconds: float = 0.2,
    rounds: int = 2,
    names: Iterable[str] = NAMES,
) -> Rates:
    """`{name: {size: {operation: requests per second}}}` for each server.

    Each server is built and seeded once per size. Each operation then gets
    `seconds` per server and size, split into `rounds`; the best round counts.
    Sets SCIM_TOKEN if it is not set (the peer reads it), and leaves an empty
    in-memory store in shared.storage.
    """
    token = os.environ.setdefault("SCIM_TOKEN", TOKEN)
    sizes = list(sizes)
    rates: Rates = {name: {size: {} for size in sizes} for name in names}
    servers: list[Server] = []
    try:
        for name in rates:
            for size in rates[name]:
                servers.append(Server(name, size, token))
        for _ in range(rounds):
            for operation in OPERATIONS:
                for server in servers:
                    rate = server.measure(operation, seconds / rounds)
                    best = rates[server.name][server.size]
                    best[operation] = max(best.get(operation, 0.0), rate)
        return rates
    finally:
        for server in servers:
            server.close()
        storage.use(storage.MemoryStorage())
