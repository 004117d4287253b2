"""A small `make bench` in one process, for the performance notebook.

The six operations of `bench/run.py`, sent to the same applications, but
through each framework's own test client instead of a socket and a server:
Flask's `app.test_client()`, Django's `django.test.Client`, and Werkzeug's test
`Client` for the peer (scim2-server, a WSGI app). Each server is built once per
store size, with an in-memory store of its own, seeded through POST /Bulk in
batches of 100.

FastAPI is an ASGI app: it runs on an event loop, as under uvicorn. Starlette's
`TestClient` keeps that loop in a thread of its own and hands it every request
from the calling thread, a round trip between threads that would cost more than
most operations. So the test client here only starts the loop (and the app's
lifespan); the requests come from an `httpx2.AsyncClient` over an
`ASGITransport`, in a loop that runs on the app's event loop itself: one trip
to that loop per measurement, none per request. The endpoints, which are plain
`def`, still run in FastAPI's thread pool, as they do under uvicorn.

    from bench.inprocess import run
    rates = run(sizes=(200, 2000), seconds=0.2)
    rates["flask"][2000]["page"]  # requests per second

There is no HTTP server or socket in the way, so the rates are not those of
`make bench`; and they move with whatever else the machine does.
To expose every server and size to the same noise, they take turns: each
operation is measured on every server at every size, one after the other, in a
few short rounds, and the best round counts. As with timeit, the garbage
collector stays off while the clock runs.
"""

import contextlib
import gc
import itertools
import json
import os
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from anyio.from_thread import BlockingPortal

from bench.run import CHECKS
from bench.run import OPERATIONS
from bench.run import TOKEN
from bench.run import requests
from bench.run import seed
from shared import storage

NAMES = ("flask", "fastapi", "django", "peer")
SCIM_JSON = "application/scim+json"

Response = tuple[int, Any]  # status, JSON body or None
Call = Callable[[str, str, Any], Response]
AsyncCall = Callable[[str, str, Any], Awaitable[Response]]
Rates = dict[str, dict[int, dict[str, float]]]


@dataclass
class Client:
    """How to send requests to one application, and how to let it go.

    `call` sends one request from the calling thread. An ASGI app also has
    `acall`, the same as a coroutine, and the `portal` to the event loop it
    must run on.
    """

    call: Call
    close: Callable[[], None] = lambda: None
    acall: AsyncCall | None = None
    portal: BlockingPortal | None = None


def _encoded(body: Any) -> bytes | None:
    return json.dumps(body).encode() if body is not None else None


def _decoded(status: int, data: bytes) -> Response:
    return status, json.loads(data) if data else None


def _flask(token: str) -> Client:
    from integrations.flask_app import create_app

    client = create_app(token).test_client()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def call(method: str, path: str, body: Any) -> Response:
        url = "/scim/v2" + path
        response = client.open(url, method=method, data=_encoded(body), headers=headers)
        return _decoded(response.status_code, response.get_data())

    return Client(call)


def _fastapi(token: str) -> Client:
    import httpx2  # the HTTP client of Starlette's TestClient
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from integrations.fastapi_app import create_app

    # Mounted at /scim/v2, as integrations/fastapi_app/asgi.py serves it.
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.mount("/scim/v2", create_app(token))
    # Entered once, the test client starts an event loop in a thread of its
    # own and runs the app's lifespan on it: the app's one loop, as under
    # uvicorn. Its requests would each go to that loop and back from here, so
    # they go through an AsyncClient running on the loop instead.
    lifespan = TestClient(app, base_url="http://testserver")
    lifespan.__enter__()
    portal = lifespan.portal
    assert portal is not None
    client = httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=app), base_url="http://testserver"
    )
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    async def acall(method: str, path: str, body: Any) -> Response:
        url = "/scim/v2" + path
        response = await client.request(
            method, url, content=_encoded(body), headers=headers
        )
        return _decoded(response.status_code, response.content)

    def call(method: str, path: str, body: Any) -> Response:
        # One trip to the loop per request: for seeding, which is not timed.
        return portal.call(acall, method, path, body)

    def close() -> None:
        portal.call(client.aclose)
        lifespan.__exit__(None, None, None)

    return Client(call, close, acall, portal)


def _django(token: str) -> Client:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "integrations.django_app.settings")
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from django.test import Client as DjangoClient

    get_wsgi_application()  # django.setup(), if nothing did it before
    client = DjangoClient()
    # The settings read SCIM_TOKEN once: if Django was set up earlier in this
    # process, its token is the one to send.
    headers = {"Authorization": f"Bearer {settings.SCIM_TOKEN}"}

    def call(method: str, path: str, body: Any) -> Response:
        response = client.generic(
            method,
            "/scim/v2" + path,
            _encoded(body) or b"",
            content_type=SCIM_JSON if body is not None else "",
            headers=headers,
        )
        return _decoded(response.status_code, response.content)

    return Client(call)


def _peer(token: str) -> Client:
    from werkzeug.test import Client as WerkzeugClient

    from bench.apps import make_peer

    client = WerkzeugClient(make_peer())  # its token: SCIM_TOKEN, which run() sets
    headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def call(method: str, path: str, body: Any) -> Response:
        url = "/v2" + path
        response = client.open(url, method=method, data=_encoded(body), headers=headers)
        return _decoded(response.status_code, response.get_data())

    return Client(call)


CLIENTS = {"flask": _flask, "fastapi": _fastapi, "django": _django, "peer": _peer}


@contextlib.contextmanager
def _collector_off() -> Iterator[None]:
    """As timeit does, keep the garbage collector out of the timing.

    This process holds the stores of every server, and a full collection walks
    all of them, a cost no server pays on its own.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _rate(send: Callable[[], None], seconds: float) -> float:
    """Requests per second of `send()`, for `seconds` (3 requests at least)."""
    send()  # warm up the code path
    with _collector_off():
        done, started = 0, time.perf_counter()
        while True:
            send()
            done += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and done >= 3:
                return done / elapsed


async def _arate(send: Callable[[], Awaitable[None]], seconds: float) -> float:
    """`_rate`, for a coroutine, timed on the event loop it runs on."""
    await send()  # warm up the code path
    with _collector_off():
        done, started = 0, time.perf_counter()
        while True:
            await send()
            done += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and done >= 3:
                return done / elapsed


class Server:
    """One application at one store size: its test client and its own store."""

    def __init__(self, name: str, size: int, token: str) -> None:
        self.name, self.size = name, size
        # The three integrations serve whatever shared.storage holds: this one
        # gets a store of its own, swapped in on its turn. The peer keeps its
        # store in its app, and each Server builds a new app.
        self.store = storage.MemoryStorage()
        self.activate()
        self.client = CLIENTS[name](token)
        self.posted = itertools.count(10_000_000)  # userNames no seed uses
        try:
            self.ids = self.seed()
        except BaseException:
            self.close()  # FastAPI's event loop thread would outlive run()
            raise

    def activate(self) -> None:
        storage.use(self.store)

    def close(self) -> None:
        self.client.close()

    def seed(self) -> list[str]:
        """Create `size` users through POST /Bulk; return their ids."""
        _, config = self.client.call("GET", "/ServiceProviderConfig", None)
        batch = min(100, config["bulk"]["maxOperations"])
        return seed(self.client.call, 0, self.size, batch)

    def measure(self, operation: str, seconds: float) -> float:
        """Requests per second of one operation, for `seconds` (3 requests at least).

        A WSGI app gets its requests from this thread. An ASGI app gets them
        from a coroutine that runs on its event loop, timed there: one call
        through the portal per measurement.
        """
        if operation not in CHECKS:
            raise ValueError(f"unknown operation {operation!r}")
        self.activate()
        sent = requests(operation, self.ids, self.size, self.posted)
        ok = CHECKS[operation]
        call, acall, portal = self.client.call, self.client.acall, self.client.portal

        if acall is None or portal is None:

            def send() -> None:
                status, body = call(*next(sent))
                assert ok(status, body), (self.name, operation, status, body)

            return _rate(send, seconds)

        async def asend() -> None:
            status, body = await acall(*next(sent))
            assert ok(status, body), (self.name, operation, status, body)

        return portal.call(_arate, asend, seconds)


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
