"""The verdicts `make bench` prints: which targets a run met, and how two runs differ.

The benchmark itself is too slow for `make test`; its arithmetic is not.
"""

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
