"""Benchmark: the example roster (30 people, about 24 h) solves in under 10 s on 2 cores.

Run with ``make bench`` (``pytest benchmarks --benchmark-enable``). A benchmark, not a timed
test: the figure depends on the machine and its load.
"""

from __future__ import annotations

from pathlib import Path

from twinsep.schedule import load_roster, plan_schedule

ROSTER = Path(__file__).resolve().parents[1] / "examples" / "roster.yaml"


def test_bench_example_roster(benchmark) -> None:
    roster = load_roster(ROSTER)
    section = benchmark.pedantic(plan_schedule, args=({}, roster), rounds=1, iterations=1)
    assert section["solver"]["status"] in ("OPTIMAL", "FEASIBLE")
