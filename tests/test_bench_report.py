"""The verdicts `make bench` prints: which targets a run met, and how two runs differ.

The benchmark itself is too slow for `make test`; its arithmetic is not.
"""

from bench.groups import BACKENDS
from bench.groups import OPERATIONS as GROUP_OPERATIONS
from bench.groups import PEER_REFUSES
from bench.groups import report as group_report
from bench.run import FRAMEWORKS
from bench.run import OPERATIONS
from bench.run import compare
from bench.run import report

SIZES = [1000, 100_000]
PEER = {"post": 500, "get": 700, "filter_eq": 480, "page": 80, "scan": 40, "patch": 420}


def results(scale: float = 1.0, **overrides: float) -> dict:
    """A run where every framework is `scale` times the peer, but for `overrides`."""
    peer = {f"{op}@{size}": float(PEER[op]) for op in OPERATIONS for size in SIZES}
    peer["page@100000"] = 1.5  # the peer sorts the whole store for each page
    peer["scan@100000"] = 0.9
    ours = {key: rate * scale for key, rate in peer.items()}
    ours["page@100000"] = ours["page@1000"]  # a page costs the same at any size
    ours["scan@100000"] = peer["scan@100000"] * scale
    ours.update(overrides)
    run = {"peer": {"rates": peer, "rss_mb": {100_000: 670.0}}}
    for framework in FRAMEWORKS:
        run[framework] = {
            "rates": dict(ours),
            "rss_mb": {100_000: 1100.0},
            "ceiling": 1000.0,
        }
    return run


def test_a_run_that_beats_the_peer_everywhere_meets_every_target():
    table, missed = report(results(scale=1.3), SIZES)
    assert missed == []
    assert "1.30x" in table
    assert "RSS MB at 100,000 users" in table


def test_each_target_is_checked():
    _, missed = report(
        results(
            scale=1.3,
            **{
                "patch@1000": 420 * 1.1,  # < 1.2x the peer
                "page@100000": 60.0,  # < 50x the peer, and < 0.8x its rate at 1,000
                "get@100000": 500.0,  # < 60% of the ceiling, < 0.8x its own 1,000
            },
        ),
        SIZES,
    )
    for framework in FRAMEWORKS:
        assert f"{framework} patch@1000: 1.10x the peer (< 1.2x)" in missed
        assert f"{framework} page@100000: 40.0x the peer (< 50x)" in missed
        assert any(m.startswith(f"{framework} page: 0.58x at 100,000") for m in missed)
        assert f"{framework} get@100000: 50% of the ceiling (< 60%)" in missed
        assert any(m.startswith(f"{framework} get: 0.55x at 100,000") for m in missed)
    # The scan is allowed to slow down with the store; nothing else is.
    assert not any(" scan: " in m for m in missed)


def test_compare_sets_two_runs_side_by_side():
    first, second = results(scale=1.3), results(scale=1.3)
    for framework in FRAMEWORKS:
        second[framework]["rates"]["get@1000"] *= 1.1
    text = compare({"results": first}, {"results": second})
    get_line = next(line for line in text.splitlines() if line.startswith("get@1000"))
    assert get_line.split()[1:] == ["+10%", "+10%", "+10%", "+0%"]
    assert "1.30 / 1.43" in text
    assert text.endswith("rates apart by a median of 0%, at most 9%")


# The large-group scenario (bench/groups.py): latencies in milliseconds.
GROUP_SIZES = [10, 100_000]


def group_results(ms: float = 1.0, peer_ms: float = 200.0) -> dict:
    """A run where every framework and store takes `ms` per operation at any
    size, and the peer 2 ms at 10 members and `peer_ms` at 100,000."""
    ours = {f"{op}@{size}": ms for op in GROUP_OPERATIONS for size in GROUP_SIZES}
    peer = {
        f"{op}@{size}": 2.0 if size == 10 else peer_ms
        for op in GROUP_OPERATIONS
        if op not in PEER_REFUSES
        for size in GROUP_SIZES
    }
    run = {f: {b: {"ms": dict(ours)} for b in BACKENDS} for f in FRAMEWORKS}
    run["peer"] = {"memory": {"ms": peer}}
    return run


def test_a_group_run_flat_with_size_and_far_ahead_of_the_peer_meets_every_target():
    table, missed = group_report(group_results(), GROUP_SIZES)
    assert missed == []
    lines = table.splitlines()
    assert lines[0].split("  ")[0].strip() == "operation"
    assert "ms @ 100,000" in lines[0] and "peer / ours @ 100,000" in lines[0]
    # 7 operations x (3 frameworks x 2 stores + the peer), and the header
    assert len(lines) == 1 + len(GROUP_OPERATIONS) * 7
    add_flask = next(line for line in lines if "flask memory" in line)
    assert add_flask.startswith("PATCH add one member")
    assert add_flask.split()[-4:] == ["1.00", "1.00", "1.00x", "200.0x"]
    # The peer's own growth is shown, and it refuses Entra's remove-with-value.
    peer_rows = [line for line in lines if "peer memory" in line]
    assert peer_rows[0].split()[-3:] == ["2.00", "200.00", "100.00x"]
    assert peer_rows[GROUP_OPERATIONS.index("remove_value")].split()[-2:] == [
        "n/a",
        "n/a",
    ]


def test_each_group_target_is_checked():
    run = group_results()
    run["django"]["sqlite"]["ms"]["add@100000"] = 3.5  # > 3x its cost at 10
    run["fastapi"]["memory"]["ms"]["rename@100000"] = 3.0  # 3x: still met
    run["flask"]["memory"]["ms"]["probe@100000"] = 2.5  # 80x the peer's speed ...
    run["peer"]["memory"]["ms"]["probe@100000"] = 100.0  # ... and now 40x
    run["peer"]["memory"]["ms"]["get_excluded@100000"] = 50.0  # 50x: still met
    run["django"]["memory"]["ms"]["remove_value@100000"] = 10.0  # no peer figure
    _, missed = group_report(run, GROUP_SIZES)
    assert sorted(missed) == sorted(
        [
            "django sqlite add: costs 3.5x at 100,000 members what it costs at 10"
            " (> 3x)",
            "flask memory probe@100000: 40.0x the peer's speed (< 50x)",
            "django memory remove_value: costs 10.0x at 100,000 members what it"
            " costs at 10 (> 3x)",
        ]
    )


def test_a_group_run_behind_the_peer_misses_the_speed_target_everywhere():
    _, missed = group_report(group_results(ms=10.0, peer_ms=100.0), GROUP_SIZES)
    # 10x the peer's speed, for each operation the peer answers, on each server
    answered = len(GROUP_OPERATIONS) - len(PEER_REFUSES)
    assert len(missed) == answered * len(FRAMEWORKS) * len(BACKENDS)
    assert all(m.endswith("10.0x the peer's speed (< 50x)") for m in missed)
