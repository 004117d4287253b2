"""`make bench`, the large-group scenario: one membership change in a group of 100,000.

Entra ID and Okta keep a group in step with their directory one change at a
time: a PATCH that adds or removes one member, a PATCH that renames the group,
a GET that leaves the members out, and Entra's probe, a filter that asks
whether one user is a member. None of these needs the group's other members. A
server that reads, validates and writes the whole group to answer them pays for
every member on every request, and in a group of 100,000 that is all it does.

So each server gets a group of 10 members and a group of 100,000 (users seeded
through /Bulk, added by POST /Groups then PATCHes of 10,000 members), and each
operation is timed request by request on both groups. The median latency
counts, of as many requests as fit in a time budget per operation: 3 at least,
so that a server that takes seconds per request sends three, and 50 at most.
Adds alternate with removes of the same user, so a group keeps its size. The
three frameworks run in memory and on SQLite (a fresh file each); the peer,
scim2-server, has only its memory store.

Targets, for each framework and store: every operation costs at most 3x at
100,000 members what it costs at 10; and at 100,000 members it is at least 50x
faster than the peer.

It takes about 45 minutes once group operations cost the same at any size:
seeding 100,000 users into SQLite takes about 8 of them, three times, and the
peer about 8 in all, each of its requests on the large group taking 5 to 15
seconds.

    python -m bench.run --scenario groups [--group-sizes 10 100000] [--group-seconds 1]
"""

import itertools
import json
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.run import FRAMEWORKS
from bench.run import PATCH_OP
from bench.run import Call
from bench.run import Client
from bench.run import Server
from bench.run import free_port
from bench.run import make_serve_command
from bench.run import peer_command
from bench.run import seed

GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
BACKENDS = ("memory", "sqlite")
OPERATIONS = (
    "add",
    "remove_path",
    "remove_value",
    "rename",
    "display_name",
    "get_excluded",
    "probe",
)
LABELS = {
    "add": "PATCH add one member",
    "remove_path": 'PATCH remove members[value eq "…"]',
    "remove_value": "PATCH remove members, value (Entra)",
    "rename": "PATCH replace externalId",
    "display_name": "PATCH replace displayName",
    "get_excluded": "GET ?excludedAttributes=members",
    "probe": "membership probe (Entra)",
}
# scim2-server refuses Entra's remove-with-value with a 400: "a remove
# operation carries no value, a filter in the path selects what to remove".
PEER_REFUSES = ("remove_value",)
SPARE_USERS = 100  # seeded, but in no group: the members that adds add
# Members per request while building a group: about 450 kB of JSON, under the
# 1 MiB a body may hold (shared/discovery.py); the peer has no limit on PATCH.
BUILD_BATCH = 10_000
MIN_REQUESTS, MAX_REQUESTS = 3, 50  # per operation and group
MAX_GROWTH = 3.0  # latency at the largest group / at the smallest, at most
MIN_SPEEDUP = 50.0  # the peer's latency / ours, at the largest group, at least


def patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


def group_request(
    operation: str, group: str, user: str, serial: int
) -> tuple[str, str, Any]:
    """One request of `operation` on `group`, about `user`: (method, path, body).

    `serial` makes each new value differ from the last.
    """
    path = f"/Groups/{group}"
    if operation == "get_excluded":
        return "GET", f"{path}?excludedAttributes=members", None
    if operation == "probe":
        query = (
            f"excludedAttributes=members&filter=id%20eq%20%22{group}%22%20and%20"
            f"members%5Bvalue%20eq%20%22{user}%22%5D"
        )
        return "GET", f"/Groups?{query}", None
    if operation == "add":
        change = {"op": "add", "path": "members", "value": [{"value": user}]}
    elif operation == "remove_path":
        change = {"op": "remove", "path": f'members[value eq "{user}"]'}
    elif operation == "remove_value":  # as Entra ID sends it
        member = {"$ref": None, "value": user}
        change = {"op": "Remove", "path": "members", "value": [member]}
    elif operation == "rename":
        change = {"op": "replace", "path": "externalId", "value": f"ext-{serial}"}
    elif operation == "display_name":
        name = f"bench group {group} {serial}"
        change = {"op": "replace", "path": "displayName", "value": name}
    else:
        raise ValueError(f"unknown operation {operation!r}")
    return "PATCH", path, patch(change)


def patched(status: int, body: Any) -> bool:
    # RFC 7644 §3.5.2: 200 with the resource, or 204 without.
    return status in (200, 204)


CHECKS: dict[str, Callable[[int, Any], bool]] = {
    "add": patched,
    "remove_path": patched,
    "remove_value": patched,
    "rename": patched,
    "display_name": patched,
    "get_excluded": lambda status, body: status == 200 and "members" not in body,
    "probe": lambda status, body: status == 200 and body["totalResults"] == 1,
}


def build_group(call: Call, name: str, members: list[str], label: str) -> str:
    """POST a group with its first members, PATCH in the rest; return its id."""

    def values(first: int) -> list[dict[str, str]]:
        return [{"value": user} for user in members[first : first + BUILD_BATCH]]

    body = {"schemas": [GROUP], "displayName": name, "members": values(0)}
    status, created = call("POST", "/Groups", body)
    assert status == 201, (status, created)
    group = created["id"]
    started = time.perf_counter()
    for first in range(BUILD_BATCH, len(members), BUILD_BATCH):
        add = {"op": "add", "path": "members", "value": values(first)}
        status, answer = call("PATCH", f"/Groups/{group}", patch(add))
        assert patched(status, answer), (status, answer)
        done = min(first + BUILD_BATCH, len(members))
        elapsed = time.perf_counter() - started
        print(f"  {label}: {done:,} members ({elapsed:.0f} s)", flush=True)
    status, answer = call("GET", f"/Groups/{group}?attributes=members", None)
    assert status == 200, (status, answer)
    assert len(answer.get("members", [])) == len(members), len(answer["members"])
    return group


def measure_group(
    client: Client,
    group: str,
    members: list[str],
    spares: list[str],
    seconds: float,
    skip: tuple[str, ...] = (),
) -> dict[str, float]:
    """The median latency of each operation on one group, in milliseconds.

    Each operation gets `seconds` of requests, counting only its own, and at
    least MIN_REQUESTS, at most MAX_REQUESTS. An add of a spare user is
    followed by a remove of the same user, each timed: the group keeps its
    size, and the adds get the samples of both removes.
    """
    rng = random.Random(42)  # noqa: S311 - the same requests for every server
    serial = itertools.count()
    samples: dict[str, list[float]] = {operation: [] for operation in OPERATIONS}

    def timed(operation: str, user: str) -> None:
        method, path, body = group_request(operation, group, user, next(serial))
        started = time.perf_counter()
        status, answer = client.call(method, path, body)
        samples[operation].append(time.perf_counter() - started)
        assert CHECKS[operation](status, answer), (operation, status, answer)

    def enough(operation: str) -> bool:
        done = samples[operation]
        return len(done) >= MIN_REQUESTS and (
            sum(done) >= seconds or len(done) >= MAX_REQUESTS
        )

    for removal in ("remove_path", "remove_value"):
        while removal not in skip and not enough(removal):
            user = rng.choice(spares)
            timed("add", user)
            timed(removal, user)
    for operation in ("rename", "display_name", "get_excluded", "probe"):
        while operation not in skip and not enough(operation):
            timed(operation, rng.choice(members))
    return {
        operation: 1000 * statistics.median(times)
        for operation, times in samples.items()
        if times
    }


def bench_server(
    label: str,
    command: list[str],
    env: dict,
    prefix: str,
    sizes: list[int],
    seconds: float,
    out: Path,
    skip: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Seed one server, then build and measure a group of each size in turn."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    server = Server(label, command, env, out / f"groups-{label.replace(' ', '-')}.log")
    try:
        server.wait_for(port)
        client = Client(port, prefix)
        _, config = client.call("GET", "/ServiceProviderConfig")
        batch = min(100, config["bulk"]["maxOperations"])
        users = max(sizes) + SPARE_USERS
        print(f"  {label}: seeding {users:,} users", flush=True)
        started = time.perf_counter()
        ids = seed(client.call, 0, users, batch)
        print(f"  {label}: seeded in {time.perf_counter() - started:.0f} s", flush=True)
        members, spares = ids[:-SPARE_USERS], ids[-SPARE_USERS:]
        result: dict[str, Any] = {"ms": {}, "build_seconds": {}}
        for size in sizes:
            started = time.perf_counter()
            name = f"bench group of {size}"
            group = build_group(client.call, name, members[:size], label)
            result["build_seconds"][size] = time.perf_counter() - started
            measured = measure_group(
                client, group, members[:size], spares, seconds, skip
            )
            for operation, ms in measured.items():
                result["ms"][f"{operation}@{size}"] = ms
                print(f"  {label}: {operation}@{size}: {ms:,.2f} ms", flush=True)
        result["rss_mb"] = server.rss_mb()
        return result
    finally:
        server.stop()


def run(env: dict, sizes: list[int], seconds: float, out: Path) -> list[str]:
    """Run the scenario on every server; print the table, write groups.json.

    Returns the targets missed.
    """
    results: dict[str, dict[str, Any]] = {}
    for framework in FRAMEWORKS:
        results[framework] = {}
        for backend in BACKENDS:
            label = f"{framework} {backend}"
            print(f"{label}: make serve", flush=True)
            with tempfile.TemporaryDirectory(prefix="bench-groups-") as directory:
                server_env = dict(env)
                if backend == "sqlite":
                    url = f"sqlite:///{directory}/scim.db"
                    server_env["SCIM_DATABASE_URL"] = url
                results[framework][backend] = bench_server(
                    label,
                    make_serve_command(framework),
                    server_env,
                    "/scim/v2",
                    sizes,
                    seconds,
                    out,
                )
    print("peer: scim2-server under gunicorn", flush=True)
    results["peer"] = {
        "memory": bench_server(
            "peer memory",
            peer_command(),
            {**env, "BENCH_APP": "peer"},
            "/v2",
            sizes,
            seconds,
            out,
            skip=PEER_REFUSES,
        )
    }

    table, missed = report(results, sizes)
    print()
    print(table)
    print()
    print(
        "Group targets: all met."
        if not missed
        else "Group targets missed:\n  " + "\n  ".join(missed)
    )
    path = out / "groups.json"
    path.write_text(
        json.dumps(
            {"sizes": sizes, "seconds": seconds, "results": results, "missed": missed},
            indent=2,
        )
    )
    print(f"\nWritten to {path}")
    return missed


def report(results: dict, sizes: list[int]) -> tuple[str, list[str]]:
    """The table, and the targets missed.

    `results[server][backend]["ms"]["<operation>@<size>"]` is a median latency
    in milliseconds; an operation the peer refuses has no entry.
    """
    small, big = min(sizes), max(sizes)
    servers = [(f, b) for f in FRAMEWORKS for b in BACKENDS] + [("peer", "memory")]
    peer = results["peer"]["memory"]["ms"]
    header = [
        "operation",
        "server",
        *(f"ms @ {size:,}" for size in sizes),
        f"{big:,} / {small:,}",
        f"peer / ours @ {big:,}",
    ]
    rows = []
    for operation in OPERATIONS:
        for index, (name, backend) in enumerate(servers):
            ms = results[name][backend]["ms"]
            cells = [ms.get(f"{operation}@{size}") for size in sizes]
            at_small = ms.get(f"{operation}@{small}")
            at_big = ms.get(f"{operation}@{big}")
            theirs = peer.get(f"{operation}@{big}") if name != "peer" else None
            growth = f"{at_big / at_small:.2f}x" if at_big and at_small else ""
            speedup = f"{theirs / at_big:,.1f}x" if theirs and at_big else ""
            rows.append(
                [
                    LABELS[operation] if index == 0 else "",
                    f"{name} {backend}",
                    *("n/a" if cell is None else f"{cell:,.2f}" for cell in cells),
                    growth,
                    speedup,
                ]
            )

    missed = []
    for name, backend in servers[:-1]:
        ms = results[name][backend]["ms"]
        for operation in OPERATIONS:
            at_small, at_big = ms[f"{operation}@{small}"], ms[f"{operation}@{big}"]
            if big != small and at_big > MAX_GROWTH * at_small:
                missed.append(
                    f"{name} {backend} {operation}: costs {at_big / at_small:.1f}x"
                    f" at {big:,} members what it costs at {small:,}"
                    f" (> {MAX_GROWTH:.0f}x)"
                )
            theirs = peer.get(f"{operation}@{big}")
            if theirs is not None and theirs < MIN_SPEEDUP * at_big:
                missed.append(
                    f"{name} {backend} {operation}@{big}: {theirs / at_big:.1f}x"
                    f" the peer's speed (< {MIN_SPEEDUP:.0f}x)"
                )
    return _columns([header, *rows]), missed


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )
