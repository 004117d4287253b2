"""`make bench`: requests per second of each integration, the peer, and a bare app.

The four servers run side by side on loopback, under the server class `make
serve` uses (gunicorn with threads, or uvicorn), without access log for all of
them alike (`ACCESS_LOG=0`). They are seeded to 1,000 users, then to 100,000
(through /Bulk), and at each size one keep-alive client per server measures
each operation in five rounds of a fixed time, the servers taking turns within
each round; each server's best round counts. The ratios compare numbers taken
in this one run, in the same moments, which is the only comparison that means
something on a shared machine.

Then the large-group scenario of `bench/groups.py`: the cost of one membership
change in a group of 10 members and in one of 100,000, in memory and on SQLite.

    python -m bench.run [--sizes 1000 100000] [--seconds 1.0] [--out bench-results]
                        [--scenario {users,groups,all}] [--group-sizes 10 100000]
                        [--group-seconds 1.0]
    python -m bench.run --compare first/bench.json second/bench.json
"""

import argparse
import http.client
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from integrations.serve import server_command

TOKEN = "bench-token"  # noqa: S105 - loopback only, for this run
FRAMEWORKS = ("flask", "fastapi", "django")
OPERATIONS = ("post", "get", "filter_eq", "page", "scan", "patch")
LABELS = {
    "post": "POST /Users",
    "get": "GET /Users/{id}",
    "filter_eq": 'filter userName eq "…"',
    "page": "page of 10 (startIndex/count)",
    "scan": 'filter emails.value co "…" (scan)',
    "patch": "PATCH replace",
    "bare": "bare JSON endpoint (ceiling)",
}
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
ROUNDS = 5  # per operation and server, taking turns; the best counts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """One server process on loopback, its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path) -> None:
        self.name = name
        self.log = log.open("w")
        self.process = subprocess.Popen(  # noqa: S603 - our own command lines
            command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def wait_for(self, port: int) -> None:
        for _ in range(300):
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def rss_mb(self) -> float:
        """Resident memory of the server and its workers, in MB."""
        total = 0
        for pid in [self.process.pid, *_descendants(self.process.pid)]:
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def _descendants(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, found):
            children += [child, *_descendants(child)]
    return children


class Client:
    """One keep-alive HTTP connection, as a provisioning client holds."""

    def __init__(self, port: int, prefix: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        self.prefix = prefix
        self.headers = {
            "Authorization": f"Bearer {TOKEN}",
            "Content-Type": "application/scim+json",
        }

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        payload = json.dumps(body).encode() if body is not None else None
        try:
            self.connection.request(method, self.prefix + path, payload, self.headers)
            response = self.connection.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            # The server closed the connection while it sat idle (gunicorn
            # keeps one open 2 s), before it read this request: send it again.
            self.connection.close()
            self.connection.request(method, self.prefix + path, payload, self.headers)
            response = self.connection.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else None


Call = Callable[[str, str, Any], tuple[int, Any]]  # (method, path, body) -> response


def seed(call: Call, start: int, stop: int, batch: int) -> list[str]:
    """Create users start..stop-1 through /Bulk, and return their ids."""
    ids = []
    for first in range(start, stop, batch):
        operations = [
            {
                "method": "POST",
                "path": "/Users",
                "bulkId": f"u{index}",
                "data": user_payload(index),
            }
            for index in range(first, min(first + batch, stop))
        ]
        bulk = {"schemas": [BULK], "Operations": operations}
        status, body = call("POST", "/Bulk", bulk)
        assert status == 200, (status, body)
        for operation in body["Operations"]:
            assert operation["status"] == "201", operation
            ids.append(operation["location"].rsplit("/", 1)[1])
    return ids


def user_payload(index: int) -> dict[str, Any]:
    return {
        "schemas": [USER],
        "userName": f"user{index:06d}",
        "displayName": f"User {index}",
        "name": {"givenName": "Bench", "familyName": f"User{index}"},
        "emails": [{"value": f"user{index:06d}@example.com", "type": "work"}],
        "active": True,
    }


# What each operation must answer. RFC 7644 §3.5.2 lets a PATCH answer 200 with
# the resource (the cookbook) or 204 (scim2-server).
CHECKS: dict[str, Callable[[int, Any], bool]] = {
    "post": lambda status, body: status == 201,
    "get": lambda status, body: status == 200,
    "filter_eq": lambda status, body: status == 200 and body["totalResults"] == 1,
    "page": lambda status, body: status == 200 and len(body["Resources"]) == 10,
    "scan": lambda status, body: status == 200 and body["totalResults"] >= 1,
    "patch": lambda status, body: status in (200, 204),
    "bare": lambda status, body: status == 200,
}


def requests(
    operation: str, ids: list[str], size: int, posted: Iterator[int]
) -> Iterator[tuple[str, str, Any]]:
    """The requests of one operation, (method, path, body), the same for every server.

    `ids` are the seeded users, `size` their number, and `posted` the
    numbers of the users POST creates (no seeded user has them).
    """
    rng = random.Random(42)  # noqa: S311 - the same requests for every server
    while True:
        if operation == "post":
            yield "POST", "/Users", user_payload(next(posted))
        elif operation == "get":
            yield "GET", f"/Users/{rng.choice(ids)}", None
        elif operation == "filter_eq":
            name = f"user{rng.randrange(size):06d}"
            yield "GET", f"/Users?filter=userName%20eq%20%22{name}%22", None
        elif operation == "page":
            start = rng.randrange(1, size - 10)
            yield "GET", f"/Users?startIndex={start}&count=10", None
        elif operation == "scan":
            fragment = f"{rng.randrange(size):06d}@"
            query = f"filter=emails.value%20co%20%22{fragment}%22&count=10"
            yield "GET", f"/Users?{query}", None
        elif operation == "patch":
            value = f"n{rng.random()}"
            replace = {"op": "replace", "path": "displayName", "value": value}
            yield (
                "PATCH",
                f"/Users/{rng.choice(ids)}",
                {
                    "schemas": [PATCH_OP],
                    "Operations": [replace],
                },
            )
        elif operation == "bare":
            yield "GET", "/bare", None
        else:
            raise ValueError(f"unknown operation {operation!r}")


class Stream:
    """One server's requests of one operation, kept from round to round.

    Kept, so that the users POST creates are new in every round too.
    """

    def __init__(self, client: Client, operation: str, ids: list[str], size: int):
        self.client, self.operation = client, operation
        self.sent = requests(
            operation, ids, size, itertools.count(10_000_001 + 100 * size)
        )

    def call(self) -> None:
        status, body = self.client.call(*next(self.sent))
        assert CHECKS[self.operation](status, body), (self.operation, status, body)

    def round(self, seconds: float) -> float:
        """Requests per second over `seconds` (and 3 requests at least)."""
        self.call()  # untimed: reopens the connection if it was idle too long
        done, started = 0, time.perf_counter()
        while True:
            self.call()
            done += 1
            elapsed = time.perf_counter() - started
            if elapsed >= seconds and done >= 3:
                return done / elapsed


def race(
    streams: dict[str, Stream], seconds: float, rounds: int = ROUNDS
) -> dict[str, float]:
    """Each server's best rate of `rounds`, the servers taking turns in each round.

    Taking turns exposes every server to the same noise: a machine that gets
    busier halfway through the run slows one round of each, not all the
    rounds of the servers measured last. The best round counts, as timeit
    does: a pause the server did not cause would otherwise decide a window on
    its own. The order rotates from round to round, so no server always
    follows the same one.
    """
    for stream in streams.values():
        stream.call()  # warm up the connection and the code path
    names, best = list(streams), dict.fromkeys(streams, 0.0)
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            best[name] = max(best[name], streams[name].round(seconds))
    return best


Command = Callable[[int], list[str]]  # the command line serving on a port
Commands = dict[str, tuple[Command, dict, str]]  # name: command, env, URL prefix


def on_port(template: list[str]) -> Command:
    """A command line whose `{port}` is filled in."""
    return lambda port: [part.replace("{port}", str(port)) for part in template]


def start_servers(
    commands: Commands, out: Path
) -> tuple[dict[str, Server], dict[str, Client]]:
    """Start every server at once, each on a port of its own."""
    servers: dict[str, Server] = {}
    clients: dict[str, Client] = {}
    try:
        for name, (command, env, prefix) in commands.items():
            port = free_port()
            servers[name] = Server(name, command(port), env, out / f"{name}.log")
            servers[name].wait_for(port)
            clients[name] = Client(port, prefix)
    except BaseException:
        for server in servers.values():
            server.stop()
        raise
    return servers, clients


def bench_scim_servers(
    commands: Commands,
    sizes: list[int],
    seconds: float,
    out: Path,
) -> dict[str, dict[str, Any]]:
    """Every SCIM server up at once: seed each to a size, then race them."""
    results: dict[str, Any] = {name: {"rates": {}, "rss_mb": {}} for name in commands}
    servers, clients = start_servers(commands, out)
    try:
        ids: dict[str, list[str]] = {name: [] for name in commands}
        for size in sizes:
            for name, client in clients.items():
                print(f"  {name}: seeding {size} users", flush=True)
                _, config = client.call("GET", "/ServiceProviderConfig")
                batch = min(100, config["bulk"]["maxOperations"])
                ids[name] += seed(client.call, len(ids[name]), size, batch)
                results[name]["rss_mb"][size] = servers[name].rss_mb()
            for operation in OPERATIONS:
                streams = {
                    name: Stream(client, operation, ids[name], size)
                    for name, client in clients.items()
                }
                rates = race(streams, seconds)
                for name, rate in rates.items():
                    results[name]["rates"][f"{operation}@{size}"] = rate
                cells = ", ".join(
                    f"{name} {rate:.0f}/s" for name, rate in rates.items()
                )
                print(f"  {operation}@{size}: {cells}", flush=True)
        return results
    finally:
        for server in servers.values():
            server.stop()


def make_serve_command(framework: str) -> list[str]:
    """`make serve` for one integration, on the port that replaces {port}."""
    return [
        "make",
        "--no-print-directory",
        "serve",
        f"FRAMEWORK={framework}",
        "PORT={port}",
        "ACCESS_LOG=0",
    ]


def peer_command() -> list[str]:
    """scim2-server under gunicorn, as `make serve` runs Flask, on {port}."""
    command = server_command(
        "flask", "127.0.0.1", 0, 1, "bench.apps:app", access_log=False
    )
    return [part.replace("127.0.0.1:0", "127.0.0.1:{port}") for part in command]


def bench_bare(env: dict, seconds: float, out: Path) -> dict[str, float]:
    """The ceiling of each framework: a bare JSON endpoint, raced like the rest."""

    def bare(framework: str) -> Command:
        return lambda port: server_command(
            framework, "127.0.0.1", port, 1, "bench.apps:app", access_log=False
        )

    commands: Commands = {
        f"{framework}-bare": (bare(framework), {**env, "BENCH_APP": framework}, "")
        for framework in FRAMEWORKS
    }
    servers, clients = start_servers(commands, out)
    try:
        streams = {
            name.removesuffix("-bare"): Stream(client, "bare", [], 0)
            for name, client in clients.items()
        }
        return race(streams, seconds)
    finally:
        for server in servers.values():
            server.stop()


def report(results: dict, sizes: list[int]) -> tuple[str, list[str]]:
    """The table, and the targets missed."""
    names = [*FRAMEWORKS, "peer"]
    header = ["operation", *names, *(f"{f}/peer" for f in FRAMEWORKS),
              *(f"{f} % ceil" for f in FRAMEWORKS)]  # fmt: skip
    rows = []
    for size in sizes:
        for operation in OPERATIONS:
            key = f"{operation}@{size}"
            rates = [results[name]["rates"][key] for name in names]
            peer = rates[-1]
            row = [f"{LABELS[operation]} @ {size:,}", *(f"{r:,.1f}" for r in rates)]
            row += [f"{r / peer:.2f}x" for r in rates[:3]]
            row += [
                f"{100 * r / results[f]['ceiling']:.0f}%"
                for f, r in zip(FRAMEWORKS, rates[:3], strict=True)
            ]
            rows.append(row)
    big, small = max(sizes), min(sizes)
    ceilings = [f"{results[f]['ceiling']:,.1f}" for f in FRAMEWORKS]
    memory = [f"{results[n]['rss_mb'][big]:.0f}" for n in names]
    for row in ([LABELS["bare"], *ceilings], [f"RSS MB at {big:,} users", *memory]):
        rows.append(row + [""] * (len(header) - len(row)))  # blank up to the width
    widths = [
        max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))
    ]
    lines = [
        "  ".join(
            str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)
        )
        for line in [header, *rows]
    ]

    missed = []
    for framework in FRAMEWORKS:
        rates = results[framework]["rates"]
        peer = results["peer"]["rates"]
        for key, rate in rates.items():
            if rate < 1.2 * peer[key]:
                missed.append(
                    f"{framework} {key}: {rate / peer[key]:.2f}x the peer (< 1.2x)"
                )
        page = f"page@{big}"
        if rates[page] < 50 * peer[page]:
            missed.append(
                f"{framework} {page}: {rates[page] / peer[page]:.1f}x the peer (< 50x)"
            )
        for operation in OPERATIONS:
            if operation == "scan" or big == small:
                continue
            ratio = rates[f"{operation}@{big}"] / rates[f"{operation}@{small}"]
            if ratio < 0.8:
                missed.append(
                    f"{framework} {operation}: {ratio:.2f}x at {big:,} vs {small:,}"
                    " (< 0.8)"
                )
        for size in sizes:
            share = rates[f"get@{size}"] / results[framework]["ceiling"]
            if share < 0.6:
                missed.append(
                    f"{framework} get@{size}: {share:.0%} of the ceiling (< 60%)"
                )
    return "\n".join(lines), missed


def compare(first: dict, second: dict) -> str:
    """How far two runs' rates and ratios to the peer are apart, operation by operation.

    Ratios to the peer are what the targets are about; the spread between
    runs of the same code is the noise a difference must beat to mean much.
    """
    lines = [f"{'rate':<22}" + "".join(f"{name:>10}" for name in [*FRAMEWORKS, "peer"])]
    spreads = []
    for key in first["results"]["peer"]["rates"]:
        cells = []
        for name in [*FRAMEWORKS, "peer"]:
            a = first["results"][name]["rates"][key]
            b = second["results"][name]["rates"][key]
            spreads.append(abs(b - a) / max(a, b))
            cells.append(f"{100 * (b - a) / a:+9.0f}%")
        lines.append(f"{key:<22}" + "".join(cells))
    lines.append("")
    lines.append(f"{'ratio to the peer':<22}" + "".join(f"{f:>16}" for f in FRAMEWORKS))
    for key in first["results"]["peer"]["rates"]:
        cells = []
        for name in FRAMEWORKS:
            ratios = [
                run["results"][name]["rates"][key]
                / run["results"]["peer"]["rates"][key]
                for run in (first, second)
            ]
            cells.append(f"{ratios[0]:.2f} / {ratios[1]:.2f}")
        lines.append(f"{key:<22}" + "".join(f"{cell:>16}" for cell in cells))
    spreads.sort()
    lines.append("")
    lines.append(
        f"rates apart by a median of {100 * spreads[len(spreads) // 2]:.0f}%, "
        f"at most {100 * spreads[-1]:.0f}%"
    )
    return "\n".join(lines)


def run_users(env: dict, sizes: list[int], seconds: float, out: Path) -> list[str]:
    """The users scenario on every server; print the table, write bench.json.

    Returns the targets missed.
    """
    commands: Commands = {
        framework: (on_port(make_serve_command(framework)), env, "/scim/v2")
        for framework in FRAMEWORKS
    }
    commands["peer"] = (on_port(peer_command()), {**env, "BENCH_APP": "peer"}, "/v2")
    print("flask, fastapi, django (make serve) and scim2-server under gunicorn")
    results = bench_scim_servers(commands, sizes, seconds, out)
    for framework, ceiling in bench_bare(env, seconds, out).items():
        results[framework]["ceiling"] = ceiling
        print(f"  {framework}: bare endpoint: {ceiling:.0f}/s", flush=True)

    table, missed = report(results, sizes)
    print()
    print(table)
    print()
    print(
        "Targets: all met."
        if not missed
        else "Targets missed:\n  " + "\n  ".join(missed)
    )
    (out / "bench.json").write_text(
        json.dumps({"sizes": sizes, "results": results, "missed": missed}, indent=2)
    )
    print(f"\nWritten to {out / 'bench.json'}")
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results"))
    parser.add_argument("--scenario", choices=("users", "groups", "all"), default="all")
    parser.add_argument(
        "--group-sizes", type=int, nargs="+", default=[10, 100_000],
        help="members of each group of the group scenario",
    )  # fmt: skip
    parser.add_argument(
        "--group-seconds", type=float, default=1.0,
        help="time budget of each group operation (3 requests at least)",
    )  # fmt: skip
    parser.add_argument(
        "--compare",
        type=Path,
        nargs=2,
        metavar="BENCH_JSON",
        help="compare the results of two runs instead of running",
    )
    args = parser.parse_args()
    if args.compare:
        first, second = (json.loads(path.read_text()) for path in args.compare)
        print(compare(first, second))
        return
    args.out.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("SCIM_DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(SCIM_TOKEN=TOKEN, SCIM_DEMO_DATA="0")
    if args.scenario in ("users", "all"):
        run_users(env, args.sizes, args.seconds, args.out)
    if args.scenario in ("groups", "all"):
        from bench import groups  # which imports this module, once it is loaded

        groups.run(env, args.group_sizes, args.group_seconds, args.out)
    sys.exit(0)


if __name__ == "__main__":
    main()
